package rag

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// The journal makes indexing resumable without rewriting the whole index
// after every batch (quadratic at 100k chunks). Next to the index file,
// "<index>.journal" receives one record per embedded batch, fsynced, each
// framed as
//
//	length uint32 | crc32c uint32 | payload (JSON journalRecord)
//
// An interrupted run leaves the journal behind; the next run reads it as a
// cache keyed by (file, content hash, chunking, chunk text) and embeds only
// what is missing. A torn last record (crash
// mid-write) fails its length or checksum and is ignored. A successful run
// folds everything into the index file and deletes the journal.

type journalRecord struct {
	Model      string `json:"model"`
	AnsweredBy string `json:"answered_by,omitempty"`
	File       string `json:"file"`
	Hash       string `json:"sha256"`
	Size       int    `json:"chunk_size"`
	Overlap    int    `json:"chunk_overlap"`
	// Chunks embedded in this batch, with their vectors. Texts are kept so
	// that a cached vector is reused only for exactly the same chunk.
	Seqs  []int       `json:"seqs"`
	Texts []string    `json:"texts"`
	Vecs  [][]float32 `json:"vecs"`
}

type journal struct {
	f *os.File
	w *bufio.Writer
}

func openJournal(path string) (*journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return &journal{f: f, w: bufio.NewWriter(f)}, nil
}

// append writes records and syncs them to disk before returning, so a
// record acknowledged here survives a crash.
func (j *journal) append(recs ...journalRecord) error {
	for _, r := range recs {
		payload, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		var hdr [8]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(hdr[4:], crc32.Checksum(payload, crcTable))
		j.w.Write(hdr[:])
		j.w.Write(payload)
	}
	if err := j.w.Flush(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// readJournal returns the intact records of a journal, stopping quietly at
// the first torn or damaged one. A missing journal is no records.
func readJournal(path string) ([]journalRecord, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var out []journalRecord
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return out, nil // EOF or a torn header
		}
		n := binary.LittleEndian.Uint32(hdr[:])
		if n > 1<<30 {
			return out, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return out, nil
		}
		if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(hdr[4:]) {
			return out, nil
		}
		var rec journalRecord
		if err := json.Unmarshal(payload, &rec); err != nil {
			return out, nil
		}
		out = append(out, rec)
	}
}

// finiteVec reports whether JSON could carry v (NaN and ±Inf cannot).
func finiteVec(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}
