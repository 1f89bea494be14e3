package httpapi

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A lone event reaches the client while the upstream is still silent: the
// relay holds an event back only while the next one is already read
// (docs/design.md §3). The upstream sends two events in one write, then
// waits until the client has both; an event held for more upstream bytes
// would never arrive and the test fails at its (generous) bound.
func TestStreamLoneEventFlushedAtOnce(t *testing.T) {
	got := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		// OpenAI style: role only on the first delta, null finish_reason.
		_, _ = w.Write([]byte(
			`data: {"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"one "},"finish_reason":null}]}` + "\n\n" +
				`data: {"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"content":"two"},"finish_reason":null}]}` + "\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-got:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte(`data: {"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}` + "\n\ndata: [DONE]\n\n"))
	}))
	defer up.Close()
	e := newEnv(t, func(c *proxyConfig, _ *Options, _ *taskOptions) { c.Backends[0].BaseURL = up.URL })

	// The bound covers headers too: they leave with the first flush.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url("/chat/completions"),
		strings.NewReader(`{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+e.key.Full())
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("got %v, want the stream's headers: an event was held for upstream bytes", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); l != "" {
				lines <- l
			}
		}
		close(lines)
	}()
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("got the end of the stream, want an event")
			}
			return l
		case <-ctx.Done():
			t.Fatal("got no event while the upstream waits: an event was held for upstream bytes")
		}
		return ""
	}
	first, second := next(), next()
	if !strings.Contains(first, `"one "`) || !strings.Contains(second, `"two"`) || !strings.Contains(second, `"role":"assistant"`) {
		t.Fatalf("got %s / %s, want the two events, the second with the role spliced in", first, second)
	}
	close(got)
	final, done := next(), next()
	if !strings.Contains(final, `"total_tokens":3`) || done != "data: [DONE]" {
		t.Fatalf("got %s / %s, want the usage chunk then [DONE]", final, done)
	}
}
