package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/upstream"
)

// canned is an in-memory RoundTripper: every call gets the same SSE body,
// so the stream benchmark measures the relay and the zhipu backend's
// stream (parse, scan, shape, write, flush), not sockets.
type canned struct{ body []byte }

func (c canned) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h := http.Header{}
	h.Set("Content-Type", "text/event-stream")
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(bytes.NewReader(c.body)), Request: r}, nil
}

// zhipuRouter serves every model from one zhipu backend.
type zhipuRouter struct{ *upstream.Zhipu }

func (zhipuRouter) Model(name string) (platform.ModelInfo, bool) {
	return platform.LookupZhipuModel(name)
}
func (zhipuRouter) Models() []platform.ModelInfo { return platform.ZhipuModels() }

// streamEvents is what the load tool's instant upstream sends: 16 content
// chunks, a final chunk with finish_reason and usage, [DONE].
func streamEvents() []byte {
	var b bytes.Buffer
	for i := range 16 {
		fmt.Fprintf(&b, "data: {\"id\":\"1\",\"created\":1,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"tok%d \"}}]}\n\n", i)
	}
	b.WriteString("data: {\"id\":\"1\",\"created\":1,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":16,\"total_tokens\":25}}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// openAIEvents is the same stream in the shape OpenAI-compatible engines
// send: role on the first delta only, "finish_reason":null on every chunk.
func openAIEvents() []byte {
	var b bytes.Buffer
	for i := range 16 {
		role := ""
		if i == 0 {
			role = `"role":"assistant",`
		}
		fmt.Fprintf(&b, "data: {\"id\":\"1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"glm-4\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{%s\"content\":\"tok%d \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n", role, i)
	}
	b.WriteString("data: {\"id\":\"1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":16,\"total_tokens\":25}}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkStreamChatHandler drives a whole stream (18 events) through the
// handler in-process: allocs/op are per stream.
func BenchmarkStreamChatHandler(b *testing.B) { benchStream(b, streamEvents()) }

// BenchmarkStreamChatHandlerOpenAIShape is the same with the chunks of an
// OpenAI-compatible engine behind a zhipu-type backend.
func BenchmarkStreamChatHandlerOpenAIShape(b *testing.B) { benchStream(b, openAIEvents()) }

func benchStream(b *testing.B, events []byte) {
	z, err := upstream.NewZhipu(upstream.ZhipuOptions{BaseURL: "http://upstream.invalid/v4", APIKey: "id.secret",
		HTTPClient: &http.Client{Transport: canned{events}}})
	if err != nil {
		b.Fatal(err)
	}
	api, k := benchServerWith(b, zhipuRouter{z}, nil)
	body := strings.Replace(benchBody, `"model":"glm-4",`, `"model":"glm-4","stream":true,`, 1)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", DefaultPrefix+"/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+k.Full())
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != 200 || !bytes.HasSuffix(w.Body.Bytes(), []byte("data: [DONE]\n\n")) || !bytes.Contains(w.Body.Bytes(), []byte(`"total_tokens":25`)) {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
