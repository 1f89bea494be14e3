package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// instantUpstream is the only stand-in of the load tool: it sits where a
// model would answer and answers at once, so what the measurements show is
// the cost of the layers in front of it. Replies are encoded once at start
// so the upstream itself spends as little CPU as possible — every cycle it
// burns is taken from the targets on a shared machine.
type instantUpstream struct {
	sync   []byte   // one chat completion with usage
	chunks [][]byte // SSE events: K content chunks, the final chunk, [DONE]
	// oaChunks is the same stream in the shape OpenAI-compatible engines
	// send: role on the first delta only, "finish_reason":null on every
	// content chunk, object and system_fingerprint (-shape openai).
	oaChunks [][]byte
	embed    []byte      // one embeddings reply (a float vector and usage)
	openai   atomic.Bool // stream in the OpenAI shape
	gapNS    atomic.Int64
	calls    atomic.Int64 // chat calls answered: lets a run check that every request reached the upstream
	// conns counts accepted connections. A proxy that reuses its upstream
	// connections opens about one per worker; one per request means it
	// drops them (for the Zhipu cloud: a TLS handshake per call).
	conns atomic.Int64
}

func newInstantUpstream(model, embModel string, k, dims int, gap time.Duration) *instantUpstream {
	created := time.Now().Unix()
	usage := map[string]int{"prompt_tokens": 12, "completion_tokens": k, "total_tokens": 12 + k}
	sync, _ := json.Marshal(map[string]any{
		"id": "glmload-1", "request_id": "glmload-1", "created": created, "model": model,
		"choices": []any{map[string]any{
			"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": "Hello from the instant upstream."},
		}},
		"usage": usage,
	})
	u := &instantUpstream{sync: sync, embed: zhipuaitest.EmbeddingsBody(embModel, dims)}
	u.gapNS.Store(int64(gap))
	for i := range k {
		b, _ := json.Marshal(map[string]any{
			"id": "glmload-1", "created": created, "model": model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": fmt.Sprintf("tok%d ", i)}}},
		})
		u.chunks = append(u.chunks, sseEvent(b))
	}
	final, _ := json.Marshal(map[string]any{
		"id": "glmload-1", "created": created, "model": model,
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "delta": map[string]any{"role": "assistant", "content": ""}}},
		"usage":   usage,
	})
	u.chunks = append(u.chunks, sseEvent(final), sseEvent([]byte("[DONE]")))
	for i := range k {
		delta := map[string]any{"content": fmt.Sprintf("tok%d ", i)}
		if i == 0 {
			delta["role"] = "assistant"
		}
		b, _ := json.Marshal(map[string]any{
			"id": "glmload-1", "object": "chat.completion.chunk", "created": created, "model": model,
			"system_fingerprint": "fp_glmload",
			"choices":            []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": nil}},
		})
		u.oaChunks = append(u.oaChunks, sseEvent(b))
	}
	oaFinal, _ := json.Marshal(map[string]any{
		"id": "glmload-1", "object": "chat.completion.chunk", "created": created, "model": model,
		"system_fingerprint": "fp_glmload",
		"choices":            []any{map[string]any{"index": 0, "delta": map[string]any{}, "logprobs": nil, "finish_reason": "stop"}},
		"usage":              usage,
	})
	u.oaChunks = append(u.oaChunks, sseEvent(oaFinal), sseEvent([]byte("[DONE]")))
	return u
}

func sseEvent(data []byte) []byte {
	return append(append([]byte("data: "), data...), '\n', '\n')
}

// ServeHTTP answers any …/chat/completions POST; the path suffix is enough
// because the baseline proxy and glm serve both forward to the same V4 path.
func (u *instantUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	embed := strings.HasSuffix(r.URL.Path, "/embeddings")
	if r.Method != http.MethodPost || !embed && !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"code":"1211","message":"instant upstream: chat completions and embeddings only"}}`, http.StatusNotFound)
		return
	}
	// Read the whole body like a real engine does, so the proxy in front
	// pays for sending it and the connection stays reusable.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	u.calls.Add(1)
	if embed {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Write(u.embed)
		return
	}
	stream := strings.Contains(r.Header.Get("Accept"), "text/event-stream") ||
		bytes.Contains(body, []byte(`"stream":true`))
	if !stream {
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		w.Write(u.sync)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	fl, _ := w.(http.Flusher)
	chunks := u.chunks
	if u.openai.Load() {
		chunks = u.oaChunks
	}
	gap := time.Duration(u.gapNS.Load())
	for _, ev := range chunks {
		if gap > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(gap):
			}
		}
		if _, err := w.Write(ev); err != nil {
			return
		}
		// Flush per event: the proxies in front must see a real stream of
		// small writes, not one coalesced body.
		if fl != nil {
			fl.Flush()
		}
	}
}

// startUpstream serves u on a loopback port and returns its base URL (no
// trailing slash) and a stop function.
func startUpstream(ctx context.Context, u *instantUpstream) (string, func(), error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("instant upstream: listen: %w", err)
	}
	srv := &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				u.conns.Add(1)
			}
		}}
	go srv.Serve(ln)
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}
	return "http://" + ln.Addr().String(), stop, nil
}
