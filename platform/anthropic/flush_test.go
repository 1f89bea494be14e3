package anthropic

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A backend that promised the next event (platform.Chunk.More) and then
// dropped it hands on a chunk without data, a flush request, before it
// waits for the upstream: the stream goes on, it is not a malformed chunk.
func TestStreamSkipsFlushRequests(t *testing.T) {
	gate := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		// One read: the first chunk, a text chunk, and a chunk without
		// choices that the zhipu backend drops; then silence until the
		// client has seen the text.
		_, _ = w.Write([]byte(
			`data: {"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"a"}}]}` + "\n\n" +
				`data: {"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":null}]}` + "\n\n" +
				`data: {"id":"1","model":"glm-4","choices":[]}` + "\n\n"))
		w.(http.Flusher).Flush()
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte(`data: {"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}` + "\n\ndata: [DONE]\n\n"))
	}))
	defer up.Close()
	e := newEnv(t, envOpts{upstream: up.URL})
	resp := e.post(DefaultPrefix+"/v1/messages", `{"model":"glm-4","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	var body strings.Builder
	sc := bufio.NewScanner(resp.Body)
	opened := false
	for sc.Scan() {
		body.WriteString(sc.Text() + "\n")
		if !opened && strings.Contains(sc.Text(), `"text":"b"`) {
			opened = true
			close(gate)
		}
	}
	got := body.String()
	if !opened || strings.Contains(got, "event: error") || !strings.Contains(got, "event: message_stop") {
		t.Fatalf("got:\n%s\nwant the text a, b, message_stop and no error event", got)
	}
}
