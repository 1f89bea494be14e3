package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// typicalChat is a chat request of the size the cookbook sends: a system
// prompt, a few turns and one function tool.
func typicalChat() *zhipuai.ChatCompletionRequest {
	return &zhipuai.ChatCompletionRequest{
		Model: "glm-4", RequestID: "req-1", DoSample: zhipuai.Ptr(true), Temperature: zhipuai.Ptr(0.95), TopP: zhipuai.Ptr(0.7),
		MaxTokens: zhipuai.Ptr(1024), ToolChoice: "auto",
		Tools: []zhipuai.Tool{{Type: "function", Function: &zhipuai.FunctionDef{Name: "get_weather", Description: "查询天气",
			Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}},
			{Type: "web_search", WebSearch: &zhipuai.WebSearchTool{Enable: zhipuai.Ptr(false)}}},
		Messages: []zhipuai.Message{
			{Role: "system", Content: zhipuai.Content{Text: "你是一个乐于助人的助手，回答要简洁。"}},
			{Role: "user", Content: zhipuai.Content{Text: "北京今天天气怎么样？"}},
			{Role: "assistant", ToolCalls: []zhipuai.ToolCall{{ID: "call_1", Type: "function", Function: zhipuai.FunctionCall{Name: "get_weather", Arguments: `{"city":"北京"}`}}}},
			{Role: "tool", ToolCallID: "call_1", Content: zhipuai.Content{Text: `{"weather":"晴","temp":25}`}},
			{Role: "user", Content: zhipuai.Content{Text: "那适合去长城吗？"}},
		},
	}
}

// BenchmarkTranslateChatRequest: V4 request → engine JSON bytes.
func BenchmarkTranslateChatRequest(b *testing.B) {
	req := typicalChat()
	b.ReportAllocs()
	for b.Loop() {
		o, err := ToOpenAIChat(req, true, FlavorVLLM)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateStreamChunk: one engine content chunk (bytes) → one
// V4 chunk (bytes), the per-token cost of an engine stream.
func BenchmarkTranslateStreamChunk(b *testing.B) {
	line := []byte(`{"id":"chatcmpl-7c2","object":"chat.completion.chunk","created":1718000001,"model":"THUDM/glm-4-9b-chat","choices":[{"index":0,"delta":{"content":"查一下"},"logprobs":null,"finish_reason":null}]}`)
	tr := newChunkTranslator(typicalChat(), "glm-4")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		var c oaChunk
		if err := json.Unmarshal(line, &c); err != nil {
			b.Fatal(err)
		}
		for _, v4 := range tr.push(&c) {
			if _, err := json.Marshal(v4); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkZhipuChunkPassThrough: the per-chunk cost of the zhipu
// backend's stream, which forwards the bytes. "next" is v4Stream.Next on a
// stream of text chunks (SSE parse + scan, no decode); "decode" is the full
// decode + shape that every chunk took before and that chunks carrying
// usage, finish_reason, errors or tool calls still take.
func BenchmarkZhipuChunkPassThrough(b *testing.B) {
	line := []byte(`{"id":"8239375684858666781","created":1705476637,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"下午好"}}]}`)
	b.Run("next", func(b *testing.B) {
		ev := append(append([]byte("data: "), line...), "\n\n"...)
		s := newV4Stream(context.Background(), func() {}, "bench",
			&http.Response{Body: io.NopCloser(&repeatReader{ev: ev})}, platform.ChatRequest{Req: typicalChat()})
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			ch, err := s.Next()
			if err != nil || len(ch.Data) != len(line) || ch.Tokens == 0 {
				b.Fatal(ch, err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		s := &v4Stream{req: typicalChat()}
		b.SetBytes(int64(len(line)))
		b.ReportAllocs()
		for b.Loop() {
			c := new(zhipuai.ChatCompletionChunk)
			if err := json.Unmarshal(line, c); err != nil {
				b.Fatal(err)
			}
			if _, keep, _, err := s.shape(line, c); err != nil || !keep {
				b.Fatal(err)
			}
		}
	})
}

// repeatReader yields the same SSE event without end.
type repeatReader struct {
	ev  []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.ev[r.off:])
		n += k
		r.off = (r.off + k) % len(r.ev)
	}
	return n, nil
}
