// Package anthropic serves the Anthropic Messages API on glm serve
// (docs/anthropic.md): POST /v1/messages (sync and stream),
// /v1/messages/count_tokens and GET /v1/models under /api/anthropic and
// any configured prefix. A request is translated into a V4 chat request
// by pure functions, run through the one metered call (platform/metered:
// limits, reservation, backends, failover, settle, request log, bills)
// like any V4 request, and the V4 reply or stream is translated back.
package anthropic

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// ToV4 translates a Messages request into the V4 chat request it runs as,
// for the served model (the mapped name, docs/anthropic.md §6). It refuses
// what has no V4 form with a *platform.Error (1213 or 1214) naming the
// Anthropic field; what V4 validates itself (ranges, one stop word) is
// left to zhipuai.ValidateChatRequest, whose field names FieldName turns
// back. What has no V4 counterpart and changes no answer's shape (top_k,
// thinking.budget_tokens, cache_control) is dropped (docs/anthropic.md §3).
func ToV4(req *MessagesRequest, model string) (*zhipuai.ChatCompletionRequest, error) {
	out := &zhipuai.ChatCompletionRequest{Model: model, Stream: req.Stream, MaxTokens: req.MaxTokens,
		Temperature: req.Temperature, TopP: req.TopP}
	if len(req.StopSequences) > 0 {
		out.Stop = zhipuai.StopWords(req.StopSequences)
	}
	if sys := req.System.Text(); sys != "" {
		out.Messages = append(out.Messages, zhipuai.Message{Role: zhipuai.RoleSystem, Content: zhipuai.Content{Text: sys}})
	}
	for i := range req.Messages {
		msgs, err := messageToV4(i, &req.Messages[i])
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, msgs...)
	}
	tools, err := toolsToV4(req.Tools, req.ToolChoice)
	if err != nil {
		return nil, err
	}
	out.Tools = tools
	if len(tools) > 0 {
		out.ToolChoice = "auto" // the only V4 choice (docs/v4.md §3)
	}
	if t := req.Thinking; t != nil {
		switch t.Type {
		case "enabled", "disabled":
			out.Thinking = &zhipuai.Thinking{Type: t.Type}
		case "adaptive":
			out.Thinking = &zhipuai.Thinking{Type: "enabled"}
		default:
			return nil, invalid("thinking.type: want enabled or disabled, got %q", t.Type)
		}
	}
	if m := req.Metadata; m != nil {
		// V4 bounds user_id (6–128 characters); an agent's id outside them
		// is an opaque label, not worth refusing the request for.
		if n := utf8.RuneCountInString(m.UserID); n >= 6 && n <= 128 && !strings.ContainsFunc(m.UserID, isControl) {
			out.UserID = m.UserID
		}
	}
	return out, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func invalid(format string, args ...any) *platform.Error {
	return platform.Errorf(platform.CodeInvalidField, format, args...)
}

// messageToV4 turns one Anthropic turn into V4 messages: a user turn's
// tool_result blocks become tool messages (first, so they follow the
// assistant's tool_calls as V4 requires), its text and images one user
// message; an assistant turn's text and tool_use blocks one assistant
// message with tool_calls. Thinking blocks a client replays are dropped:
// V4 takes no reasoning in the prompt.
func messageToV4(i int, m *InputMessage) ([]zhipuai.Message, error) {
	field := fmt.Sprintf("messages[%d]", i)
	switch m.Role {
	case zhipuai.RoleUser, zhipuai.RoleAssistant:
	case "":
		return nil, platform.Errorf(platform.CodeMissingField, "%s.role is required", field)
	default:
		return nil, invalid("%s.role: want user or assistant, got %q", field, m.Role)
	}
	if !m.Content.set {
		return nil, platform.Errorf(platform.CodeMissingField, "%s.content is required", field)
	}
	var (
		out   []zhipuai.Message
		parts []zhipuai.ContentPart
		calls []zhipuai.ToolCall
		image bool
	)
	for j := range m.Content.Blocks {
		b := &m.Content.Blocks[j]
		bf := fmt.Sprintf("%s.content[%d]", field, j)
		switch b.Type {
		case BlockText:
			parts = append(parts, zhipuai.ContentPart{Type: zhipuai.PartText, Text: b.Text})
		case BlockImage:
			if m.Role != zhipuai.RoleUser {
				return nil, invalid("%s: images are accepted in user turns only", bf)
			}
			url, err := imageURL(bf, b.Source)
			if err != nil {
				return nil, err
			}
			parts = append(parts, zhipuai.ContentPart{Type: zhipuai.PartImageURL, ImageURL: &zhipuai.URLPart{URL: url}})
			image = true
		case BlockToolUse:
			if m.Role != zhipuai.RoleAssistant {
				return nil, invalid("%s: tool_use blocks belong to assistant turns", bf)
			}
			call, err := toolUseToV4(bf, b)
			if err != nil {
				return nil, err
			}
			calls = append(calls, call)
		case BlockToolResult:
			if m.Role != zhipuai.RoleUser {
				return nil, invalid("%s: tool_result blocks belong to user turns", bf)
			}
			if b.ToolUseID == "" {
				return nil, platform.Errorf(platform.CodeMissingField, "%s.tool_use_id is required", bf)
			}
			out = append(out, zhipuai.Message{Role: zhipuai.RoleTool, ToolCallID: b.ToolUseID,
				Content: zhipuai.Content{Text: toolResultText(b)}})
		case BlockThinking, BlockRedactedThinking:
		case "":
			return nil, platform.Errorf(platform.CodeMissingField, "%s.type is required", bf)
		default:
			return nil, invalid("%s.type: %q blocks are not supported here", bf, b.Type)
		}
	}
	if len(parts) == 0 && len(calls) == 0 {
		return out, nil // only tool results (or replayed thinking)
	}
	msg := zhipuai.Message{Role: m.Role, ToolCalls: calls}
	switch {
	case image:
		msg.Content = zhipuai.Content{Parts: parts}
	case len(parts) > 0:
		// Text only: one string, which every V4 model and engine takes.
		texts := make([]string, len(parts))
		for k, p := range parts {
			texts[k] = p.Text
		}
		msg.Content = zhipuai.Content{Text: strings.Join(texts, "\n")}
	}
	return append(out, msg), nil
}

// imageURL is the V4 image_url of an image block: a data URI for base64
// data (the form V4 and the engines take, docs/v4.md §3), the URL itself
// for a url source.
func imageURL(field string, s *ImageSource) (string, error) {
	if s == nil {
		return "", platform.Errorf(platform.CodeMissingField, "%s.source is required", field)
	}
	switch s.Type {
	case "base64":
		if s.Data == "" {
			return "", platform.Errorf(platform.CodeMissingField, "%s.source.data is required", field)
		}
		switch s.MediaType {
		case "image/jpeg", "image/png", "image/gif", "image/webp":
		default:
			return "", invalid("%s.source.media_type: want image/jpeg, image/png, image/gif or image/webp, got %q", field, s.MediaType)
		}
		return "data:" + s.MediaType + ";base64," + s.Data, nil
	case "url":
		if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
			return "", invalid("%s.source.url: want an http(s) URL", field)
		}
		return s.URL, nil
	}
	return "", invalid("%s.source.type: want base64 or url, got %q", field, s.Type)
}

// toolUseToV4 is an assistant's tool_use block as a V4 tool call; the
// arguments are the input's JSON text.
func toolUseToV4(field string, b *Block) (zhipuai.ToolCall, error) {
	if b.Name == "" {
		return zhipuai.ToolCall{}, platform.Errorf(platform.CodeMissingField, "%s.name is required", field)
	}
	args := "{}"
	if in := strings.TrimSpace(string(b.Input)); in != "" && in != "null" {
		if !json.Valid(b.Input) || in[0] != '{' {
			return zhipuai.ToolCall{}, invalid("%s.input: want a JSON object", field)
		}
		args = in
	}
	return zhipuai.ToolCall{ID: b.ID, Type: zhipuai.ToolTypeFunction,
		Function: zhipuai.FunctionCall{Name: b.Name, Arguments: args}}, nil
}

// toolResultText flattens a tool_result's content into the tool
// message's text; an error result says so, since V4 has no flag for it.
func toolResultText(b *Block) string {
	text := ""
	if b.Result != nil {
		text = b.Result.Text()
	}
	if b.IsError {
		return "[tool error] " + text
	}
	return text
}

// toolsToV4 translates the client tools under tool_choice. V4 knows only
// "auto" (docs/v4.md §3), so: none sends no tools; tool {name} sends only
// the named tool; any sends them all — the model is asked, not forced,
// which docs/anthropic.md §3 states.
func toolsToV4(tools []Tool, choice *ToolChoice) ([]zhipuai.Tool, error) {
	if choice != nil {
		switch choice.Type {
		case "auto", "any":
		case "none":
			return nil, nil
		case "tool":
			if choice.Name == "" {
				return nil, platform.Errorf(platform.CodeMissingField, "tool_choice.name is required for type tool")
			}
		default:
			return nil, invalid("tool_choice.type: want auto, any, tool or none, got %q", choice.Type)
		}
	}
	var out []zhipuai.Tool
	for i, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, invalid("tools[%d].type: server tool %q is not available on this platform; declare client tools with input_schema", i, t.Type)
		}
		if choice != nil && choice.Type == "tool" && t.Name != choice.Name {
			continue
		}
		schema := t.InputSchema
		if len(schema) == 0 || string(schema) == "null" {
			return nil, platform.Errorf(platform.CodeMissingField, "tools[%d].input_schema is required", i)
		}
		out = append(out, zhipuai.Tool{Type: zhipuai.ToolTypeFunction,
			Function: &zhipuai.FunctionDef{Name: t.Name, Description: t.Description, Parameters: schema}})
	}
	if choice != nil && choice.Type == "tool" && len(out) == 0 {
		return nil, invalid("tool_choice.name: no tool named %q in tools", choice.Name)
	}
	return out, nil
}

// v4Fields maps the V4 validator's field names back to the Anthropic
// request's, so a refusal names what the client sent.
var v4Fields = map[string]string{
	"stop":        "stop_sequences",
	"user_id":     "metadata.user_id",
	"tool_choice": "tool_choice",
}

// FieldName is the Anthropic name of a V4 request field.
func FieldName(v4 string) string {
	if a, ok := v4Fields[v4]; ok {
		return a
	}
	if rest, ok := strings.CutPrefix(v4, "tools["); ok {
		if i := strings.Index(rest, "].function.parameters"); i >= 0 {
			return "tools[" + rest[:i] + "].input_schema"
		}
		if i := strings.Index(rest, "].function."); i >= 0 {
			return "tools[" + rest[:i] + "]." + rest[i+len("].function."):]
		}
	}
	return v4
}
