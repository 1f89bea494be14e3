package httpapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
)

// chatBodies are chat request bodies, each with whether the one-pass scan
// should take it (false: encoding/json decides).
var chatBodies = []struct {
	name string
	fast bool
	raw  string
}{
	{"bench", true, benchBody},
	{"glmload", true, `{"model":"glm-4","messages":[{"role":"user","content":"Say hello in one short sentence."}]}`},
	{"every scanned field", true, `{"model":"glm-4","request_id":"r-1","do_sample":false,"stream":true,"temperature":0.95,"top_p":0.7,"max_tokens":1024,"seed":-42,"tool_choice":"auto","user_id":"user-123456","tool_stream":true,"watermark_enabled":false,"messages":[{"role":"system","content":"s"},{"role":"user","content":"u","name":"n"},{"role":"assistant","content":"a","reasoning_content":"r"},{"role":"tool","content":"{\"ok\":true}","tool_call_id":"c1"}]}`},
	{"OpenAI extras skipped", true, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}],"n":1,"presence_penalty":0,"stream_options":{"include_usage":true},"logit_bias":{"1":-100}}`},
	{"spacing and escapes", true, "\n{ \"model\" : \"glm-4\" ,\r\n\t\"messages\" : [ { \"role\" : \"user\" , \"content\" : \"line\\nbreak \\u4f60\\ud83d\\ude00 \\\"q\\\"\" } ] }\n"},
	{"exponent temperature", true, `{"model":"glm-4","temperature":9.5e-1,"messages":[{"role":"user","content":"hi"}]}`},
	{"empty object", true, `{}`},

	{"tools", false, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}`},
	{"stop", false, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}],"stop":["x"]}`},
	{"thinking", false, `{"model":"glm-4.5","messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled"}}`},
	{"parts", false, `{"model":"glm-4v","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`},
	{"tool calls", false, `{"model":"glm-4","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`},
	{"null content", false, `{"model":"glm-4","messages":[{"role":"assistant","content":null}]}`},
	{"null max_tokens", false, `{"model":"glm-4","max_tokens":null,"messages":[{"role":"user","content":"hi"}]}`},
	{"key in other case", false, `{"Model":"glm-4","messages":[{"role":"user","content":"hi"}]}`},
	{"message key in other case", false, `{"model":"glm-4","messages":[{"Role":"user","content":"hi"}]}`},
	{"twice", false, `{"model":"glm-4","model":"glm-4-plus","messages":[{"role":"user","content":"hi"}]}`},
	{"empty messages", false, `{"model":"glm-4","messages":[]}`},
	{"float max_tokens", false, `{"model":"glm-4","max_tokens":10.0,"messages":[{"role":"user","content":"hi"}]}`},
	{"huge max_tokens", false, `{"model":"glm-4","max_tokens":99999999999999999999,"messages":[{"role":"user","content":"hi"}]}`},
	{"huge temperature", false, `{"model":"glm-4","temperature":1e999,"messages":[{"role":"user","content":"hi"}]}`},
	{"string stream", false, `{"model":"glm-4","stream":"true","messages":[{"role":"user","content":"hi"}]}`},
	{"not UTF-8", false, "{\"model\":\"glm-4\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}"},
	{"bad escape", false, `{"model":"glm-4","messages":[{"role":"user","content":"\q"}]}`},
	{"trailing", false, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}{}`},
	{"truncated", false, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}`},
	{"array", false, `[{"model":"glm-4"}]`},
}

// TestDecodeChatRequestAgreesWithJSON: the scan is taken exactly when
// expected, and decodeChatRequest's value, or its error, is
// encoding/json's.
func TestDecodeChatRequestAgreesWithJSON(t *testing.T) {
	for _, c := range chatBodies {
		t.Run(c.name, func(t *testing.T) {
			var scanned zhipuai.ChatCompletionRequest
			if got := scanChatRequest([]byte(c.raw), &scanned); got != c.fast {
				t.Fatalf("scan taken: got %v, want %v", got, c.fast)
			}
			chatDecodeAgrees(t, []byte(c.raw))
		})
	}
}

func chatDecodeAgrees(t *testing.T, raw []byte) {
	t.Helper()
	var got, want zhipuai.ChatCompletionRequest
	gotErr := decodeChatRequest(raw, &got)
	wantErr := json.Unmarshal(raw, &want)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("error: got %v, want %v", gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("request:\ngot  %#v\nwant %#v", got, want)
	}
}

// FuzzDecodeChatRequest: whatever the body, decodeChatRequest agrees with
// encoding/json (go test -fuzz FuzzDecodeChatRequest ./platform/httpapi).
func FuzzDecodeChatRequest(f *testing.F) {
	for _, c := range chatBodies {
		f.Add([]byte(c.raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { chatDecodeAgrees(t, raw) })
}

// BenchmarkDecodeChatRequest: the benchmark body, one pass vs
// encoding/json.
func BenchmarkDecodeChatRequest(b *testing.B) {
	raw := []byte(benchBody)
	for _, way := range []string{"scan", "json"} {
		b.Run(way, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var req zhipuai.ChatCompletionRequest
				var err error
				if way == "scan" {
					err = decodeChatRequest(raw, &req)
				} else {
					err = json.Unmarshal(raw, &req)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
