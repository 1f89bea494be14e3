package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/zhipuai"
)

// Files is the file store of the Files API (platform/files.Service
// implements it). Every method answers a *platform.Error a client may
// see; another account's file is the same 404 as a missing one.
type Files interface {
	MaxFileBytes() int64
	TooLarge() *platform.Error
	Create(ctx context.Context, accountID, filename, purpose string, content []byte) (platform.File, error)
	Get(ctx context.Context, accountID, id string) (platform.File, error)
	Content(ctx context.Context, accountID, id string) (platform.File, []byte, error)
	List(ctx context.Context, q platform.FileQuery) ([]platform.File, bool, error)
	Delete(ctx context.Context, accountID, id string) error
}

// multipartSlack is what a multipart body may hold beyond the file: the
// boundaries, part headers and the purpose field.
const multipartSlack = 64 << 10

func wireFile(f platform.File) zhipuai.FileObject {
	return zhipuai.FileObject{ID: f.ID, Object: "file", Bytes: f.Bytes, CreatedAt: f.CreatedAt.Unix(), Filename: f.Filename,
		Purpose: f.Purpose, Status: "processed"}
}

// handleFileCreate serves POST /files: multipart form data with the
// part "file" and the field "purpose" (docs/v4.md §12), read as it
// streams in and refused once the file passes the per-file limit.
func (s *Server) handleFileCreate(x *exchange) {
	mt, _, err := mime.ParseMediaType(x.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		x.fail(platform.Errorf(platform.CodeBadParams, "send the file as multipart/form-data with a part \"file\" and a field \"purpose\""))
		return
	}
	limit := s.opts.Files.MaxFileBytes()
	if x.r.ContentLength > limit+multipartSlack {
		x.fail(s.opts.Files.TooLarge())
		return
	}
	mr, err := x.r.MultipartReader()
	if err != nil {
		x.fail(&platform.Error{Code: platform.CodeBadParams, Message: "the multipart body cannot be read", Err: err})
		return
	}
	var (
		purpose, filename string
		content           []byte
		haveFile          bool
	)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			x.fail(bodyError("the multipart body cannot be read", err))
			return
		}
		switch part.FormName() {
		case "purpose":
			b, err := io.ReadAll(io.LimitReader(part, 256))
			if err != nil {
				x.fail(bodyError("the multipart body cannot be read", err))
				return
			}
			purpose = string(b)
		case "file":
			haveFile, filename = true, part.FileName()
			content, err = io.ReadAll(io.LimitReader(part, limit+1))
			if err != nil {
				x.fail(bodyError("the file did not arrive whole", err))
				return
			}
			if int64(len(content)) > limit {
				x.fail(s.opts.Files.TooLarge())
				return
			}
		default:
			// Other form fields the SDKs send (knowledge_id, …) are
			// ignored, as unknown JSON keys are.
			if _, err := io.Copy(io.Discard, io.LimitReader(part, multipartSlack)); err != nil {
				x.fail(bodyError("the multipart body cannot be read", err))
				return
			}
		}
	}
	if !haveFile {
		x.fail(platform.Errorf(platform.CodeMissingField, "file is required: a multipart part named \"file\""))
		return
	}
	f, err := s.opts.Files.Create(x.r.Context(), x.call.Row.AccountID, filename, purpose, content)
	if err != nil {
		x.fail(err)
		return
	}
	if writeJSON(x.w, x.id, http.StatusOK, wireFile(f)) == nil {
		x.ok(http.StatusOK)
	}
}

// bodyError answers a body that failed to arrive: 408 when the listener's
// body deadline cut it, else 1210.
func bodyError(msg string, err error) *platform.Error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &platform.Error{Code: platform.CodeBadParams, HTTP: http.StatusRequestTimeout, Message: "the request body did not arrive in time", Err: err}
	}
	return &platform.Error{Code: platform.CodeBadParams, Message: msg, Err: err}
}

// handleFileList serves GET /files (purpose, limit, after, order).
func (s *Server) handleFileList(x *exchange) {
	q := x.r.URL.Query()
	limit, err := pageLimit(q.Get("limit"), 20, 100)
	if err != nil {
		x.fail(err)
		return
	}
	fq := platform.FileQuery{AccountID: x.call.Row.AccountID, Purpose: q.Get("purpose"), After: q.Get("after"), Limit: limit}
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		fq.Ascending = true
	default:
		x.fail(invalid("order must be asc or desc, got %s", v4.Quote(q.Get("order"))))
		return
	}
	fs, more, err := s.opts.Files.List(x.r.Context(), fq)
	if err != nil {
		x.fail(err)
		return
	}
	out := zhipuai.ListOfFileObject{Object: "list", Data: make([]zhipuai.FileObject, 0, len(fs)), HasMore: more}
	for _, f := range fs {
		out.Data = append(out.Data, wireFile(f))
	}
	if writeJSON(x.w, x.id, http.StatusOK, out) == nil {
		x.ok(http.StatusOK)
	}
}

// pageLimit reads a limit parameter: def when absent, 1..max.
func pageLimit(v string, def, max int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, invalid("limit must be an integer from 1 to %d, got %s", max, v4.Quote(v))
	}
	return n, nil
}

// handleFileGet serves GET /files/{id}.
func (s *Server) handleFileGet(x *exchange) {
	f, err := s.opts.Files.Get(x.r.Context(), x.call.Row.AccountID, x.r.PathValue("id"))
	if err != nil {
		x.fail(err)
		return
	}
	if writeJSON(x.w, x.id, http.StatusOK, wireFile(f)) == nil {
		x.ok(http.StatusOK)
	}
}

// handleFileContent serves GET /files/{id}/content: the bytes as stored.
func (s *Server) handleFileContent(x *exchange) {
	f, b, err := s.opts.Files.Content(x.r.Context(), x.call.Row.AccountID, x.r.PathValue("id"))
	if err != nil {
		x.fail(err)
		return
	}
	ct := "application/octet-stream"
	if f.Purpose == platform.PurposeBatch || f.Purpose == platform.PurposeBatchOutput {
		ct = "application/jsonl"
	}
	x.w.Header().Set("Content-Type", ct)
	x.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	x.w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", f.Filename))
	x.w.WriteHeader(http.StatusOK)
	x.ok(http.StatusOK)
	if _, err := x.w.Write(b); err != nil {
		x.call.SetErrorDetail(err)
	}
}

// handleFileDelete serves DELETE /files/{id}.
func (s *Server) handleFileDelete(x *exchange) {
	id := x.r.PathValue("id")
	if err := s.opts.Files.Delete(x.r.Context(), x.call.Row.AccountID, id); err != nil {
		x.fail(err)
		return
	}
	if writeJSON(x.w, x.id, http.StatusOK, zhipuai.FileDeleted{ID: id, Deleted: true, Object: "file"}) == nil {
		x.ok(http.StatusOK)
	}
}
