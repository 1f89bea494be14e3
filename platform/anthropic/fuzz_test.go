package anthropic

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// FuzzMessagesRequest feeds arbitrary bodies through decoding and the
// translation: no panic, and a request ToV4 accepts either passes the V4
// validator or is refused by it with a field — never a half-built request
// that reaches a backend unchecked.
func FuzzMessagesRequest(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "request.anthropic.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"model":"claude-x","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"x"}],"is_error":true}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req MessagesRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		out, err := ToV4(&req, "glm-4")
		if err != nil {
			if _, ok := err.(*platform.Error); !ok {
				t.Fatalf("ToV4 error %T %v, want *platform.Error", err, err)
			}
			return
		}
		if err := zhipuai.ValidateChatRequest(out); err != nil {
			_ = validationError(err)
		}
		_ = platform.EstimateChatPromptTokens(out)
	})
}

// FuzzStreamTranslator feeds arbitrary V4 chunks: no panic, every block
// that starts stops, and End closes the message exactly once.
func FuzzStreamTranslator(f *testing.F) {
	f.Add([]byte(`{"id":"a","choices":[{"delta":{"content":"x","reasoning_content":"y","tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{"}}]}}]}`),
		[]byte(`{"id":"a","choices":[{"finish_reason":"tool_calls","delta":{"tool_calls":[{"index":1,"function":{"arguments":"}"}}]}}],"usage":{"prompt_tokens":3,"completion_tokens":2}}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		tr := NewStreamTranslator("m", 1)
		var events []Event
		for _, raw := range [][]byte{a, b} {
			var c zhipuai.ChatCompletionChunk
			if json.Unmarshal(raw, &c) != nil {
				continue
			}
			events = append(events, tr.Chunk(&c)...)
		}
		events = append(events, tr.End(zhipuai.Usage{PromptTokens: 1})...)
		open, stops := -1, 0
		for _, e := range events {
			if _, err := json.Marshal(e.Data); err != nil {
				t.Fatalf("event %s does not encode: %v", e.Type, err)
			}
			switch d := e.Data.(type) {
			case blockStartEvent:
				if open != -1 {
					t.Fatalf("block %d starts while %d is open", d.Index, open)
				}
				open = d.Index
			case blockStopEvent:
				if d.Index != open {
					t.Fatalf("block %d stops, %d is open", d.Index, open)
				}
				open = -1
			case typeOnlyEvent:
				if d.Type == EventMessageStop {
					stops++
				}
			}
		}
		if open != -1 || (tr.Started() && stops != 1) {
			t.Fatalf("open block %d, %d message_stop events", open, stops)
		}
	})
}
