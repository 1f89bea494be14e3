package anthropic

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/metered"
)

// exchange is one request on its way through the handler. As in the V4
// API, its metered call owns the request-log row, the settlement and the
// permit and does each once when finish ends it; the exchange adds what
// HTTP knows: the status line, the Anthropic envelope, the client's
// presence.
type exchange struct {
	s     *Server
	w     http.ResponseWriter
	r     *http.Request
	id    string
	start time.Time
	call  metered.Call

	wroteHeader bool
}

func (s *Server) begin(x *exchange, w http.ResponseWriter, r *http.Request, endpoint string) {
	now := s.now()
	id := platform.NewID(now)
	// Anthropic's SDKs read request-id into their errors; X-Request-Id is
	// the platform's header, the request-log row's id.
	w.Header().Set("X-Request-Id", id)
	w.Header().Set("request-id", id)
	x.s, x.w, x.r, x.id, x.start = s, w, r, id, now
	s.opts.Calls.Begin(&x.call, id, endpoint, now)
	x.call.Presence = x
}

// Left implements metered.Presence: the client hung up (a context ended
// by the server's drain is no client leaving).
func (x *exchange) Left() bool { return x.r.Context().Err() != nil && !x.s.draining.Load() }

// authenticate takes the key from x-api-key (older SDKs) or from
// Authorization: Bearer (current SDKs and ANTHROPIC_AUTH_TOKEN); both carry
// the platform's own keys (docs/anthropic.md §1). anthropic-version is
// accepted whatever date it names: the translation does not depend on it.
func (x *exchange) authenticate() bool {
	h := x.r.Header.Get("Authorization")
	if k := strings.TrimSpace(x.r.Header.Get("X-Api-Key")); k != "" {
		h = "Bearer " + k
	}
	p, err := x.s.opts.Auth.Authenticate(x.r.Context(), h)
	if err != nil {
		x.fail(err)
		return false
	}
	x.call.SetCaller(p)
	return true
}

// fail answers with the Anthropic error envelope when nothing has been
// written yet; the row keeps the V4 code.
func (x *exchange) fail(err error) {
	e := platform.AsError(err)
	if e.Code == platform.CodeInternal && e.Err != nil {
		x.s.log.Error("request failed", "request_id", x.id, "endpoint", x.call.Row.Endpoint, "err", e.Err)
	}
	x.call.Row.ErrorCode = e.Code
	if x.wroteHeader {
		return
	}
	status, env := Envelope(e, x.id)
	x.call.Row.HTTPStatus = status
	x.wroteHeader = true
	body, _ := json.Marshal(env)
	writeBody(x.w, status, body)
}

// writeJSON answers v with status.
func (x *exchange) writeJSON(status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		x.fail(platform.Wrap(platform.CodeInternal, "internal error", err))
		return
	}
	writeBody(x.w, status, body)
	x.call.Row.HTTPStatus = status
	x.wroteHeader = true
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (x *exchange) recoverPanic() {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			panic(v)
		}
		x.fail(platform.Wrap(platform.CodeInternal, "internal error", fmt.Errorf("panic: %v\n%s", v, debug.Stack())))
	}
}

// readJSON reads the bounded body whole (docs/design.md §3 "Outbound
// bodies") and decodes it into v: over the limit 413, not arriving in
// time 408, not the endpoint's JSON 400 — each with V4 code 1210.
func (x *exchange) readJSON(v any) bool {
	limit := x.s.opts.MaxBodyBytes
	tooLarge := &platform.Error{Code: platform.CodeBadParams, HTTP: http.StatusRequestEntityTooLarge,
		Message: fmt.Sprintf("request body larger than %d bytes", limit)}
	if x.r.ContentLength > limit {
		x.fail(tooLarge)
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(x.w, x.r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		x.fail(tooLarge)
		return false
	case errors.Is(err, os.ErrDeadlineExceeded):
		x.fail(&platform.Error{Code: platform.CodeBadParams, HTTP: http.StatusRequestTimeout,
			Message: "the request body did not arrive in time", Err: err})
		return false
	case err != nil:
		x.fail(&platform.Error{Code: platform.CodeBadParams, Message: "could not read the request body", Err: err})
		return false
	}
	if len(body) == 0 {
		x.fail(platform.Errorf(platform.CodeBadParams, "request body is empty; send a JSON object"))
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		x.fail(&platform.Error{Code: platform.CodeBadParams, Message: "request body is not valid JSON for the Messages API: " + v4.JSONProblem(err)})
		return false
	}
	return true
}

// finish ends the metered call (settle, release, row) once the response
// is complete or the client is gone, and counts the request.
func (x *exchange) finish() {
	if !x.wroteHeader {
		x.fail(platform.Errorf(platform.CodeInternal, "internal error"))
	}
	row := x.call.End(x.r.Context())
	x.s.metrics.requests.WithLabelValues(row.Endpoint, strconv.Itoa(row.HTTPStatus), row.ErrorCode).Inc()
}

// gone marks a request its client abandoned: 499, nothing more written.
func (x *exchange) gone() {
	x.call.Row.HTTPStatus = 499
	x.wroteHeader = true
}

// callFailed answers a metered call that failed before any byte went out.
func (x *exchange) callFailed(err error) {
	if x.call.CallerLeft() {
		x.gone()
		return
	}
	x.fail(err)
}
