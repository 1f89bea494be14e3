package upstream

import (
	"encoding/json"

	"github.com/glmkit/glmkit/internal/jsonscan"
	"github.com/glmkit/glmkit/zhipuai"
)

// decodeChatReply decodes a sync chat reply. Replies of the usual shape
// (id, request_id, created, model, choices whose message is a role and a
// text, usage with its counts) are read in one pass (internal/jsonscan);
// everything else, and every reply the pass is not sure of, goes to
// encoding/json, which then decides exactly as before. encoding/json, with
// CompletionMessage's own UnmarshalJSON scanning the message again, was
// the largest piece of glm serve's own CPU on a sync chat after the
// request log (docs/design.md §6).
func decodeChatReply(raw []byte, out *zhipuai.ChatCompletion) error {
	if scanChatReply(raw, out) {
		return nil
	}
	*out = zhipuai.ChatCompletion{}
	return json.Unmarshal(raw, out)
}

// The JSON names of the reply's types, level by level: every name, read
// or not, so that a key matching one only under encoding/json's
// case-insensitive rule is left to encoding/json (jsonscan.Cursor.Object).
var (
	replyKeys   = []string{"id", "request_id", "created", "model", "choices", "usage", "web_search", "content_filter"}
	choiceKeys  = []string{"index", "finish_reason", "message"}
	messageKeys = []string{"role", "content", "reasoning_content", "tool_calls"}
	usageKeys   = []string{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"}
	cachedKeys  = []string{"cached_tokens"}
	reasonKeys  = []string{"reasoning_tokens"}
)

// scanChatReply fills out from raw and reports whether it could; false
// leaves out partly written. web_search and content_filter (rare, and
// read by the metered call) are left to encoding/json, as are a message
// with tool calls or with content null or in parts.
func scanChatReply(raw []byte, out *zhipuai.ChatCompletion) bool {
	c := jsonscan.New(raw)
	return c.Object(replyKeys, func(k int) bool {
		switch replyKeys[k] {
		case "id":
			return c.String(&out.ID)
		case "request_id":
			return c.String(&out.RequestID)
		case "created":
			return c.Int64(&out.Created)
		case "model":
			return c.String(&out.Model)
		case "choices":
			out.Choices = make([]zhipuai.Choice, 0, 1)
			return c.Array(func() bool {
				out.Choices = append(out.Choices, zhipuai.Choice{})
				return scanChoice(c, &out.Choices[len(out.Choices)-1])
			})
		case "usage":
			return scanUsage(c, &out.Usage)
		}
		return false
	}) && c.End()
}

func scanChoice(c *jsonscan.Cursor, ch *zhipuai.Choice) bool {
	return c.Object(choiceKeys, func(k int) bool {
		switch choiceKeys[k] {
		case "index":
			return c.Int(&ch.Index)
		case "finish_reason":
			return c.String(&ch.FinishReason)
		}
		m := &ch.Message
		return c.Object(messageKeys, func(k int) bool {
			switch messageKeys[k] {
			case "role":
				return c.String(&m.Role)
			case "content":
				return c.String(&m.Content)
			case "reasoning_content":
				return c.String(&m.ReasoningContent)
			}
			return false
		})
	})
}

func scanUsage(c *jsonscan.Cursor, u *zhipuai.Usage) bool {
	return c.Object(usageKeys, func(k int) bool {
		switch usageKeys[k] {
		case "prompt_tokens":
			return c.Int(&u.PromptTokens)
		case "completion_tokens":
			return c.Int(&u.CompletionTokens)
		case "total_tokens":
			return c.Int(&u.TotalTokens)
		case "prompt_tokens_details":
			u.PromptTokensDetails = new(zhipuai.PromptTokensDetails)
			return c.Object(cachedKeys, func(int) bool { return c.Int(&u.PromptTokensDetails.CachedTokens) })
		}
		u.CompletionTokensDetails = new(zhipuai.CompletionTokensDetails)
		return c.Object(reasonKeys, func(int) bool { return c.Int(&u.CompletionTokensDetails.ReasoningTokens) })
	})
}
