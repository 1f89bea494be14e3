package interop

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// vllmEngine is the scripted stand-in for a self-hosted GLM on vLLM
// (--tool-call-parser glm45 --reasoning-parser glm45): the OpenAI chat
// API at /v1/chat/completions, sync and SSE, answering by the case marker
// as script does for the Zhipu fake. It streams the way vLLM does: a role
// chunk, reasoning_content and content pieces, a tool call's id and name
// first and its arguments in pieces, the finish chunk, then a usage chunk
// with no choices (stream_options.include_usage), then [DONE].
func vllmEngine(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"not found","type":"NotFoundError","code":404}}`, http.StatusNotFound)
		return
	}
	if r.Header.Get("Authorization") != "Bearer engine-key" {
		http.Error(w, `{"error":{"message":"bad key","type":"AuthenticationError","code":401}}`, http.StatusUnauthorized)
		return
	}
	var req struct {
		Model    string `json:"model"`
		Stream   bool   `json:"stream"`
		Messages []struct {
			Role       string          `json:"role"`
			Content    json.RawMessage `json:"content"`
			ToolCallID string          `json:"tool_call_id"`
		} `json:"messages"`
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Model != vllmUpstream || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request","type":"BadRequestError","code":400}}`, http.StatusBadRequest)
		return
	}
	text := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		var parts []struct {
			Type, Text string
		}
		_ = json.Unmarshal(raw, &parts)
		var b strings.Builder
		for _, p := range parts {
			b.WriteString(p.Text)
		}
		return b.String()
	}
	c := ""
	for _, m := range req.Messages {
		if sm := markerRE.FindStringSubmatch(text(m.Content)); m.Role == "user" && sm != nil {
			c = sm[1]
		}
	}
	last := req.Messages[len(req.Messages)-1]
	var content, args string
	switch {
	case last.Role == "tool":
		content = toolResultText(last.ToolCallID, text(last.Content))
	case strings.Contains(c, "tools") && len(req.Tools) > 0:
		args = weatherArg
	default:
		content = expectedText(c)
	}
	id := fmt.Sprintf("chatcmpl-%d", time.Now().UnixNano())
	usage := map[string]int{"prompt_tokens": usageIn, "completion_tokens": usageOut, "total_tokens": usageIn + usageOut}
	finish := "stop"
	if args != "" {
		finish = "tool_calls"
	}
	callID := "chatcmpl-tool-" + id[len(id)-6:]
	if !req.Stream {
		msg := map[string]any{"role": "assistant", "content": content, "reasoning_content": "想一想。"}
		if args != "" {
			msg["content"] = nil
			msg["tool_calls"] = []any{map[string]any{"id": callID, "type": "function",
				"function": map[string]any{"name": "get_weather", "arguments": args}}}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "object": "chat.completion", "created": time.Now().Unix(),
			"model": vllmUpstream, "choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": finish}}, "usage": usage})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(choices []any, extra map[string]any) {
		ch := map[string]any{"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": vllmUpstream, "choices": choices}
		for k, v := range extra {
			ch[k] = v
		}
		b, _ := json.Marshal(ch)
		fmt.Fprintf(w, "data: %s\n\n", b)
		w.(http.Flusher).Flush()
	}
	delta := func(d map[string]any, finish any) []any {
		return []any{map[string]any{"index": 0, "delta": d, "logprobs": nil, "finish_reason": finish}}
	}
	send(delta(map[string]any{"role": "assistant", "content": ""}, nil), nil)
	send(delta(map[string]any{"reasoning_content": "想一想。"}, nil), nil)
	if args != "" {
		send(delta(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": callID, "type": "function",
			"function": map[string]any{"name": "get_weather"}}}}, nil), nil)
		half := len(args) / 2
		for _, piece := range []string{args[:half], args[half:]} {
			send(delta(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "function": map[string]any{"arguments": piece}}}}, nil), nil)
		}
	} else {
		runes := []rune(content)
		for i := 0; i < len(runes); i += 4 {
			send(delta(map[string]any{"content": string(runes[i:min(i+4, len(runes))])}, nil), nil)
		}
	}
	send(delta(map[string]any{}, finish), nil)
	send([]any{}, map[string]any{"usage": usage})
	fmt.Fprint(w, "data: [DONE]\n\n")
}
