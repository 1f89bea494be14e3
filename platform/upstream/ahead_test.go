package upstream

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// More is true exactly while the next event is already read; a chunk the
// stream drops after promising More turns into a flush-only chunk before
// the stream waits for the upstream again.
func TestStreamMoreAndFlushOnly(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	s := newV4Stream(ctx, cancel, "b", &http.Response{Body: pr},
		platform.ChatRequest{Req: userChat("glm-4", "x"), ClientModel: "glm-4"})
	defer s.Close()
	go func() {
		// One read: the first chunk, a text chunk, a chunk shape drops.
		_, _ = pw.Write([]byte(
			`data: {"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"a"}}]}` + "\n\n" +
				`data: {"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"content":"b"},"finish_reason":null}]}` + "\n\n" +
				`data: {"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"content":""}}]}` + "\n\n"))
		// The next read: the final chunk and [DONE].
		_, _ = pw.Write([]byte(`data: {"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}` + "\n\ndata: [DONE]\n\n"))
		_ = pw.Close()
	}()
	want := []struct {
		data bool
		more bool
	}{
		{true, true},   // "a": "b" is buffered
		{true, true},   // "b": the empty chunk is buffered
		{false, false}, // the empty chunk was dropped: flush before the read
		{true, true},   // the final chunk: [DONE] is buffered
	}
	for i, w := range want {
		ch, err := s.Next()
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if got := len(ch.Data) > 0; got != w.data || ch.More != w.more {
			t.Fatalf("chunk %d (%s): got data %v More %v, want data %v More %v", i, ch.Data, got, ch.More, w.data, w.more)
		}
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}
