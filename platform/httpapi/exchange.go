package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/glmkit/glmkit/internal/readsized"
	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/metered"
)

// exchange is one API request on its way through the HTTP layer. Its
// metered call owns the request-log row, the settlement and the permit,
// and does each exactly once when finish ends it, whatever path the
// request took; the exchange adds what only HTTP knows: the status line,
// envelopes, and whether the client is still there.
type exchange struct {
	s  *Server
	w  http.ResponseWriter
	r  *http.Request
	id string // server request id: X-Request-Id, request-log primary key
	// idHeader holds id as the X-Request-Id header value: the exchange is
	// on the heap anyway, Header.Set would allocate the slice per request.
	idHeader [1]string
	start    time.Time
	call     metered.Call

	wroteHeader bool // a status line went out (no envelope possible after)
}

func (s *Server) begin(x *exchange, w http.ResponseWriter, r *http.Request, endpoint string) {
	now := s.now()
	id := platform.NewID(now)
	x.idHeader[0] = id
	w.Header()["X-Request-Id"] = x.idHeader[:]
	x.s, x.w, x.r, x.id, x.start = s, w, r, id, now
	s.calls.Begin(&x.call, id, endpoint, now)
	x.call.Presence = x
}

// Left implements metered.Presence: the client hung up. A request context
// ended by the server's drain is no client leaving.
func (x *exchange) Left() bool {
	return x.r.Context().Err() != nil && !x.s.draining.Load()
}

// authenticate checks the Authorization header; on failure it answers 401
// with 1001–1004.
func (x *exchange) authenticate() bool {
	p, err := x.s.opts.Auth.Authenticate(x.r.Context(), x.r.Header.Get("Authorization"))
	if err != nil {
		x.fail(err)
		return false
	}
	x.call.SetCaller(p)
	return true
}

// fail answers with the V4 envelope when nothing has been written yet.
func (x *exchange) fail(err error) {
	e := platform.AsError(err)
	if e.Code == platform.CodeInternal && e.Err != nil {
		x.s.log.Error("request failed", "request_id", x.id, "endpoint", x.call.Row.Endpoint, "err", e.Err)
	}
	x.call.Row.ErrorCode = e.Code
	x.call.SetErrorDetail(e)
	if x.wroteHeader {
		return
	}
	x.call.Row.HTTPStatus = e.Status()
	x.wroteHeader = true
	writeError(x.w, x.id, e)
}

// ok records a successful status.
func (x *exchange) ok(status int) {
	x.call.Row.HTTPStatus = status
	x.wroteHeader = true
}

func (x *exchange) recoverPanic() {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			panic(v)
		}
		x.fail(platform.Wrap(platform.CodeInternal, "internal error", fmt.Errorf("panic: %v\n%s", v, debug.Stack())))
	}
}

// readJSON reads the bounded body and decodes it into v. A body over the
// limit is 413 with 1210; bytes that are not the endpoint's JSON are 1210.
// The body is read whole here, so the upstream never sees r.Body
// (docs/design.md §3 "Outbound bodies", golang/go#40747). The time the body
// may take is the listener's (conns.Guard, --body-timeout): a body that
// stops arriving fails the read with a deadline error, answered 408.
func (x *exchange) readJSON(v any) ([]byte, bool) {
	body, ok := x.readBody()
	if !ok {
		return nil, false
	}
	if err := json.Unmarshal(body, v); err != nil {
		x.fail(notJSON(err))
		return nil, false
	}
	return body, true
}

// notJSON is the 1210 answer to a body encoding/json refused.
func notJSON(err error) *platform.Error {
	return &platform.Error{Code: platform.CodeBadParams, Message: "request body is not valid JSON for this API: " + v4.JSONProblem(err)}
}

// readBody reads the bounded body (see readJSON), refusing an empty one.
func (x *exchange) readBody() ([]byte, bool) {
	limit := x.s.opts.MaxBodyBytes
	// Made only when needed: two allocations per request otherwise.
	tooLarge := func() *platform.Error {
		return &platform.Error{Code: platform.CodeBadParams, HTTP: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("request body larger than %d bytes", limit)}
	}
	if x.r.ContentLength > limit {
		x.fail(tooLarge())
		return nil, false
	}
	// A size announced (and within the limit) is read into one buffer of
	// it, not io.ReadAll's doubling from 512 bytes (internal/readsized);
	// the limit is MaxBytesReader's, whose error says 413.
	body, err := readsized.ReadAll(http.MaxBytesReader(x.w, x.r.Body, limit), x.r.ContentLength, math.MaxInt64-1)
	if err != nil {
		x.fail(readError(err, tooLarge))
		return nil, false
	}
	if len(body) == 0 {
		x.fail(platform.Errorf(platform.CodeBadParams, "request body is empty; send a JSON object"))
		return nil, false
	}
	return body, true
}

// readError answers a failed read of the body: 413 past the limit, else
// bodyError's 408 or 1210. Apart from readBody, so the error target does
// not cost every request an allocation.
func readError(err error, tooLarge func() *platform.Error) *platform.Error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge()
	}
	return bodyError("could not read the request body", err)
}

// finish ends the metered call (settle, release, request-log row) and
// counts the request: exactly once, after the response is complete (or
// the client is gone).
func (x *exchange) finish() {
	if !x.wroteHeader {
		// A handler that returned without answering is a bug; the client
		// still gets an envelope rather than an empty 200.
		x.fail(platform.Errorf(platform.CodeInternal, "internal error"))
	}
	x.call.End(x.r.Context())
	x.s.metrics.observe(&x.call.Row, x.s.now().Sub(x.start))
}

// gone marks the request as abandoned by its client: logged as 499 (the
// nginx convention), and nothing more is written.
func (x *exchange) gone() {
	x.call.Row.HTTPStatus = 499
	x.wroteHeader = true
}

// callFailed answers a metered call that failed before any byte reached
// the client: a client that left gets nothing more (499), anyone else
// the envelope (a refusal, or the backend's error).
func (x *exchange) callFailed(err error) {
	if x.call.CallerLeft() {
		x.gone()
		return
	}
	x.fail(err)
}
