package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

func TestValidationCodes(t *testing.T) {
	e := newEnv(t)
	user := `[{"role":"user","content":"hi"}]`
	long := strings.Repeat("长", 3000) // about 3000 tokens: over glm-4v's 2K context
	img := `[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"aGVsbG8="}}]}]`
	cases := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"bad JSON", "/chat/completions", `{"model":`, 400, "1210"},
		{"empty body", "/chat/completions", ``, 400, "1210"},
		{"messages wrong type", "/chat/completions", `{"model":"glm-4","messages":"hi"}`, 400, "1210"},
		{"unknown model", "/chat/completions", `{"model":"gpt-9","messages":` + user + `}`, 400, "1211"},
		{"embedding model on chat", "/chat/completions", `{"model":"embedding-2","messages":` + user + `}`, 400, "1212"},
		{"missing model", "/chat/completions", `{"messages":` + user + `}`, 400, "1213"},
		{"null model", "/chat/completions", `{"model":null,"messages":` + user + `}`, 400, "1213"},
		{"missing messages", "/chat/completions", `{"model":"glm-4"}`, 400, "1213"},
		{"empty messages", "/chat/completions", `{"model":"glm-4","messages":[]}`, 400, "1213"},
		{"bad role", "/chat/completions", `{"model":"glm-4","messages":[{"role":"wizard","content":"x"}]}`, 400, "1214"},
		{"tool without tool_call_id", "/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"x"},{"role":"tool","content":"42"}]}`, 400, "1214"},
		{"only system and assistant", "/chat/completions", `{"model":"glm-4","messages":[{"role":"system","content":"x"},{"role":"assistant","content":"y"}]}`, 400, "1214"},
		{"temperature above 1", "/chat/completions", `{"model":"glm-4","temperature":1.5,"messages":` + user + `}`, 400, "1214"},
		{"temperature negative", "/chat/completions", `{"model":"glm-4","temperature":-0.1,"messages":` + user + `}`, 400, "1214"},
		{"top_p zero", "/chat/completions", `{"model":"glm-4","top_p":0,"messages":` + user + `}`, 400, "1214"},
		{"top_p above 1", "/chat/completions", `{"model":"glm-4","top_p":1.01,"messages":` + user + `}`, 400, "1214"},
		{"max_tokens zero", "/chat/completions", `{"model":"glm-4","max_tokens":0,"messages":` + user + `}`, 400, "1214"},
		{"max_tokens over model", "/chat/completions", `{"model":"glm-4","max_tokens":100000,"messages":` + user + `}`, 400, "1214"},
		{"tool_choice none", "/chat/completions", `{"model":"glm-4","tool_choice":"none","messages":` + user + `}`, 400, "1214"},
		{"tool without name", "/chat/completions", `{"model":"glm-4","tools":[{"type":"function","function":{}}],"messages":` + user + `}`, 400, "1214"},
		{"image to text model", "/chat/completions", `{"model":"glm-4","messages":` + img + `}`, 400, "1214"},
		{"prompt over context", "/chat/completions", `{"model":"glm-4v","messages":[{"role":"user","content":"` + long + `"}]}`, 400, "1261"},
		{"async bad role", "/async/chat/completions", `{"model":"glm-4","messages":[{"role":"x","content":"y"}]}`, 400, "1214"},
		{"async unknown model", "/async/chat/completions", `{"model":"nope","messages":` + user + `}`, 400, "1211"},
		{"embeddings missing input", "/embeddings", `{"model":"embedding-3"}`, 400, "1213"},
		{"embeddings empty input", "/embeddings", `{"model":"embedding-3","input":[]}`, 400, "1213"},
		{"embeddings bad dims", "/embeddings", `{"model":"embedding-3","input":"x","dimensions":300}`, 400, "1214"},
		{"embeddings dims on embedding-2", "/embeddings", `{"model":"embedding-2","input":"x","dimensions":256}`, 400, "1214"},
		{"embeddings 65 inputs", "/embeddings", fmt.Sprintf(`{"model":"embedding-3","input":[%s"x"]}`, strings.Repeat(`"x",`, 64)), 400, "1214"},
		{"embeddings bad encoding", "/embeddings", `{"model":"embedding-3","input":"x","encoding_format":"hex"}`, 400, "1214"},
		{"embeddings input too long", "/embeddings", `{"model":"embedding-2","input":"` + strings.Repeat("字", 600) + `"}`, 400, "1261"},
		{"embeddings chat model", "/embeddings", `{"model":"glm-4","input":"x"}`, 400, "1212"},
		{"images missing prompt", "/images/generations", `{"model":"cogview-3"}`, 400, "1213"},
		{"images unknown model", "/images/generations", `{"model":"dalle","prompt":"cat"}`, 400, "1211"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", c.path, c.body), c.status, c.code)
		})
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Fatalf("%d invalid requests reached the upstream", n)
	}
}

// The server and the SDK run one chat validator: every body the server
// refuses with 1210/1213/1214/1215 for a reason that does not depend on its
// model table, the SDK refuses before sending, with the kind that maps to
// the same code.
func TestSDKRefusesWhatServerRefuses(t *testing.T) {
	e := newEnv(t)
	user := `[{"role":"user","content":"hi"}]`
	withUser := func(fields string) string { return `{"model":"glm-4",` + fields + `,"messages":` + user + `}` }
	withMessages := func(model, msgs string) string { return `{"model":"` + model + `","messages":` + msgs + `}` }
	cases := []struct {
		name, body, code string
	}{
		{"bad JSON", `{"model":"glm-4","messages":[`, "1210"},
		{"messages wrong type", `{"model":"glm-4","messages":"hi"}`, "1210"},
		{"missing model", `{"messages":` + user + `}`, "1213"},
		{"missing messages", `{"model":"glm-4"}`, "1213"},
		{"role missing", withMessages("glm-4", `[{"content":"x"}]`), "1213"},
		{"part without type", withMessages("glm-4", `[{"role":"user","content":[{"text":"x"}]}]`), "1213"},
		{"tool without type", withUser(`"tools":[{"function":{"name":"f"}}]`), "1213"},
		{"bad role", withMessages("glm-4", `[{"role":"wizard","content":"x"}]`), "1214"},
		{"user without content", withMessages("glm-4", `[{"role":"user","content":""}]`), "1214"},
		{"user with no parts", withMessages("glm-4", `[{"role":"user","content":[]}]`), "1214"},
		{"system with parts", withMessages("glm-4", `[{"role":"system","content":[{"type":"text","text":"s"}]},{"role":"user","content":"x"}]`), "1214"},
		{"tool_calls on a user message", withMessages("glm-4", `[{"role":"user","content":"x","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]`), "1214"},
		{"image without url", withMessages("glm-4v", `[{"role":"user","content":[{"type":"image_url","image_url":{"url":" "}}]}]`), "1214"},
		{"assistant image part", withMessages("glm-4v", `[{"role":"assistant","content":[{"type":"image_url","image_url":{"url":"aGk="}}]},{"role":"user","content":"x"}]`), "1214"},
		{"temperature above 1", withUser(`"temperature":1.5`), "1214"},
		{"top_p zero", withUser(`"top_p":0`), "1214"},
		{"top_p above 1", withUser(`"top_p":1.01`), "1214"},
		{"max_tokens zero", withUser(`"max_tokens":0`), "1214"},
		{"two stop words", withUser(`"stop":["a","b"]`), "1214"},
		{"empty stop word", withUser(`"stop":""`), "1214"},
		{"tool_choice required", withUser(`"tool_choice":"required"`), "1214"},
		{"function name with a space", withUser(`"tools":[{"type":"function","function":{"name":"get weather"}}]`), "1214"},
		{"function parameters not an object", withUser(`"tools":[{"type":"function","function":{"name":"f","parameters":[1]}}]`), "1214"},
		{"web_search without its object", withUser(`"tools":[{"type":"web_search"}]`), "1214"},
		{"short user_id", withUser(`"user_id":"abc"`), "1214"},
		{"response_format xml", withUser(`"response_format":{"type":"xml"}`), "1214"},
		{"thinking on", withUser(`"thinking":{"type":"on"}`), "1214"},
		{"two tool objects", withUser(`"tools":[{"type":"web_search","web_search":{"enable":false},"retrieval":{"knowledge_id":"k"}}]`), "1215"},
	}
	sdkCode := map[zhipuai.ValidationKind]string{
		zhipuai.InvalidField:     platform.CodeInvalidField,
		zhipuai.MissingField:     platform.CodeMissingField,
		zhipuai.ExclusiveFields:  platform.CodeExclusiveFields,
		zhipuai.MalformedRequest: platform.CodeBadParams,
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/chat/completions", c.body), http.StatusBadRequest, c.code)
			var req zhipuai.ChatCompletionRequest
			got := platform.CodeBadParams // what a body the SDK cannot even build gets
			if json.Unmarshal([]byte(c.body), &req) == nil {
				var ve *zhipuai.ValidationError
				if err := zhipuai.ValidateChatRequest(&req); !errors.As(err, &ve) {
					t.Fatalf("SDK: got %v, want a *zhipuai.ValidationError", err)
				}
				got = sdkCode[ve.Kind]
			}
			if got != c.code {
				t.Fatalf("SDK refuses with the code of %s, want %s", got, c.code)
			}
		})
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Fatalf("%d invalid requests reached the upstream", n)
	}
}

func TestTolerantDecoding(t *testing.T) {
	e := newEnv(t)
	// Nulls, unknown keys, empty tools, tool_choice auto, temperature 0 and
	// top_p 1 (OpenAI clients), an assistant tool-call turn without content
	// (docs/v4.md §10) — all accepted.
	body := `{"model":"glm-4","response_format":null,"thinking":null,"tools":[],"tool_choice":"auto",
		"stream_options":{"include_usage":true},"n":1,"temperature":0,"top_p":1,"max_tokens":null,
		"messages":[{"role":"user","content":"weather?"},
		{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","index":0,"function":{"name":"w","arguments":"{}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"sunny"},{"role":"assistant","content":"","prefix":true},
		{"role":"user","content":"thanks"}]}`
	resp := e.do("POST", "/chat/completions", body)
	if b := read(t, resp); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(_ *proxyConfig, o *Options, _ *taskOptions) { o.MaxBodyBytes = 1024 })
	big := `{"model":"glm-4","messages":[{"role":"user","content":"` + strings.Repeat("a", 2000) + `"}]}`
	wantError(t, e.do("POST", "/chat/completions", big), http.StatusRequestEntityTooLarge, "1210")
	// Without a Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest("POST", e.url("/chat/completions"), struct{ *strings.Reader }{strings.NewReader(big)})
	req.Header.Set("Authorization", e.key.Full())
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, resp, http.StatusRequestEntityTooLarge, "1210")
}

func TestRoutingTolerance(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/models", "/models/", "//models"} {
		resp := e.do("GET", p, "")
		if b := read(t, resp); resp.StatusCode != 200 || !strings.Contains(string(b), `"glm-4"`) {
			t.Fatalf("GET %s: %d %s", p, resp.StatusCode, b)
		}
	}
	wantError(t, e.do("GET", "/chat/completions", ""), http.StatusMethodNotAllowed, "1222")
	wantError(t, e.do("POST", "/no/such/thing", "{}"), http.StatusNotFound, "1222")
}
