package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// stallingEngine answers a stream request with head, then sends keep-alive
// comments for keepAlive, then nothing until the request is cancelled.
func stallingEngine(t *testing.T, head string, keepAlive time.Duration) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		io.WriteString(w, head)
		rc.Flush()
		for end := time.Now().Add(keepAlive); time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond)
			io.WriteString(w, ": keep-alive\n\n")
			rc.Flush()
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

const (
	v4First = "data: {\"id\":\"1\",\"created\":1,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"}}]}\n\n"
	oaFirst = "data: {\"id\":\"1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"}}]}\n\n"
)

// A stream that goes silent after its first chunk is cut after the idle
// bound with a 1234 that wraps context.DeadlineExceeded; bytes that are
// only keep-alive comments keep it alive meanwhile. Both adapters.
func TestStreamIdleCut(t *testing.T) {
	const idle = 200 * time.Millisecond
	for _, c := range []struct {
		name string
		open func(url string) (platform.ChatBackend, error)
		head string
	}{
		{"zhipu", func(url string) (platform.ChatBackend, error) {
			return NewZhipu(ZhipuOptions{BaseURL: url, APIKey: "id.secret", StreamIdle: idle})
		}, v4First},
		{"openai", func(url string) (platform.ChatBackend, error) {
			return NewOpenAI(OpenAIOptions{BaseURL: url, StreamIdle: idle})
		}, oaFirst},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Keep-alives for twice the idle bound: the cut must come
			// after them, from the silence, not before.
			srv := stallingEngine(t, c.head, 2*idle)
			b, err := c.open(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			req := platform.ChatRequest{Req: userChat("glm-4", "hi")}
			req.Raw = rawOf(t, req.Req)
			start := time.Now()
			s, err := b.ChatStream(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Next(); err != nil {
				t.Fatalf("first chunk: %v", err)
			}
			_, err = s.Next()
			e := wantCode(t, err, platform.CodeNetwork)
			if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(e.Message, "sent nothing") {
				t.Errorf("got %v (%q), want an idle cut wrapping context.DeadlineExceeded", err, e.Message)
			}
			if took := time.Since(start); took < 2*idle {
				t.Errorf("cut after %s, during the keep-alives (%s): comments must count as bytes", took, 2*idle)
			}
		})
	}
}
