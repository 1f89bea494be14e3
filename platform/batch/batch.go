// Package batch runs the V4 Batch API (docs/v4.md §12, docs/design.md
// §10): a batch is created from an uploaded JSONL file whose every line
// is checked up front with the same validator as the HTTP API; valid
// lines are stored as rows and run by durable workers (Runner) as metered
// calls at the batch price; a finalizer writes the output and error files
// in the cloud's line format.
package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/files"
	"github.com/glmkit/glmkit/zhipuai"
)

// Op returns the operation of an endpoint spelling, or "".
func Op(endpoint string) string { return platform.BatchOp(endpoint) }

// Operations, as platform names them.
const (
	OpChat       = platform.BatchOpChat
	OpEmbeddings = platform.BatchOpEmbeddings
)

// Checker validates one line's body for op exactly as the HTTP API
// validates a request to it, returning the model and the prompt estimate
// (httpapi.Server.CheckBatchBody).
type Checker = func(op string, body []byte) (model string, prompt int, err error)

// Limits of the create call (the SDK's documented bounds).
const (
	maxMetadataKeys  = 16
	maxMetadataKey   = 64
	maxMetadataValue = 512
	// maxListedErrors bounds the line errors a Batch object lists; the
	// error file has them all.
	maxListedErrors = 100
	// Window is the only completion window (the cloud's).
	Window = "24h"
)

// Service creates, reads and cancels batches.
type Service struct {
	store platform.BatchStore
	files *files.Service
	now   func() time.Time
}

// New returns a Service.
func New(store platform.BatchStore, fs *files.Service, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, files: fs, now: now}
}

// NotFound answers an unknown batch (or another account's) with 404.
func NotFound(id string) *platform.Error {
	return &platform.Error{Code: platform.CodeTaskNotFound, HTTP: http.StatusNotFound, Message: "no batch with id " + v4.Quote(id)}
}

// inputLine is a line of an input file as decoded for checking.
type inputLine struct {
	CustomID *string         `json:"custom_id"`
	Method   string          `json:"method"`
	URL      string          `json:"url"`
	Body     json.RawMessage `json:"body"`
}

// Create checks the parameters and every line of the input file, and
// stores the batch: valid lines queued, invalid ones failed with their
// error line. A batch with no valid line ends failed at once, with its
// error file.
func (s *Service) Create(ctx context.Context, caller platform.Principal, p zhipuai.BatchCreateParams, check Checker) (platform.Batch, error) {
	op, err := checkParams(&p)
	if err != nil {
		return platform.Batch{}, err
	}
	f, content, err := s.files.Content(ctx, caller.AccountID, p.InputFileID)
	if err != nil {
		return platform.Batch{}, err
	}
	if f.Purpose != platform.PurposeBatch {
		return platform.Batch{}, platform.Errorf(platform.CodeInvalidField,
			"input_file_id: file %s has purpose %s; a batch reads a file uploaded with purpose batch", v4.Quote(f.ID), v4.Quote(f.Purpose))
	}
	now := s.now()
	b := platform.Batch{ID: "batch_" + platform.NewID(now), AccountID: caller.AccountID, KeyID: caller.KeyID,
		Endpoint: p.Endpoint, InputFileID: p.InputFileID, CompletionWindow: p.CompletionWindow, Metadata: p.Metadata,
		AutoDeleteInput: p.AutoDeleteInputFile != nil && *p.AutoDeleteInputFile,
		Status:          platform.BatchInProgress, CreatedAt: now.UTC(), InProgressAt: now.UTC(), ExpiresAt: now.Add(24 * time.Hour).UTC()}
	lines := parseLines(b.ID, op, content, check)
	for _, l := range lines {
		b.Total++
		if l.State == platform.LineFailed {
			b.Failed++
			if len(b.Errors) < maxListedErrors {
				var r zhipuai.BatchResultLine
				_ = json.Unmarshal(l.Result, &r)
				b.Errors = append(b.Errors, platform.BatchError{Code: r.Error.Code, Line: l.Line, Message: r.Error.Message})
			}
		}
	}
	if b.Failed == b.Total {
		b.Final = platform.BatchFailed
	}
	if err := s.store.CreateBatch(ctx, b, lines); err != nil {
		return platform.Batch{}, platform.Wrap(platform.CodeInternal, "could not store the batch", err)
	}
	return b, nil
}

// checkParams checks a create body and returns its operation.
func checkParams(p *zhipuai.BatchCreateParams) (string, error) {
	switch {
	case p.InputFileID == "":
		return "", platform.Errorf(platform.CodeMissingField, "input_file_id is required")
	case p.Endpoint == "":
		return "", platform.Errorf(platform.CodeMissingField, "endpoint is required (/v1/chat/completions or /v1/embeddings)")
	}
	op := Op(p.Endpoint)
	if op == "" {
		return "", platform.Errorf(platform.CodeInvalidField, "endpoint %s is not /v1/chat/completions or /v1/embeddings", v4.Quote(p.Endpoint))
	}
	if p.CompletionWindow == "" {
		p.CompletionWindow = Window
	}
	if p.CompletionWindow != Window {
		return "", platform.Errorf(platform.CodeInvalidField, "completion_window %s: only %q is supported", v4.Quote(p.CompletionWindow), Window)
	}
	if len(p.Metadata) > maxMetadataKeys {
		return "", platform.Errorf(platform.CodeInvalidField, "metadata: at most %d keys, got %d", maxMetadataKeys, len(p.Metadata))
	}
	for k, v := range p.Metadata {
		if len(k) > maxMetadataKey || len(v) > maxMetadataValue {
			return "", platform.Errorf(platform.CodeInvalidField, "metadata: keys are at most %d bytes and values %d", maxMetadataKey, maxMetadataValue)
		}
	}
	return op, nil
}

// parseLines checks each line of an input file; blank lines are skipped
// but keep their number, so an error names the line an editor shows.
func parseLines(batchID, op string, content []byte, check Checker) []platform.BatchLine {
	var out []platform.BatchLine
	seen := map[string]int{}
	for i, raw := range files.Lines(content) {
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		n := i + 1
		l := platform.BatchLine{Line: n, State: platform.LineQueued}
		fail := func(code, format string, args ...any) {
			l.State = platform.LineFailed
			l.Result = ErrorLine(batchID, l, &platform.Error{Code: code, Message: fmt.Sprintf(format, args...)})
		}
		var in inputLine
		switch err := json.Unmarshal(raw, &in); {
		case err != nil:
			fail(platform.CodeBadParams, "line %d is not a JSON object: %s", n, v4.JSONProblem(err))
		case in.CustomID == nil || *in.CustomID == "":
			fail(platform.CodeMissingField, "line %d: custom_id is required", n)
		default:
			l.CustomID = *in.CustomID
			if first, dup := seen[l.CustomID]; dup {
				fail(platform.CodeInvalidField, "line %d: custom_id %s is already used on line %d; each line needs its own", n, v4.Quote(l.CustomID), first)
				break
			}
			seen[l.CustomID] = n
			checkLine(&l, op, in, check, fail)
		}
		if l.State == platform.LineQueued {
			l.Body = in.Body
		}
		out = append(out, l)
	}
	return out
}

// checkLine checks method, url and body of a decoded line.
func checkLine(l *platform.BatchLine, op string, in inputLine, check Checker, fail func(code, format string, args ...any)) {
	n := l.Line
	switch {
	case !strings.EqualFold(in.Method, http.MethodPost):
		fail(platform.CodeInvalidField, "line %d: method must be POST, got %s", n, v4.Quote(in.Method))
		return
	case Op(in.URL) != op:
		fail(platform.CodeInvalidField, "line %d: url %s is not this batch's endpoint (%s); a batch runs one endpoint", n, v4.Quote(in.URL), op)
		return
	case len(in.Body) == 0 || string(in.Body) == "null":
		fail(platform.CodeMissingField, "line %d: body is required", n)
		return
	}
	model, prompt, err := check(op, in.Body)
	if err != nil {
		e := platform.AsError(err)
		fail(e.Code, "line %d: %s", n, e.Message)
		return
	}
	l.Model, l.Prompt = model, prompt
}

// ErrorLine is a line of the error file for a line that failed: the
// cloud's line format with the V4 error envelope as the response body and
// the error beside it.
func ErrorLine(batchID string, l platform.BatchLine, e *platform.Error) []byte {
	id := platform.LineRequestID(batchID, l.Line)
	env, _ := json.Marshal(zhipuai.ErrorEnvelope{Error: zhipuai.ErrorBody{Code: zhipuai.ErrorCode(e.Code), Message: e.Message}})
	b, _ := json.Marshal(zhipuai.BatchResultLine{ID: id, CustomID: l.CustomID,
		Response: &zhipuai.BatchResponse{StatusCode: e.Status(), RequestID: id, Body: env},
		Error:    &zhipuai.BatchLineError{Code: e.Code, Message: e.Message}})
	return b
}

// notRunLine is the error line of a line that never ran (expired,
// cancelled): no response, only the reason.
func notRunLine(batchID string, l platform.BatchLine, code, message string) []byte {
	b, _ := json.Marshal(zhipuai.BatchResultLine{ID: platform.LineRequestID(batchID, l.Line), CustomID: l.CustomID,
		Error: &zhipuai.BatchLineError{Code: code, Message: message}})
	return b
}

// Get returns the caller's batch.
func (s *Service) Get(ctx context.Context, accountID, id string) (platform.Batch, error) {
	b, err := s.store.GetBatch(ctx, accountID, id)
	if errors.Is(err, platform.ErrNotFound) {
		return b, NotFound(id)
	}
	if err != nil {
		return b, platform.Wrap(platform.CodeInternal, "could not read the batch", err)
	}
	return b, nil
}

// List returns a page of batches (newest first) and whether more follow.
func (s *Service) List(ctx context.Context, q platform.BatchQuery) ([]platform.Batch, bool, error) {
	want := q.Limit
	q.Limit++
	bs, err := s.store.ListBatches(ctx, q)
	if err != nil {
		return nil, false, platform.Wrap(platform.CodeInternal, "could not list batches", err)
	}
	more := len(bs) > want
	if more {
		bs = bs[:want]
	}
	return bs, more, nil
}

// Cancel stops a validating or running batch. A batch in another status
// answers 409 with 1214 naming its status.
func (s *Service) Cancel(ctx context.Context, accountID, id string) (platform.Batch, error) {
	b, ok, err := s.store.CancelBatch(ctx, accountID, id, s.now())
	if errors.Is(err, platform.ErrNotFound) {
		return b, NotFound(id)
	}
	if err != nil {
		return b, platform.Wrap(platform.CodeInternal, "could not cancel the batch", err)
	}
	if !ok {
		return b, &platform.Error{Code: platform.CodeInvalidField, HTTP: http.StatusConflict,
			Message: fmt.Sprintf("batch %s is %s; only a validating or in_progress batch can be cancelled", v4.Quote(id), b.Status)}
	}
	return b, nil
}
