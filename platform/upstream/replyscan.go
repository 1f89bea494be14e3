package upstream

import (
	"encoding/json"
	"reflect"

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

// The JSON names of the reply's types, level by level, from the types
// themselves: every name, read here or not, so that a key the pass does
// not read is never taken for an unknown one (jsonscan.Cursor.Object).
var (
	replyKeys   = jsonscan.Names(reflect.TypeFor[zhipuai.ChatCompletion]())
	choiceKeys  = jsonscan.Names(reflect.TypeFor[zhipuai.Choice]())
	messageKeys = jsonscan.Names(reflect.TypeFor[zhipuai.CompletionMessage]())
	usageKeys   = jsonscan.Names(reflect.TypeFor[zhipuai.Usage]())
	cachedKeys  = jsonscan.Names(reflect.TypeFor[zhipuai.PromptTokensDetails]())
	reasonKeys  = jsonscan.Names(reflect.TypeFor[zhipuai.CompletionTokensDetails]())

	// finishReasons are read without a copy (jsonscan.Cursor.StringOf).
	finishReasons = []string{zhipuai.FinishStop, zhipuai.FinishLength, zhipuai.FinishToolCalls,
		zhipuai.FinishSensitive, zhipuai.FinishNetworkError}
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
			// Without a client request_id the reply echoes its id.
			return c.StringOf(&out.RequestID, out.ID)
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
			return c.StringOf(&ch.FinishReason, finishReasons...)
		case "message":
			return scanMessage(c, &ch.Message)
		}
		return false
	})
}

func scanMessage(c *jsonscan.Cursor, m *zhipuai.CompletionMessage) bool {
	return c.Object(messageKeys, func(k int) bool {
		switch messageKeys[k] {
		case "role":
			return c.StringOf(&m.Role, zhipuai.RoleAssistant)
		case "content":
			return c.String(&m.Content)
		case "reasoning_content":
			return c.String(&m.ReasoningContent)
		}
		return false
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
			return c.Object(cachedKeys, func(k int) bool {
				return cachedKeys[k] == "cached_tokens" && c.Int(&u.PromptTokensDetails.CachedTokens)
			})
		case "completion_tokens_details":
			u.CompletionTokensDetails = new(zhipuai.CompletionTokensDetails)
			return c.Object(reasonKeys, func(k int) bool {
				return reasonKeys[k] == "reasoning_tokens" && c.Int(&u.CompletionTokensDetails.ReasoningTokens)
			})
		}
		return false
	})
}
