package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/zhipuai"
)

// handleChat serves POST /chat/completions, sync and stream.
func (s *Server) handleChat(x *exchange) {
	var req zhipuai.ChatCompletionRequest
	raw, ok := x.readBody()
	if !ok {
		return
	}
	if err := decodeChatRequest(raw, &req); err != nil {
		x.fail(notJSON(err))
		return
	}
	row := &x.call.Row
	row.Model, row.Stream, row.RequestID = req.Model, req.Stream, req.RequestID
	_, prompt, err := s.checkChat(&req)
	if err != nil {
		x.fail(err)
		return
	}
	creq := platform.ChatRequest{Req: &req, Raw: raw, PromptTokens: prompt}
	if req.Stream {
		s.relayStream(x, creq, prompt)
		return
	}
	resp, body, err := x.call.Chat(x.r.Context(), creq, prompt)
	if err != nil {
		x.callFailed(err)
		return
	}
	// request_id is echoed: the client's value, else the reply's id
	// (docs/v4.md §4). Only a reply that lacks it is re-encoded.
	if resp.RequestID == "" {
		resp.RequestID = req.RequestID
		if resp.RequestID == "" {
			resp.RequestID = resp.ID
		}
		body = nil
	}
	if row.RequestID == "" {
		row.RequestID = resp.RequestID
	}
	if body == nil {
		if writeJSON(x.w, x.id, http.StatusOK, resp) != nil {
			row.HTTPStatus, row.ErrorCode = http.StatusInternalServerError, platform.CodeInternal
			x.wroteHeader = true
			return
		}
	} else {
		writeJSONBytes(x.w, http.StatusOK, body)
	}
	x.ok(http.StatusOK)
}

// checkChat validates a chat request (sync, stream or async) and checks
// its prompt estimate against the model's context window. It returns the
// model and the prompt estimate.
func (s *Server) checkChat(req *zhipuai.ChatCompletionRequest) (platform.ModelInfo, int, error) {
	info, err := s.validateChat(req)
	if err != nil {
		return info, 0, err
	}
	prompt := platform.EstimateChatPromptTokens(req)
	return info, prompt, checkContext(info, prompt, req.MaxTokens)
}

// relayStream relays a chat stream: each upstream chunk is written and
// flushed as it arrives, bytes unchanged (docs/v4.md §4, §8.6–8.7). An error
// before the first chunk is a JSON envelope; after it, one in-band
// {"error":…} event and the stream ends. When the client goes away, or
// stops reading for longer than the write timeout, the upstream is
// cancelled and closed; the metered call settles and logs the request once
// either way (with the usage last reported or, when none came, its
// estimate).
//
// The stream is opened here and relayed by relay: opening goes deep (the
// router, the upstream request in net/http's client) and relay's locals
// would widen every frame of it. A stream's handler goroutine keeps the
// stack its deepest moment grew for as long as the stream is held
// (docs/design.md §6), so the calls that open it run from a narrow frame.
func (s *Server) relayStream(x *exchange, creq platform.ChatRequest, prompt int) {
	st, err := x.call.ChatStream(x.r.Context(), creq, prompt)
	if err != nil {
		x.callFailed(err)
		return
	}
	s.relay(x, st)
}

// relay writes the stream's chunks as they come (see relayStream).
func (s *Server) relay(x *exchange, st *metered.Stream) {
	// The stream is closed below, once the relay ends; a panic on the way
	// is covered by the call's End, which closes a stream left open.
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	var ew *eventWriter
	cut := "" // why the stream ended early, for the metric and the log
	var cause error
	for {
		ch, err := st.Next()
		if errors.Is(err, io.EOF) {
			if ew == nil {
				// An upstream that ends without a single chunk answered
				// nothing: treat it as a failure before the first byte.
				x.fail(platform.Errorf(platform.CodeNetwork, "the model backend ended the stream without output"))
			} else if err := ew.event(sse.Done, true); err != nil {
				st.Abandon()
				cut, cause = writeCut(err), err
			}
			break
		}
		if err != nil {
			cut, cause = s.streamFailed(x, ew, err)
			break
		}
		if len(ch.Data) == 0 {
			// Nothing to write; the backend asks for the flush it had put
			// off (platform.Chunk.More).
			if ew != nil && !ch.More {
				if err := ew.flush(); err != nil {
					st.Abandon()
					cut, cause = writeCut(err), err
					break
				}
			}
			continue
		}
		if ew == nil {
			ew = s.startEvents(x)
		}
		// The events of one upstream read leave in one Write and one
		// Flush: an event is held only while the next is already at hand
		// (ch.More), so none waits for the upstream (docs/design.md §3).
		// The metered stream took the usage and the text's token estimate
		// from beside the bytes, so pass-through chunks are never decoded
		// here.
		if err := ew.event(ch.Data, !ch.More); err != nil {
			// The client is gone or stopped reading: stop the upstream
			// now, not at its end.
			st.Abandon()
			cut, cause = writeCut(err), err
			break
		}
	}
	st.Close()
	if ew != nil {
		ew.sse.Release()
	}
	if x.call.CallerLeft() {
		x.gone()
	}
	if cut != "" {
		s.streamCut(x, st.Chunks(), cut, cause)
	}
}

// streamFailed ends a stream whose backend failed (or whose client left)
// and says why for the metric and the log: "" when nothing was written
// yet and the client gets the envelope.
func (s *Server) streamFailed(x *exchange, ew *eventWriter, err error) (cut string, cause error) {
	switch {
	case x.call.CallerLeft():
		return cutClientGone, err
	case ew == nil:
		x.fail(err)
		return "", nil
	}
	e := platform.AsError(err)
	cut = upstreamCut(err)
	if s.draining.Load() {
		e = platform.Errorf(platform.CodeOverloaded, "server shutting down; the stream was cut, retry")
		cut = cutShutdown
	}
	x.call.Row.ErrorCode = e.Code
	b, _ := json.Marshal(envelope(e, ""))
	_ = ew.event(b, true)
	return cut, err
}

// startEvents sends the stream's status line and headers.
func (s *Server) startEvents(x *exchange) *eventWriter {
	h := x.w.Header()
	h["Content-Type"] = sseContentType
	h["Cache-Control"] = sseNoCache
	h["X-Accel-Buffering"] = sseNoBuffering // keep reverse proxies from buffering events
	x.w.WriteHeader(http.StatusOK)
	x.ok(http.StatusOK)
	return newEventWriter(x.w, s.opts.WriteTimeout)
}

// The header values of a stream's reply, made once: Header.Set would
// allocate each per stream, and net/http only reads them (docs/design.md §6).
var (
	sseContentType = []string{contentSSE}
	sseNoCache     = []string{"no-cache"}
	sseNoBuffering = []string{"no"}
)

// Reasons a stream ended early: the label of glm_streams_cut_total and
// the reason of the log line.
const (
	cutClientGone      = "client_gone"      // the client hung up
	cutWriteTimeout    = "write_timeout"    // the client stopped reading (--write-timeout)
	cutUpstreamTimeout = "upstream_timeout" // the backend sent nothing (--upstream-idle-timeout)
	cutUpstreamError   = "upstream_error"   // the backend failed or cut the stream
	cutShutdown        = "shutdown"         // the drain timeout ended
)

func writeCut(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return cutWriteTimeout
	}
	return cutClientGone
}

// upstreamCut names a backend failure after the first byte; a timeout
// (the stream's idle bound) wraps context.DeadlineExceeded.
func upstreamCut(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return cutUpstreamTimeout
	}
	return cutUpstreamError
}

// streamCut counts and logs a stream that ended early; a client that hung
// up is ordinary and logged at info.
func (s *Server) streamCut(x *exchange, chunks int, reason string, cause error) {
	s.metrics.streamCuts.WithLabelValues(reason).Inc()
	level := slog.LevelWarn
	if reason == cutClientGone {
		level = slog.LevelInfo
	}
	s.log.Log(x.r.Context(), level, "stream cut", "request_id", x.id, "reason", reason,
		"chunks", chunks, "err", cause)
}

// eventWriter writes SSE events under a write deadline per event: a client
// that stops reading is cut after the write timeout instead of holding the
// stream (and the drain) for as long as it likes.
type eventWriter struct {
	rc      *http.ResponseController
	sse     *sse.Writer
	timeout time.Duration
	setAt   time.Time // when the write deadline was last moved
	err     error     // the first failed write or flush
}

func newEventWriter(w http.ResponseWriter, timeout time.Duration) *eventWriter {
	ew := &eventWriter{rc: http.NewResponseController(w), timeout: timeout}
	ew.sse = sse.NewWriter(eventSink{w: w, ew: ew})
	return ew
}

// event writes one event; with flush false it is kept for the next
// event's write (sse.Writer.WriteEvent).
func (ew *eventWriter) event(data []byte, flush bool) error {
	if ew.err != nil {
		return ew.err
	}
	if !flush {
		_ = ew.sse.WriteEvent(data, false) // only buffers
		return nil
	}
	ew.deadline()
	if err := ew.sse.WriteEvent(data, true); err != nil && ew.err == nil {
		ew.err = err
	}
	return ew.err
}

// flush writes and flushes the events kept so far.
func (ew *eventWriter) flush() error {
	if ew.err != nil {
		return ew.err
	}
	ew.deadline()
	if err := ew.sse.Flush(); err != nil && ew.err == nil {
		ew.err = err
	}
	return ew.err
}

// deadline moves the write deadline before a write. Moving it is a
// runtime timer update; moving it only once an eighth of the timeout has
// passed keeps every write's budget between 7/8 of the timeout and all of
// it, at a fraction of the cost for streams of many small events.
func (ew *eventWriter) deadline() {
	if now := time.Now(); ew.timeout > 0 && now.Sub(ew.setAt) > ew.timeout/8 {
		if ew.rc.SetWriteDeadline(now.Add(ew.timeout)) != nil {
			ew.timeout = 0 // a writer without deadlines (not a connection): ask once
		} else {
			ew.setAt = now
		}
	}
}

// eventSink is what sse.Writer writes to: the response, with a flush that
// keeps its error (http.Flusher's Flush drops it).
type eventSink struct {
	w  http.ResponseWriter
	ew *eventWriter
}

func (s eventSink) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s eventSink) Flush() {
	if err := s.ew.rc.Flush(); err != nil && s.ew.err == nil {
		s.ew.err = err
	}
}
