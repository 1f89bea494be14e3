package rag

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// The index is one file, chosen over the SQLite database because exact
// search wants every vector in one contiguous float32 slab: the file's
// vector section is that slab, read with one sequential read, while rows in
// a database would each be decoded. One file is also trivially copied,
// written atomically (temp file + rename) and needs no cgo or schema shared
// with the server's database.
//
// Layout (little-endian), version 1:
//
//	magic    [8]byte  "GLMKRAG\n"
//	version  uint32   1
//	dims     uint32
//	count    uint64   number of chunks (= vectors)
//	metaLen  uint64
//	meta     [metaLen]byte  JSON: indexMeta
//	vectors  [count*dims]float32, L2-normalised, chunk order
//	crc      uint32   CRC-32C of everything above
const (
	indexMagic   = "GLMKRAG\n"
	indexVersion = 1
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Index holds chunks, their vectors and the files they came from.
type Index struct {
	Model string // embedding model the vectors were asked of
	// AnsweredBy is the model that really produced the vectors (the
	// replies' model field); "" in an index made before it was recorded.
	AnsweredBy string
	Dims       int          // vector length; 0 until the first vector arrives
	Chunk      ChunkOptions // how files were split (a change re-embeds them)
	Files      map[string]*FileEntry
	Chunks     []Chunk
	// vecs holds len(Chunks)*Dims L2-normalised values; row i is chunk i.
	vecs []float32
}

// FileEntry records one indexed file. Key and Path are the absolute path.
type FileEntry struct {
	Path    string    `json:"path"`
	Hash    string    `json:"sha256"`
	Size    int64     `json:"size"`
	Chunks  int       `json:"chunks"`
	Indexed time.Time `json:"indexed"`
}

// Chunk is one piece of a file; Seq counts from 0 within the file.
type Chunk struct {
	File string `json:"file"`
	Seq  int    `json:"seq"`
	Text string `json:"text"`
}

type indexMeta struct {
	Model      string       `json:"model"`
	AnsweredBy string       `json:"answered_by,omitempty"`
	ChunkSize  int          `json:"chunk_size"`
	Overlap    int          `json:"chunk_overlap"`
	Files      []*FileEntry `json:"files"`
	Chunks     []Chunk      `json:"chunks"`
}

// NewIndex returns an empty index for the given model and chunking.
func NewIndex(model string, o ChunkOptions) *Index {
	return &Index{Model: model, Chunk: o, Files: map[string]*FileEntry{}}
}

// Len is the number of chunks.
func (ix *Index) Len() int { return len(ix.Chunks) }

// Vector returns chunk i's normalised vector (shared, do not modify).
func (ix *Index) Vector(i int) []float32 { return ix.vecs[i*ix.Dims : (i+1)*ix.Dims] }

// Add appends chunks with their vectors (any length > 0, normalised here).
func (ix *Index) Add(chunks []Chunk, vecs [][]float32) error {
	if len(chunks) != len(vecs) {
		return fmt.Errorf("index: %d chunks but %d vectors", len(chunks), len(vecs))
	}
	for i, v := range vecs {
		if ix.Dims == 0 {
			if len(v) == 0 {
				return errors.New("index: empty embedding vector")
			}
			ix.Dims = len(v)
		}
		if len(v) != ix.Dims {
			return fmt.Errorf("index: vector of %d dimensions, index has %d (mixed embedding models?)", len(v), ix.Dims)
		}
		n := len(ix.vecs)
		ix.vecs = append(ix.vecs, v...)
		if !normalize(ix.vecs[n:]) {
			ix.vecs = ix.vecs[:n]
			return fmt.Errorf("index: chunk %d of %s has a zero or non-finite embedding", chunks[i].Seq, chunks[i].File)
		}
		ix.Chunks = append(ix.Chunks, chunks[i])
	}
	return nil
}

// RemoveFile drops a file and all its chunks, compacting the vector slab.
func (ix *Index) RemoveFile(path string) {
	delete(ix.Files, path)
	w := 0
	for r := range ix.Chunks {
		if ix.Chunks[r].File == path {
			continue
		}
		if w != r {
			ix.Chunks[w] = ix.Chunks[r]
			copy(ix.vecs[w*ix.Dims:(w+1)*ix.Dims], ix.vecs[r*ix.Dims:(r+1)*ix.Dims])
		}
		w++
	}
	ix.Chunks = ix.Chunks[:w]
	ix.vecs = ix.vecs[:w*ix.Dims]
}

// normalize scales v to unit L2 length in place; false for a zero or
// non-finite vector, which has no direction to compare.
func normalize(v []float32) bool {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
		return false
	}
	inv := float32(1 / math.Sqrt(s))
	for i := range v {
		v[i] *= inv
	}
	return true
}

// Save writes the index to path atomically: a crash leaves either the old
// file or the new one, never a torn mix.
func (ix *Index) Save(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := ix.write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("index: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename itself durable
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (ix *Index) write(w io.Writer) error {
	meta := indexMeta{Model: ix.Model, AnsweredBy: ix.AnsweredBy, ChunkSize: ix.Chunk.Size, Overlap: ix.Chunk.Overlap, Chunks: ix.Chunks}
	for _, f := range sortedFiles(ix.Files) {
		meta.Files = append(meta.Files, f)
	}
	if meta.Chunks == nil {
		meta.Chunks = []Chunk{}
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	crc := crc32.New(crcTable)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20)
	var hdr [32]byte
	copy(hdr[:8], indexMagic)
	binary.LittleEndian.PutUint32(hdr[8:], indexVersion)
	binary.LittleEndian.PutUint32(hdr[12:], uint32(ix.Dims))
	binary.LittleEndian.PutUint64(hdr[16:], uint64(len(ix.Chunks)))
	binary.LittleEndian.PutUint64(hdr[24:], uint64(len(mj)))
	bw.Write(hdr[:])
	bw.Write(mj)
	var b [4]byte
	for _, f := range ix.vecs {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(f))
		bw.Write(b[:])
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:], crc.Sum32())
	_, err = w.Write(b[:])
	return err
}

// ErrNoIndex is returned by LoadIndex when the file does not exist.
var ErrNoIndex = errors.New("index file does not exist (run `glm rag index` first)")

// LoadIndex reads an index written by Save, verifying its checksum.
func LoadIndex(path string) (*Index, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoIndex)
	}
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	ix, err := decodeIndex(data)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", path, err)
	}
	return ix, nil
}

func decodeIndex(data []byte) (*Index, error) {
	if len(data) < 36 || !bytes.Equal(data[:8], []byte(indexMagic)) {
		return nil, errors.New("not a glmkit RAG index")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, errors.New("checksum mismatch: the file is damaged (re-run `glm rag index`)")
	}
	if v := binary.LittleEndian.Uint32(data[8:]); v != indexVersion {
		return nil, fmt.Errorf("unsupported index version %d (this glm reads version %d)", v, indexVersion)
	}
	dims := uint64(binary.LittleEndian.Uint32(data[12:]))
	count := binary.LittleEndian.Uint64(data[16:])
	metaLen := binary.LittleEndian.Uint64(data[24:])
	rest := uint64(len(body) - 32)
	if metaLen > rest || (dims != 0 && count > (rest-metaLen)/4/dims) || (rest-metaLen) != count*dims*4 {
		return nil, errors.New("inconsistent section sizes")
	}
	var meta indexMeta
	if err := json.Unmarshal(body[32:32+metaLen], &meta); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if uint64(len(meta.Chunks)) != count {
		return nil, fmt.Errorf("metadata lists %d chunks, header %d", len(meta.Chunks), count)
	}
	ix := &Index{
		Model: meta.Model, AnsweredBy: meta.AnsweredBy, Dims: int(dims),
		Chunk:  ChunkOptions{Size: meta.ChunkSize, Overlap: meta.Overlap},
		Files:  make(map[string]*FileEntry, len(meta.Files)),
		Chunks: meta.Chunks,
		vecs:   make([]float32, count*dims),
	}
	for _, f := range meta.Files {
		ix.Files[f.Path] = f
	}
	raw := body[32+metaLen:]
	for i := range ix.vecs {
		ix.vecs[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return ix, nil
}
