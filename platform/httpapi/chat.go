package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// handleChat serves POST /chat/completions, sync and stream.
func (s *Server) handleChat(x *exchange) {
	var req zhipuai.ChatCompletionRequest
	raw, ok := x.readJSON(&req)
	if !ok {
		return
	}
	row := &x.call.Row
	row.Model, row.Stream, row.RequestID = req.Model, req.Stream, req.RequestID
	_, prompt, err := s.checkChat(&req)
	if err != nil {
		x.fail(err)
		return
	}
	creq := platform.ChatRequest{Req: &req, Raw: raw}
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
// {"error":…} event and the stream ends. When the client goes away the
// upstream is cancelled and closed; the metered call settles and logs the
// request once either way (with the usage last reported or, when none
// came, its estimate).
func (s *Server) relayStream(x *exchange, creq platform.ChatRequest, prompt int) {
	st, err := x.call.ChatStream(x.r.Context(), creq, prompt)
	if err != nil {
		x.callFailed(err)
		return
	}
	defer st.Close()
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()

	var w *sse.Writer
	for {
		ch, err := st.Next()
		if errors.Is(err, io.EOF) {
			if w == nil {
				// An upstream that ends without a single chunk answered
				// nothing: treat it as a failure before the first byte.
				x.fail(platform.Errorf(platform.CodeNetwork, "the model backend ended the stream without output"))
			} else if w.WriteDone() != nil {
				st.Abandon()
			}
			break
		}
		if err != nil {
			switch {
			case x.call.CallerLeft():
			case w == nil:
				x.fail(err)
			default:
				e := platform.AsError(err)
				if s.draining.Load() {
					e = platform.Errorf(platform.CodeOverloaded, "server shutting down; the stream was cut, retry")
				}
				x.call.Row.ErrorCode = e.Code
				b, _ := json.Marshal(envelope(e, ""))
				_ = w.WriteData(b)
			}
			break
		}
		if w == nil {
			h := x.w.Header()
			h.Set("Content-Type", contentSSE)
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no") // keep reverse proxies from buffering events
			x.w.WriteHeader(http.StatusOK)
			x.ok(http.StatusOK)
			w = sse.NewWriter(x.w)
		}
		// One Write and one Flush per event (docs/design.md §3: flush every event;
		// sse.Writer reuses its buffer). The metered stream took the usage
		// and the text's token estimate from beside the bytes, so
		// pass-through chunks are never decoded here.
		if w.WriteData(ch.Data) != nil {
			// The client is gone: stop the upstream now, not at its end.
			st.Abandon()
			break
		}
	}
	st.Close()
	if x.call.CallerLeft() {
		x.gone()
	}
}
