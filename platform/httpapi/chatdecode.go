package httpapi

import (
	"encoding/json"
	"reflect"

	"github.com/glmkit/glmkit/internal/jsonscan"
	"github.com/glmkit/glmkit/zhipuai"
)

// decodeChatRequest decodes a chat body. A body of the usual shape (model,
// messages of role and text, the sampling numbers, stream, ids) is read in
// one pass (internal/jsonscan); anything else — tools, stop words,
// thinking, content in parts, a null, a key the pass is not sure of — goes
// to encoding/json, which then decides and words its error as before. The
// decode was the largest piece of the sync handler's own CPU
// (docs/design.md §6); the result is the same value either way.
func decodeChatRequest(body []byte, req *zhipuai.ChatCompletionRequest) error {
	if scanChatRequest(body, req) {
		return nil
	}
	*req = zhipuai.ChatCompletionRequest{}
	return json.Unmarshal(body, req)
}

// The request's JSON names, from the types: a field the pass does not read
// (or one added later) is never skipped as an unknown key.
var (
	chatRequestKeys = jsonscan.Names(reflect.TypeFor[zhipuai.ChatCompletionRequest]())
	messageKeys     = jsonscan.Names(reflect.TypeFor[zhipuai.Message]())
)

// scanChatRequest fills req from body and reports whether it could; false
// leaves req partly written.
func scanChatRequest(body []byte, req *zhipuai.ChatCompletionRequest) bool {
	c := jsonscan.New(body)
	return c.Object(chatRequestKeys, func(k int) bool {
		switch chatRequestKeys[k] {
		case "model":
			return c.String(&req.Model)
		case "messages":
			req.Messages = make([]zhipuai.Message, 0, 4)
			return c.Array(func() bool {
				req.Messages = append(req.Messages, zhipuai.Message{})
				return scanMessage(c, &req.Messages[len(req.Messages)-1])
			})
		case "request_id":
			return c.String(&req.RequestID)
		case "do_sample":
			req.DoSample = new(bool)
			return c.Bool(req.DoSample)
		case "stream":
			return c.Bool(&req.Stream)
		case "temperature":
			req.Temperature = new(float64)
			return c.Float64(req.Temperature)
		case "top_p":
			req.TopP = new(float64)
			return c.Float64(req.TopP)
		case "max_tokens":
			req.MaxTokens = new(int)
			return c.Int(req.MaxTokens)
		case "seed":
			req.Seed = new(int64)
			return c.Int64(req.Seed)
		case "tool_choice":
			return c.String(&req.ToolChoice)
		case "user_id":
			return c.String(&req.UserID)
		case "tool_stream":
			return c.Bool(&req.ToolStream)
		case "watermark_enabled":
			req.WatermarkEnabled = new(bool)
			return c.Bool(req.WatermarkEnabled)
		}
		return false
	}) && c.End()
}

// scanMessage reads a message whose content is text (parts, null and tool
// calls are encoding/json's).
func scanMessage(c *jsonscan.Cursor, m *zhipuai.Message) bool {
	return c.Object(messageKeys, func(k int) bool {
		switch messageKeys[k] {
		case "role":
			return c.StringOf(&m.Role, roles...)
		case "content":
			return c.String(&m.Content.Text)
		case "tool_call_id":
			return c.String(&m.ToolCallID)
		case "reasoning_content":
			return c.String(&m.ReasoningContent)
		case "name":
			return c.String(&m.Name)
		}
		return false
	})
}

// roles are read without a copy (jsonscan.Cursor.StringOf).
var roles = []string{zhipuai.RoleUser, zhipuai.RoleSystem, zhipuai.RoleAssistant, zhipuai.RoleTool}
