package anthropic

import (
	"encoding/json"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
)

// BenchmarkStreamChunk measures the per-chunk cost the relay adds to a
// V4 stream: decode the chunk, translate it, encode the event.
func BenchmarkStreamChunk(b *testing.B) {
	data := []byte(`{"id":"20261204-s1","created":1796000000,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"北京今天晴，"}}]}`)
	tr := NewStreamTranslator("claude-sonnet-4-5", 100)
	var c zhipuai.ChatCompletionChunk
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c = zhipuai.ChatCompletionChunk{}
		if err := json.Unmarshal(data, &c); err != nil {
			b.Fatal(err)
		}
		for _, e := range tr.Chunk(&c) {
			if _, err := json.Marshal(e.Data); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkToV4 measures the translation of an agent-sized request (the
// golden one: system blocks, images, tools, a tool round trip).
func BenchmarkToV4(b *testing.B) {
	var req MessagesRequest
	raw := mustRead(b, "request.anthropic.json")
	b.ReportAllocs()
	for b.Loop() {
		req = MessagesRequest{}
		if err := json.Unmarshal(raw, &req); err != nil {
			b.Fatal(err)
		}
		if _, err := ToV4(&req, "glm-4v-plus"); err != nil {
			b.Fatal(err)
		}
	}
}
