package rag

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/glmkit/glmkit/cookbook/document"
)

// Embedder turns texts into vectors, one per text, in order.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// MaxBatch is the most inputs one embeddings call may carry (docs/v4.md §5).
const MaxBatch = 64

// IndexOptions configures BuildIndex.
type IndexOptions struct {
	Path  string // the index file; the journal lives at Path+".journal"
	Model string // embedding model name, recorded in the index
	Chunk ChunkOptions
	// BatchSize is the number of chunks per embeddings call (1..64).
	BatchSize int
	// BatchRunes caps the text per call: embedding-2 takes at most 8K
	// tokens per request in total, so 64 long Chinese chunks must be split.
	BatchRunes int
	// Progress, if set, is called after every batch.
	Progress func(done, total int)
	// Warn, if set, receives per-file problems that do not stop the run
	// (an unreadable PDF among a hundred good files).
	Warn func(path string, err error)
	// Now stamps FileEntry.Indexed (tests fix it).
	Now func() time.Time
}

// IndexReport tells what a BuildIndex run did.
type IndexReport struct {
	Files     int // documents found under the paths
	Unchanged int // skipped: same content hash as indexed
	Indexed   int // new or changed files (re)indexed
	Removed   int // files dropped because they were deleted or unreadable
	Failed    int // files that could not be read
	Chunks    int // chunks in the index after the run
	Embedded  int // chunks embedded by this run
	Resumed   int // chunks whose vectors came from an interrupted run's journal
}

type cacheKey struct {
	file, hash string
	seq        int
}

type cached struct {
	text string
	vec  []float32
}

type pendingFile struct {
	entry  *FileEntry
	chunks []Chunk
	vecs   [][]float32
}

type embedJob struct {
	file *pendingFile
	seq  int
}

// BuildIndex brings the index at opt.Path up to date with the documents
// under paths: new and changed files are chunked and embedded, unchanged
// ones skipped by content hash, deleted ones removed. It is resumable: when
// interrupted (ctx cancelled, crash, network error), rerunning it with the
// same arguments embeds only what the previous run had not.
func BuildIndex(ctx context.Context, emb Embedder, paths []string, opt IndexOptions) (*IndexReport, error) {
	if err := opt.Chunk.Validate(); err != nil {
		return nil, err
	}
	if opt.Model == "" {
		return nil, errors.New("no embedding model given")
	}
	if opt.BatchSize < 1 || opt.BatchSize > MaxBatch {
		return nil, fmt.Errorf("batch size must be between 1 and %d", MaxBatch)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	ix, err := LoadIndex(opt.Path)
	switch {
	case errors.Is(err, ErrNoIndex):
		ix = NewIndex(opt.Model, opt.Chunk)
	case err != nil:
		return nil, err
	case ix.Model != opt.Model:
		return nil, fmt.Errorf("index %s was built with embedding model %q; use --embed-model %s or another --index", opt.Path, ix.Model, ix.Model)
	}
	rechunk := ix.Chunk != opt.Chunk // new chunking: every file is "changed"
	ix.Chunk = opt.Chunk

	journalPath := opt.Path + ".journal"
	cache, err := loadCache(journalPath, opt, ix.AnsweredBy)
	if err != nil {
		return nil, err
	}

	files, err := collectFiles(paths)
	if err != nil {
		return nil, err
	}
	rep := &IndexReport{Files: len(files)}
	seen, unreadable := map[string]bool{}, map[string]bool{}
	var pending []*pendingFile
	var jobs []embedJob
	for _, path := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		seen[path] = true
		raw, err := os.ReadFile(path)
		if err != nil {
			rep.Failed++
			unreadable[path] = true
			warn(opt, path, err)
			continue
		}
		sum := sha256.Sum256(raw)
		hash := hex.EncodeToString(sum[:])
		if old := ix.Files[path]; old != nil && old.Hash == hash && !rechunk {
			rep.Unchanged++
			continue
		}
		text, err := document.Read(ctx, path)
		if err != nil {
			rep.Failed++
			unreadable[path] = true
			warn(opt, path, err)
			continue
		}
		pf := &pendingFile{entry: &FileEntry{Path: path, Hash: hash, Size: int64(len(raw))}}
		for i, t := range Split(text, opt.Chunk) {
			pf.chunks = append(pf.chunks, Chunk{File: path, Seq: i, Text: t})
			if c, ok := cache[cacheKey{path, hash, i}]; ok && c.text == t {
				pf.vecs = append(pf.vecs, c.vec)
				rep.Resumed++
				continue
			}
			pf.vecs = append(pf.vecs, nil)
			jobs = append(jobs, embedJob{pf, i})
		}
		pf.entry.Chunks = len(pf.chunks)
		pending = append(pending, pf)
	}

	if len(jobs) > 0 {
		if err := embedAll(ctx, emb, jobs, journalPath, opt, &ix.AnsweredBy); err != nil {
			return nil, err
		}
		rep.Embedded = len(jobs)
	}

	for _, pf := range pending {
		ix.RemoveFile(pf.entry.Path)
		if err := ix.Add(pf.chunks, pf.vecs); err != nil {
			return nil, err
		}
		pf.entry.Indexed = opt.Now().UTC()
		ix.Files[pf.entry.Path] = pf.entry
		rep.Indexed++
	}
	for path := range ix.Files {
		remove := false
		switch {
		case unreadable[path]:
			remove = true // stale text is worse than none
		case !seen[path]:
			// Not under this run's paths: drop it only if it is gone from
			// disk, so that indexing docs/ does not forget notes/.
			_, err := os.Stat(path)
			remove = errors.Is(err, fs.ErrNotExist)
		}
		if remove {
			ix.RemoveFile(path)
			rep.Removed++
		}
	}
	rep.Chunks = ix.Len()
	if err := ix.Save(opt.Path); err != nil {
		return nil, err
	}
	if err := os.Remove(journalPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("journal: %w", err)
	}
	return rep, nil
}

func warn(opt IndexOptions, path string, err error) {
	if opt.Warn != nil {
		opt.Warn(path, err)
	}
}

// embedAll embeds jobs in batches, journaling each batch before moving on.
// answeredBy is the index's record of the model that really answers
// (filled by the first batch of a new index); a batch answered by another
// is refused.
func embedAll(ctx context.Context, emb Embedder, jobs []embedJob, journalPath string, opt IndexOptions, answeredBy *string) error {
	j, err := openJournal(journalPath)
	if err != nil {
		return err
	}
	defer j.close()
	done := 0
	for start := 0; start < len(jobs); {
		end, runes := start, 0
		for end < len(jobs) && end-start < opt.BatchSize {
			n := utf8.RuneCountInString(jobs[end].file.chunks[jobs[end].seq].Text)
			if end > start && opt.BatchRunes > 0 && runes+n > opt.BatchRunes {
				break
			}
			runes += n
			end++
		}
		batch := jobs[start:end]
		texts := make([]string, len(batch))
		for i, jb := range batch {
			texts[i] = jb.file.chunks[jb.seq].Text
		}
		vecs, answered, err := embedAs(ctx, emb, opt.Model, texts)
		if err != nil {
			return fmt.Errorf("embedding chunks %d–%d of %d: %w", start+1, end, len(jobs), err)
		}
		switch {
		case *answeredBy == "":
			*answeredBy = answered
		case answered != *answeredBy:
			return fmt.Errorf("the index holds vectors of model %s, but %s is now answered by %s: vectors of two models "+
				"cannot share an index; build a new --index", *answeredBy, opt.Model, answered)
		}
		if len(vecs) != len(batch) {
			return fmt.Errorf("embedding service returned %d vectors for %d texts", len(vecs), len(batch))
		}
		var recs []journalRecord
		for i, jb := range batch {
			if len(vecs[i]) == 0 || !finiteVec(vecs[i]) {
				return fmt.Errorf("embedding service returned an empty or non-finite vector for chunk %d of %s", jb.seq, jb.file.entry.Path)
			}
			jb.file.vecs[jb.seq] = vecs[i]
			if n := len(recs); n == 0 || recs[n-1].File != jb.file.entry.Path {
				recs = append(recs, journalRecord{Model: opt.Model, AnsweredBy: answered, File: jb.file.entry.Path, Hash: jb.file.entry.Hash,
					Size: opt.Chunk.Size, Overlap: opt.Chunk.Overlap})
			}
			r := &recs[len(recs)-1]
			r.Seqs = append(r.Seqs, jb.seq)
			r.Texts = append(r.Texts, texts[i])
			r.Vecs = append(r.Vecs, vecs[i])
		}
		if err := j.append(recs...); err != nil {
			return err
		}
		done += len(batch)
		if opt.Progress != nil {
			opt.Progress(done, len(jobs))
		}
		start = end
	}
	return nil
}

// loadCache reads the journal of an interrupted run into a vector cache,
// keeping only records made with the same model and chunking.
func loadCache(path string, opt IndexOptions, answeredBy string) (map[cacheKey]cached, error) {
	recs, err := readJournal(path)
	if err != nil {
		return nil, err
	}
	cache := map[cacheKey]cached{}
	for _, r := range recs {
		if r.Model != opt.Model || (answeredBy != "" && r.AnsweredBy != answeredBy) || r.Size != opt.Chunk.Size || r.Overlap != opt.Chunk.Overlap ||
			len(r.Seqs) != len(r.Texts) || len(r.Seqs) != len(r.Vecs) {
			continue
		}
		for i, seq := range r.Seqs {
			cache[cacheKey{r.File, r.Hash, seq}] = cached{r.Texts[i], r.Vecs[i]}
		}
	}
	return cache, nil
}

// collectFiles expands the arguments into absolute paths of readable
// documents: files as given (an unsupported type is an error, since the
// user named it), directories walked recursively, skipping hidden entries
// (.git, the .glmkit index directory) and unsupported types.
func collectFiles(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, errors.New("no paths to index")
	}
	var out []string
	dup := map[string]bool{}
	add := func(p string) {
		if !dup[p] {
			dup[p] = true
			out = append(out, p)
		}
	}
	for _, arg := range paths {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return nil, err
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		if !fi.IsDir() {
			if !document.Supported(abs) {
				return nil, fmt.Errorf("%s: %w", arg, document.ErrUnsupported)
			}
			add(abs)
			continue
		}
		err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != abs && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && document.Supported(p) {
				add(p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("walking %s: %w", arg, err)
		}
	}
	return out, nil
}
