package anthropic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Reasons a stream ended early (glm_anthropic_streams_cut_total and the
// log line), the V4 relay's names.
const (
	cutClientGone      = "client_gone"
	cutWriteTimeout    = "write_timeout"
	cutUpstreamTimeout = "upstream_timeout"
	cutUpstreamError   = "upstream_error"
	cutShutdown        = "shutdown"
	cutBadChunk        = "bad_chunk"
)

// relayStream runs the metered stream and writes its translation, each
// event flushed as soon as it is made (docs/design.md §3 "Streams"). An
// error before the first event is the JSON envelope; after it, one error
// event and the stream ends. The metered call settles once whatever
// happens, and message_delta tells the client the usage it is billed for.
func (s *Server) relayStream(x *exchange, creq *zhipuai.ChatCompletionRequest, model string, prompt int) {
	st, err := x.call.ChatStream(x.r.Context(), platform.ChatRequest{Req: creq}, prompt)
	if err != nil {
		x.callFailed(err)
		return
	}
	tr := NewStreamTranslator(model, prompt)
	var (
		ew      *eventWriter
		relayed int // the text's token estimate, as the metered stream counts it
		cut     string
		cause   error
		chunk   zhipuai.ChatCompletionChunk
	)
	write := func(events []Event) bool {
		if len(events) == 0 {
			return true
		}
		if ew == nil {
			ew = s.startEvents(x)
		}
		for _, e := range events {
			if err := ew.event(e); err != nil {
				st.Abandon()
				cut, cause = writeCut(err), err
				return false
			}
		}
		return true
	}
	for {
		ch, err := st.Next()
		if errors.Is(err, io.EOF) {
			if !tr.Started() {
				x.fail(platform.Errorf(platform.CodeNetwork, "the model backend ended the stream without output"))
				break
			}
			write(tr.End(zhipuai.Usage{PromptTokens: prompt, CompletionTokens: relayed, TotalTokens: prompt + relayed}))
			break
		}
		if err != nil {
			cut, cause = s.streamFailed(x, ew, err)
			break
		}
		if len(ch.Data) == 0 {
			// A backend's flush request (platform.Chunk.More): every
			// event here is flushed as it is written already.
			continue
		}
		relayed += ch.Tokens
		chunk = zhipuai.ChatCompletionChunk{}
		if err := json.Unmarshal(ch.Data, &chunk); err != nil {
			// The backends hand on V4 JSON; anything else is a fault of
			// theirs, ended like a cut stream.
			cut, cause = s.streamFailed(x, ew, platform.Wrap(platform.CodeNetwork, "the model backend sent a malformed chunk", err))
			cut = cutBadChunk
			break
		}
		if row := &x.call.Row; row.RequestID == "" {
			row.RequestID = chunk.ID
		}
		if !write(tr.Chunk(&chunk)) {
			break
		}
	}
	st.Close()
	if x.call.CallerLeft() {
		x.gone()
	}
	if cut != "" {
		s.streamCut(x, st.Chunks(), cut, cause)
	}
}

// streamFailed handles a stream error: nothing more for a client that
// left; the envelope before the first event; else one error event.
func (s *Server) streamFailed(x *exchange, ew *eventWriter, err error) (string, error) {
	switch {
	case x.call.CallerLeft():
		return cutClientGone, err
	case ew == nil:
		x.fail(err)
		return "", nil
	}
	e := platform.AsError(err)
	cut := cutUpstreamError
	if errors.Is(err, context.DeadlineExceeded) {
		cut = cutUpstreamTimeout
	}
	if s.draining.Load() {
		e = platform.Errorf(platform.CodeOverloaded, "server shutting down; the stream was cut, retry")
		cut = cutShutdown
	}
	x.call.Row.ErrorCode = e.Code
	_, env := Envelope(e, x.id)
	_ = ew.event(Event{Type: EventError, Data: env})
	return cut, err
}

// startEvents writes the stream's status line and headers.
func (s *Server) startEvents(x *exchange) *eventWriter {
	h := x.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	x.w.WriteHeader(http.StatusOK)
	x.call.Row.HTTPStatus = http.StatusOK
	x.wroteHeader = true
	return &eventWriter{w: x.w, rc: http.NewResponseController(x.w), timeout: s.opts.WriteTimeout}
}

func writeCut(err error) string {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return cutWriteTimeout
	}
	return cutClientGone
}

// streamCut counts and logs a stream that ended early.
func (s *Server) streamCut(x *exchange, chunks int, reason string, cause error) {
	s.metrics.cuts.WithLabelValues(reason).Inc()
	level := slog.LevelWarn
	if reason == cutClientGone {
		level = slog.LevelInfo
	}
	s.log.Log(x.r.Context(), level, "stream cut", "request_id", x.id, "endpoint", EndpointMessages,
		"reason", reason, "chunks", chunks, "err", cause)
}

// eventWriter writes named SSE events ("event: NAME\ndata: JSON\n\n"),
// one Write and one Flush each, under a write deadline per event: a
// client that stops reading is cut after the write timeout.
type eventWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	setAt   time.Time
	buf     []byte
	err     error
}

func (ew *eventWriter) event(e Event) error {
	if ew.err != nil {
		return ew.err
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		ew.err = fmt.Errorf("encode %s event: %w", e.Type, err)
		return ew.err
	}
	// As in the V4 relay: moving the deadline only once an eighth of the
	// timeout has passed keeps each write's budget within 7/8 of it.
	if now := time.Now(); ew.timeout > 0 && now.Sub(ew.setAt) > ew.timeout/8 {
		if ew.rc.SetWriteDeadline(now.Add(ew.timeout)) != nil {
			ew.timeout = 0
		} else {
			ew.setAt = now
		}
	}
	ew.buf = append(ew.buf[:0], "event: "...)
	ew.buf = append(ew.buf, e.Type...)
	ew.buf = append(ew.buf, "\ndata: "...)
	ew.buf = append(ew.buf, data...) // encoding/json writes no raw line breaks
	ew.buf = append(ew.buf, "\n\n"...)
	if _, err := ew.w.Write(ew.buf); err != nil {
		ew.err = err
		return err
	}
	if err := ew.rc.Flush(); err != nil {
		ew.err = err
	}
	return ew.err
}
