package upstream

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
)

// replyCases are sync chat replies, each with whether the one-pass scan
// should take it (false: encoding/json decides).
var replyCases = []struct {
	name string
	fast bool
	raw  string
}{
	{"glmload", true, `{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hello from the instant upstream.","role":"assistant"}}],"created":1764900000,"id":"glmload-1","model":"glm-4","request_id":"glmload-1","usage":{"completion_tokens":16,"prompt_tokens":12,"total_tokens":28}}`},
	{"spaced", true, " {\n \"id\" : \"a\" ,\t\"created\":-5,\"model\":\"glm-4\",\"choices\":[ { \"index\" : 0 , \"message\" : { \"role\" : \"assistant\" , \"content\" : \"x\" } , \"finish_reason\" : \"stop\" } ] , \"usage\" : { \"prompt_tokens\" : 1 } }\r\n"},
	{"escapes in text", true, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"line\none \"q\" \u4f60\ud83d\ude00 \/"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`},
	{"non-ASCII text", true, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"你好，世界 😀"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`},
	{"reasoning and details", true, `{"id":"a","created":1,"model":"glm-4.5","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"4","reasoning_content":"2+2"}}],"usage":{"prompt_tokens":30,"completion_tokens":20,"total_tokens":50,"prompt_tokens_details":{"cached_tokens":10},"completion_tokens_details":{"reasoning_tokens":12}}}`},
	{"two choices", true, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}},{"index":1,"finish_reason":"length","message":{"role":"assistant","content":"b"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`},
	{"unknown keys skipped", true, `{"id":"a","object":"chat.completion","system_fingerprint":null,"created":1,"model":"glm-4","choices":[{"index":0,"logprobs":null,"finish_reason":"stop","message":{"role":"assistant","content":"a","refusal":null,"annotations":[{"x":[1,2.5e3,{"y":true}]}]}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"extra":{"n":1}}}`},
	{"no usage", true, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]}`},
	{"empty content", true, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":""}}],"usage":{}}`},

	{"tool calls", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`},
	{"content null", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":null}}]}`},
	{"content parts", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}`},
	{"web search", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}],"web_search":[{"title":"t","link":"l"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`},
	{"content filter", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"sensitive","message":{"role":"assistant","content":""}}],"content_filter":[{"role":"assistant","level":1}]}`},
	{"key in other case", false, `{"ID":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]}`},
	{"message key in other case", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","Content":"a"}}]}`},
	{"non-ASCII key", false, `{"id":"a","créé":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]}`},
	{"escaped key", false, `{"i\u0064":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]}`},
	{"duplicate model", false, `{"id":"a","created":1,"model":"glm-4","model":"glm-5","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]}`},
	{"duplicate choices", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}],"choices":[{"index":1}]}`},
	{"float created", false, `{"id":"a","created":1.5,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]}`},
	{"exponent tokens", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}],"usage":{"prompt_tokens":1e2}}`},
	{"leading zero", false, `{"id":"a","created":01,"model":"glm-4","choices":[]}`},
	{"overflow", false, `{"id":"a","created":99999999999999999999,"model":"glm-4","choices":[]}`},
	{"null id", false, `{"id":null,"created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]}`},
	{"null choices", false, `{"id":"a","created":1,"model":"glm-4","choices":null}`},
	{"empty choices", false, `{"id":"a","created":1,"model":"glm-4","choices":[]}`},
	{"error envelope (no choices: the caller's check)", true, `{"error":{"code":"1301","message":"unsafe"}}`},
	{"empty object", true, `{}`},
	{"empty message and details", true, `{"choices":[{"message":{}},{}],"usage":{"prompt_tokens_details":{},"completion_tokens_details":{}}}`},
	{"invalid UTF-8", false, "{\"id\":\"a\xff\",\"created\":1,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":\"a\"}}]}"},
	{"control character", false, "{\"id\":\"a\",\"created\":1,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":\"a\tb\"}}]}"},
	{"trailing data", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"}}]} x`},
	{"truncated", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"a"`},
	{"not an object", false, `["a"]`},
	{"details not an object", false, `{"id":"a","created":1,"model":"glm-4","choices":[{"index":0,"message":{"role":"assistant","content":"a"}}],"usage":{"prompt_tokens_details":null}}`},
}

// TestDecodeChatReplyAgreesWithJSON: for every case the one-pass scan is
// taken exactly when expected, and decodeChatReply's result (or error)
// is encoding/json's.
func TestDecodeChatReplyAgreesWithJSON(t *testing.T) {
	for _, c := range replyCases {
		t.Run(c.name, func(t *testing.T) {
			var scanned zhipuai.ChatCompletion
			if got := scanChatReply([]byte(c.raw), &scanned); got != c.fast {
				t.Fatalf("scan taken: got %v, want %v", got, c.fast)
			}
			checkAgrees(t, []byte(c.raw))
		})
	}
}

// checkAgrees compares decodeChatReply with encoding/json on raw.
func checkAgrees(t *testing.T, raw []byte) {
	t.Helper()
	var got, want zhipuai.ChatCompletion
	gotErr := decodeChatReply(raw, &got)
	wantErr := json.Unmarshal(raw, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("error: got %v, want %v", gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("reply:\ngot  %+v\nwant %+v", got, want)
	}
}

// FuzzDecodeChatReply: whatever the bytes, the scan agrees with
// encoding/json (go test -fuzz FuzzDecodeChatReply ./platform/upstream).
func FuzzDecodeChatReply(f *testing.F) {
	for _, c := range replyCases {
		f.Add([]byte(c.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkAgrees(t, raw) })
}

// BenchmarkDecodeChatReply: the glmload reply, one pass vs encoding/json.
func BenchmarkDecodeChatReply(b *testing.B) {
	raw := []byte(replyCases[0].raw)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out zhipuai.ChatCompletion
			if err := decodeChatReply(raw, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out zhipuai.ChatCompletion
			if err := json.Unmarshal(raw, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
