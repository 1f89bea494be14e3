package router

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
)

func TestToolParserConfig(t *testing.T) {
	base := `{"backends":[{"name":"e","type":"%s","base_url":"http://127.0.0.1:1/v1","api_key":"k","models":["glm-4"]%s}]}`
	ok := []string{``, `,"tool_parser":"auto"`, `,"tool_parser":"glm4"`, `,"tool_parser":"none"`}
	for _, extra := range ok {
		cfg, err := ParseConfig([]byte(strings.Replace(strings.Replace(base, "%s", "openai", 1), "%s", extra, 1)))
		if err != nil {
			t.Fatalf("%s: %v", extra, err)
		}
		if want := strings.Trim(strings.TrimPrefix(extra, `,"tool_parser":`), `"`); cfg.Backends[0].ToolParser != want {
			t.Fatalf("%s: parsed %q", extra, cfg.Backends[0].ToolParser)
		}
	}
	bad := map[string]string{
		"unknown parser": strings.Replace(strings.Replace(base, "%s", "openai", 1), "%s", `,"tool_parser":"hermes"`, 1),
		"zhipu backend":  strings.Replace(strings.Replace(base, "%s", "zhipu", 1), "%s", `,"tool_parser":"glm4"`, 1),
	}
	for name, js := range bad {
		if _, err := ParseConfig([]byte(js)); err == nil || !strings.Contains(err.Error(), "tool_parser") {
			t.Fatalf("%s: err %v", name, err)
		}
	}
}

// nativeEngine answers every chat like vLLM serving glm-4-9b-chat without
// a tool parser: the call as text in GLM-4's native form.
func nativeEngine(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "chatcmpl-1", "object": "chat.completion", "created": 1718000000, "model": "THUDM/glm-4-9b-chat",
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": "get_current_weather\n{\"location\": \"北京\", \"unit\": \"c\"}"}}},
			"usage": map[string]any{"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
		})
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// The router hands the backend's tool_parser to the engine adapter: the
// default converts for a GLM-4 upstream name, "none" leaves the text.
func TestRouterPassesToolParser(t *testing.T) {
	url := nativeEngine(t)
	for _, tc := range []struct {
		parser string
		call   bool
	}{{"", true}, {"none", false}} {
		cfg := Config{Backends: []BackendConfig{{Name: "vllm", Type: TypeOpenAI, BaseURL: url, ToolParser: tc.parser,
			Models: []ModelConfig{{Name: "glm-4", Upstream: "THUDM/glm-4-9b-chat"}}}}}
		r := newRouter(t, cfg)
		req := chatReq("glm-4", "北京天气？")
		req.Req.Tools = []zhipuai.Tool{{Type: "function", Function: &zhipuai.FunctionDef{Name: "get_current_weather"}}}
		resp, _, err := r.Chat(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		ch := resp.Choices[0]
		got := len(ch.Message.ToolCalls) == 1 && ch.Message.ToolCalls[0].Function.Arguments == `{"location": "北京", "unit": "c"}` &&
			ch.FinishReason == "tool_calls"
		if got != tc.call || !tc.call && !strings.HasPrefix(ch.Message.Content, "get_current_weather\n") {
			t.Fatalf("tool_parser %q: %+v", tc.parser, ch)
		}
	}
}
