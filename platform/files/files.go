// Package files keeps the files of the V4 Files API (docs/v4.md §12): an
// account's uploads and the output files of its batches. Records live in
// the store; content lives in a directory under the data dir (SQLite,
// one machine) or in the database itself (PostgreSQL), so replicas share
// files without a shared filesystem (docs/design.md §10).
//
// Checks happen before anything is stored: the per-file size limit, the
// purpose, and for purpose batch a JSONL body (valid UTF-8, a JSON object
// per line, at most MaxLines lines). The account's quota is checked in
// the statement that stores the record, so two uploads racing cannot both
// pass it.
package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
)

// Defaults of Options (docs/v4.md §12: the cloud takes files up to 100 MB
// and batches of up to 50,000 lines).
const (
	DefaultMaxFileBytes = 100 << 20
	DefaultQuotaBytes   = 1 << 30
	DefaultMaxLines     = 50_000
)

// Purposes a client may upload with.
var uploadPurposes = map[string]bool{platform.PurposeBatch: true, platform.PurposeRetrieval: true,
	platform.PurposeFineTune: true, platform.PurposeVoiceClone: true}

// Options configure a Service.
type Options struct {
	Store platform.FileStore
	// Dir keeps content as files under it; empty keeps it in the store.
	Dir string
	// MaxFileBytes bounds one file; QuotaBytes an account's files together
	// (negative: no quota).
	MaxFileBytes int64
	QuotaBytes   int64
	// MaxLines bounds the lines of a batch input file.
	MaxLines int
	Logger   *slog.Logger
	Now      func() time.Time
}

// Service is the file store of the Files API.
type Service struct{ o Options }

// New returns a Service; with Dir set it creates the directory.
func New(o Options) (*Service, error) {
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.QuotaBytes == 0 {
		o.QuotaBytes = DefaultQuotaBytes
	}
	if o.MaxLines <= 0 {
		o.MaxLines = DefaultMaxLines
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Dir != "" {
		if err := os.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("files: %w", err)
		}
	}
	return &Service{o: o}, nil
}

// MaxFileBytes is the per-file limit, for a transport to bound its read.
func (s *Service) MaxFileBytes() int64 { return s.o.MaxFileBytes }

// TooLarge is the refusal of a file over the per-file limit: 413 with
// 1210, as for a request body over --max-body.
func (s *Service) TooLarge() *platform.Error {
	return &platform.Error{Code: platform.CodeBadParams, HTTP: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("file: larger than the %d bytes a file may hold", s.o.MaxFileBytes)}
}

// NotFound is the answer for a file the caller does not own: the same as
// for one that does not exist.
func NotFound(id string) *platform.Error {
	return &platform.Error{Code: platform.CodeTaskNotFound, HTTP: http.StatusNotFound, Message: "no file with id " + v4.Quote(id)}
}

// Create checks and stores an upload of the account.
func (s *Service) Create(ctx context.Context, accountID, filename, purpose string, content []byte) (platform.File, error) {
	if purpose == "" {
		return platform.File{}, platform.Errorf(platform.CodeMissingField, "purpose is required (batch, retrieval, fine-tune, voice-clone-input)")
	}
	if !uploadPurposes[purpose] {
		return platform.File{}, platform.Errorf(platform.CodeInvalidField, "purpose %s is not one of batch, retrieval, fine-tune, voice-clone-input", v4.Quote(purpose))
	}
	if int64(len(content)) > s.o.MaxFileBytes {
		return platform.File{}, s.TooLarge()
	}
	if len(content) == 0 {
		return platform.File{}, platform.Errorf(platform.CodeInvalidField, "file is empty")
	}
	if purpose == platform.PurposeBatch {
		if err := CheckJSONL(content, s.o.MaxLines); err != nil {
			return platform.File{}, err
		}
	}
	if filename == "" {
		filename = "file"
	}
	if len(filename) > 256 {
		filename = filename[:256]
	}
	now := s.o.Now()
	f := platform.File{ID: "file-" + platform.NewID(now), AccountID: accountID, Filename: filename, Purpose: purpose,
		Bytes: int64(len(content)), CreatedAt: now.UTC()}
	if err := s.store(ctx, f, content); err != nil {
		return platform.File{}, err
	}
	return f, nil
}

// store keeps content and record; a refusal by the quota removes content
// written to the directory.
func (s *Service) store(ctx context.Context, f platform.File, content []byte) error {
	inDB := content
	if s.o.Dir != "" {
		if err := writeAtomic(s.path(f.ID), content); err != nil {
			return platform.Wrap(platform.CodeInternal, "could not store the file", err)
		}
		inDB = nil
	}
	created, err := s.o.Store.CreateFile(ctx, f, inDB, s.o.QuotaBytes)
	if err == nil && created {
		return nil
	}
	if s.o.Dir != "" {
		_ = os.Remove(s.path(f.ID))
	}
	if err != nil {
		return platform.Wrap(platform.CodeInternal, "could not store the file", err)
	}
	used, _ := s.o.Store.FileBytes(ctx, f.AccountID)
	s.o.Logger.Warn("files: upload refused by the storage quota", "account", f.AccountID, "bytes", f.Bytes, "used", used, "quota", s.o.QuotaBytes)
	return &platform.Error{Code: platform.CodeBadParams, HTTP: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("storage quota: the account's files hold %d of %d bytes, and this file has %d; delete files first", used, s.o.QuotaBytes, f.Bytes)}
}

// Put stores a file the server writes for an account (a batch's output),
// outside the quota, replacing one of the same id.
func (s *Service) Put(ctx context.Context, f platform.File, content []byte) error {
	f.Bytes = int64(len(content))
	inDB := content
	if s.o.Dir != "" {
		if err := writeAtomic(s.path(f.ID), content); err != nil {
			return fmt.Errorf("files: put %s: %w", f.ID, err)
		}
		inDB = nil
	}
	if err := s.o.Store.ReplaceFile(ctx, f, inDB); err != nil {
		return fmt.Errorf("files: put %s: %w", f.ID, err)
	}
	return nil
}

// Get returns the account's file record.
func (s *Service) Get(ctx context.Context, accountID, id string) (platform.File, error) {
	f, err := s.o.Store.GetFile(ctx, accountID, id)
	if errors.Is(err, platform.ErrNotFound) {
		return f, NotFound(id)
	}
	if err != nil {
		return f, platform.Wrap(platform.CodeInternal, "could not read the file", err)
	}
	return f, nil
}

// Content returns the account's file and its content.
func (s *Service) Content(ctx context.Context, accountID, id string) (platform.File, []byte, error) {
	f, err := s.Get(ctx, accountID, id)
	if err != nil {
		return f, nil, err
	}
	var b []byte
	if s.o.Dir != "" {
		b, err = os.ReadFile(s.path(id))
	} else {
		b, err = s.o.Store.FileContent(ctx, id)
	}
	if err != nil {
		return f, nil, platform.Wrap(platform.CodeInternal, "could not read the file's content", err)
	}
	return f, b, nil
}

// List returns a page of the account's files and whether more follow.
func (s *Service) List(ctx context.Context, q platform.FileQuery) ([]platform.File, bool, error) {
	want := q.Limit
	q.Limit++
	fs, err := s.o.Store.ListFiles(ctx, q)
	if err != nil {
		return nil, false, platform.Wrap(platform.CodeInternal, "could not list files", err)
	}
	more := len(fs) > want
	if more {
		fs = fs[:want]
	}
	return fs, more, nil
}

// Delete deletes the account's file. A batch that read the file keeps
// running: its lines were copied when it was created (docs/design.md §10).
func (s *Service) Delete(ctx context.Context, accountID, id string) error {
	err := s.o.Store.DeleteFile(ctx, accountID, id)
	if errors.Is(err, platform.ErrNotFound) {
		return NotFound(id)
	}
	if err != nil {
		return platform.Wrap(platform.CodeInternal, "could not delete the file", err)
	}
	if s.o.Dir != "" {
		if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.o.Logger.Warn("files: content left behind after delete", "file", id, "err", err)
		}
	}
	return nil
}

// path is where a file's content lives under Dir; ids are the server's
// own ("file-" and hex), never a client's name.
func (s *Service) path(id string) string { return filepath.Join(s.o.Dir, filepath.Base(id)) }

// writeAtomic writes through a temporary file and a rename, so a crash
// leaves the old content or the new, never a torn file.
func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// CheckJSONL checks a batch input file: valid UTF-8, every non-blank line
// a JSON object, at most maxLines lines. What a line must hold is checked
// when a batch is created from the file (platform/batch), where each bad
// line becomes a line of the batch's error file rather than a refusal.
func CheckJSONL(b []byte, maxLines int) error {
	if !utf8.Valid(b) {
		return platform.Errorf(platform.CodeInvalidField, "file: a batch file must be UTF-8 text (JSONL)")
	}
	n := 0
	for i, line := range Lines(b) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		n++
		if n > maxLines {
			return platform.Errorf(platform.CodeInvalidField, "file: a batch file may hold at most %d lines", maxLines)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(line, &obj); err != nil {
			return platform.Errorf(platform.CodeInvalidField, "file: line %d is not a JSON object (JSONL: one request object per line)", i+1)
		}
	}
	if n == 0 {
		return platform.Errorf(platform.CodeInvalidField, "file: a batch file needs at least one line")
	}
	return nil
}

// Lines splits JSONL content into its lines (line i+1 is Lines[i]).
func Lines(b []byte) [][]byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	out := bytes.Split(b, []byte("\n"))
	for i, l := range out {
		out[i] = bytes.TrimSuffix(l, []byte("\r"))
	}
	return out
}
