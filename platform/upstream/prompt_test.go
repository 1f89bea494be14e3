package upstream

import (
	"context"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// A stream that ends without usage is given one made up from the caller's
// prompt estimate (ChatRequest.PromptTokens) when there is one, and the
// stream does not keep the decoded request for it; without one the
// estimate is made from the request, as before.
func TestStreamUsesTheCallersPromptEstimate(t *testing.T) {
	noUsage := []string{
		`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}`,
		`[DONE]`,
	}
	oaNoUsage := []string{
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"glm4","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"glm4","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`[DONE]`,
	}
	z, err := NewZhipu(ZhipuOptions{BaseURL: newCountingUpstream(t, sseHandler(noUsage...)).URL, APIKey: "id.secret"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewOpenAI(OpenAIOptions{BaseURL: newCountingUpstream(t, sseHandler(oaNoUsage...)).URL, Flavor: FlavorVLLM})
	if err != nil {
		t.Fatal(err)
	}
	req := userChat("glm-4", "x")
	estimate := platform.EstimateChatPromptTokens(req)
	for _, be := range []platform.ChatBackend{z, o} {
		for _, given := range []int{0, 777} {
			s, err := be.ChatStream(context.Background(), platform.ChatRequest{Req: req, PromptTokens: given})
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := s.(*v4Stream); ok && (v.req == nil) != (given > 0) {
				t.Errorf("%s, estimate %d given: the stream keeps the request %v, want %v", be.Name(), given, v.req != nil, given == 0)
			}
			_, chunks, err := drain(t, s)
			_ = s.Close()
			if err != nil || len(chunks) == 0 || chunks[len(chunks)-1].Usage == nil {
				t.Fatalf("%s: %d chunks, %v; want a final chunk with usage", be.Name(), len(chunks), err)
			}
			want := given
			if want == 0 {
				want = estimate
			}
			if got := chunks[len(chunks)-1].Usage.PromptTokens; got != want {
				t.Errorf("%s, estimate %d given: prompt_tokens %d, want %d", be.Name(), given, got, want)
			}
		}
	}
}
