package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/zhipuai"
)

// handleAsyncSubmit serves POST /async/chat/completions: the task is stored
// (PROCESSING) and the reply returns at once; a worker runs it (docs/v4.md §4).
func (s *Server) handleAsyncSubmit(x *exchange) {
	var req zhipuai.ChatCompletionRequest
	if _, ok := x.readJSON(&req); !ok {
		return
	}
	x.call.Row.Model, x.call.Row.RequestID = req.Model, req.RequestID
	_, prompt, err := s.checkChat(&req)
	if err != nil {
		x.fail(err)
		return
	}
	// The submission's stage of the limits: the rate and the daily quota
	// refuse it now (1303, 1304). Concurrency, the daily quota again, the
	// reservation and the settle apply when a worker runs the task (its own
	// request-log row, EndpointAsyncTask; docs/design.md §3 "Limits").
	if err := x.call.Admit(x.r.Context(), req.Model, prompt); err != nil {
		x.fail(err)
		return
	}
	req.Stream = false // an async task always completes whole
	body, err := json.Marshal(&req)
	if err != nil {
		x.fail(platform.Wrap(platform.CodeInternal, "internal error", err))
		return
	}
	now := s.now()
	id := platform.NewID(now)
	reqID := req.RequestID
	if reqID == "" {
		reqID = id
	}
	t := platform.Task{ID: id, AccountID: x.call.Row.AccountID, KeyID: x.call.Row.KeyID, RequestID: reqID,
		Model: req.Model, State: platform.TaskQueued, Request: body, CreatedAt: now.UTC()}
	if err := s.opts.Tasks.Submit(x.r.Context(), t); err != nil {
		var refused *platform.Error
		if !errors.As(err, &refused) { // a refusal (a full queue, 1302) is the client's answer
			refused = platform.Wrap(platform.CodeInternal, "could not queue the task", err)
		}
		x.fail(refused)
		return
	}
	x.call.Row.RequestID = reqID
	if writeJSON(x.w, x.id, http.StatusOK, zhipuai.AsyncTaskStatus{ID: id, RequestID: reqID, Model: req.Model,
		TaskStatus: zhipuai.TaskProcessing}) == nil {
		x.ok(http.StatusOK)
	}
}

// handleAsyncResult serves GET /async-result/{id}. Another account's task
// answers exactly like an unknown id.
func (s *Server) handleAsyncResult(x *exchange) {
	id := x.r.PathValue("id")
	t, err := s.opts.Tasks.Get(x.r.Context(), x.call.Row.AccountID, id)
	if err != nil {
		if errors.Is(err, platform.ErrNotFound) {
			x.fail(&platform.Error{Code: platform.CodeTaskNotFound, HTTP: http.StatusNotFound, Message: "no task with id " + v4.Quote(id)})
			return
		}
		x.fail(platform.Wrap(platform.CodeInternal, "internal error", err))
		return
	}
	x.call.Row.Model, x.call.Row.RequestID = t.Model, t.RequestID
	out := zhipuai.AsyncCompletion{ID: t.ID, RequestID: t.RequestID, Model: t.Model, TaskStatus: t.WireStatus()}
	switch t.State {
	case platform.TaskSucceeded:
		var c zhipuai.ChatCompletion
		if err := json.Unmarshal(t.Result, &c); err != nil {
			x.fail(platform.Wrap(platform.CodeInternal, "stored task result is unreadable", err))
			return
		}
		out.Created, out.Choices, out.WebSearch, out.ContentFilter = c.Created, c.Choices, c.WebSearch, c.ContentFilter
		u := c.Usage
		out.Usage = &u
		if out.Choices == nil {
			out.Choices = []zhipuai.Choice{}
		}
	case platform.TaskFailed:
		code := t.ErrorCode
		if code == "" {
			code = platform.CodeInternal
		}
		out.Error = &zhipuai.ErrorBody{Code: zhipuai.ErrorCode(code), Message: t.ErrorMessage}
		if !t.FinishedAt.IsZero() {
			out.Created = t.FinishedAt.Unix()
		}
	default:
		out.Created = t.CreatedAt.Truncate(time.Second).Unix()
	}
	if writeJSON(x.w, x.id, http.StatusOK, out) == nil {
		x.ok(http.StatusOK)
	}
}
