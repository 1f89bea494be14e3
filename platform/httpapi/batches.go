package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/zhipuai"
)

// Batches is the Batch API's service (platform/batch.Service implements
// it). Every method answers a *platform.Error a client may see.
type Batches interface {
	Create(ctx context.Context, caller platform.Principal, p zhipuai.BatchCreateParams,
		check func(op string, body []byte) (model string, prompt int, err error)) (platform.Batch, error)
	Get(ctx context.Context, accountID, id string) (platform.Batch, error)
	List(ctx context.Context, q platform.BatchQuery) ([]platform.Batch, bool, error)
	Cancel(ctx context.Context, accountID, id string) (platform.Batch, error)
}

// BatchWaker is told when a batch was created, so a worker starts on it
// at once (platform/batch.Runner implements it).
type BatchWaker interface{ Wake() }

// CheckBatchBody validates one batch line's body exactly as a request to
// op's route is validated (the same decoding and the same validators),
// returning its model and prompt estimate; platform/batch calls it for
// every line when a batch is created (docs/design.md §10).
func (s *Server) CheckBatchBody(op string, body []byte) (string, int, error) {
	switch op {
	case platform.BatchOpChat:
		var req zhipuai.ChatCompletionRequest
		if err := decodeBody(body, &req); err != nil {
			return "", 0, err
		}
		_, prompt, err := s.checkChat(&req)
		return req.Model, prompt, err
	case platform.BatchOpEmbeddings:
		var req zhipuai.EmbeddingRequest
		if err := decodeBody(body, &req); err != nil {
			return "", 0, err
		}
		_, prompt, err := s.validateEmbeddings(&req)
		return req.Model, prompt, err
	}
	return "", 0, invalid("no batch operation %q", op)
}

func decodeBody(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return platform.Errorf(platform.CodeBadParams, "body is not valid JSON for this API: %s", v4.JSONProblem(err))
	}
	return nil
}

// handleBatchCreate serves POST /batches.
func (s *Server) handleBatchCreate(x *exchange) {
	var p zhipuai.BatchCreateParams
	if _, ok := x.readJSON(&p); !ok {
		return
	}
	b, err := s.opts.Batches.Create(x.r.Context(), platform.Principal{AccountID: x.call.Row.AccountID, KeyID: x.call.Row.KeyID}, p, s.CheckBatchBody)
	if err != nil {
		x.fail(err)
		return
	}
	if s.opts.BatchWaker != nil {
		s.opts.BatchWaker.Wake()
	}
	s.writeBatch(x, b)
}

// handleBatchGet serves GET /batches/{id}.
func (s *Server) handleBatchGet(x *exchange) {
	b, err := s.opts.Batches.Get(x.r.Context(), x.call.Row.AccountID, x.r.PathValue("id"))
	if err != nil {
		x.fail(err)
		return
	}
	s.writeBatch(x, b)
}

// handleBatchCancel serves POST /batches/{id}/cancel (no body).
func (s *Server) handleBatchCancel(x *exchange) {
	b, err := s.opts.Batches.Cancel(x.r.Context(), x.call.Row.AccountID, x.r.PathValue("id"))
	if err != nil {
		x.fail(err)
		return
	}
	s.writeBatch(x, b)
}

// handleBatchList serves GET /batches (after, limit): newest first, the
// SDK's cursor page.
func (s *Server) handleBatchList(x *exchange) {
	q := x.r.URL.Query()
	limit, err := pageLimit(q.Get("limit"), 20, 100)
	if err != nil {
		x.fail(err)
		return
	}
	bs, more, err := s.opts.Batches.List(x.r.Context(), platform.BatchQuery{AccountID: x.call.Row.AccountID, After: q.Get("after"), Limit: limit})
	if err != nil {
		x.fail(err)
		return
	}
	out := zhipuai.BatchList{Object: "list", Data: make([]zhipuai.Batch, 0, len(bs)), HasMore: more}
	for _, b := range bs {
		out.Data = append(out.Data, WireBatch(b))
	}
	if len(bs) > 0 {
		out.FirstID, out.LastID = bs[0].ID, bs[len(bs)-1].ID
	}
	if writeJSON(x.w, x.id, http.StatusOK, out) == nil {
		x.ok(http.StatusOK)
	}
}

func (s *Server) writeBatch(x *exchange, b platform.Batch) {
	if writeJSON(x.w, x.id, http.StatusOK, WireBatch(b)) == nil {
		x.ok(http.StatusOK)
	}
}

// WireBatch is the SDK's Batch object for b (docs/v4.md §12).
func WireBatch(b platform.Batch) zhipuai.Batch {
	ts := func(t time.Time) *int64 {
		if t.IsZero() {
			return nil
		}
		v := t.Unix()
		return &v
	}
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	w := zhipuai.Batch{ID: b.ID, Object: "batch", Endpoint: b.Endpoint, InputFileID: b.InputFileID,
		CompletionWindow: b.CompletionWindow, Status: b.Status, CreatedAt: b.CreatedAt.Unix(),
		OutputFileID: str(b.OutputFileID), ErrorFileID: str(b.ErrorFileID),
		InProgressAt: ts(b.InProgressAt), ExpiresAt: ts(b.ExpiresAt), FinalizingAt: ts(b.FinalizingAt),
		CompletedAt: ts(b.CompletedAt), FailedAt: ts(b.FailedAt), ExpiredAt: ts(b.ExpiredAt),
		CancellingAt: ts(b.CancellingAt), CancelledAt: ts(b.CancelledAt),
		RequestCounts: &zhipuai.BatchRequestCounts{Total: b.Total, Completed: b.Completed, Failed: b.Failed},
		Metadata:      b.Metadata}
	if len(b.Errors) > 0 {
		w.Errors = &zhipuai.BatchErrors{Object: "list"}
		for _, e := range b.Errors {
			line := e.Line
			w.Errors.Data = append(w.Errors.Data, zhipuai.BatchError{Code: e.Code, Line: &line, Message: e.Message})
		}
	}
	return w
}
