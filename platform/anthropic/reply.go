package anthropic

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/zhipuai"
)

// FromV4 translates a V4 chat reply into a Messages reply that names
// model (the name the client asked for). Blocks come in the order a
// model writes them: thinking (reasoning_content), text, tool_use.
func FromV4(resp *zhipuai.ChatCompletion, model string) *Message {
	msg := &Message{ID: MessageID(resp.ID), Type: "message", Role: "assistant", Model: model,
		Content: []Block{}, Usage: UsageOf(&resp.Usage)}
	finish := ""
	if len(resp.Choices) > 0 {
		c := &resp.Choices[0]
		finish = c.FinishReason
		m := &c.Message
		if m.ReasoningContent != "" {
			msg.Content = append(msg.Content, Block{Type: BlockThinking, Thinking: m.ReasoningContent})
		}
		if m.Content != "" || len(m.ToolCalls) == 0 {
			msg.Content = append(msg.Content, Block{Type: BlockText, Text: m.Content})
		}
		for i, tc := range m.ToolCalls {
			msg.Content = append(msg.Content, Block{Type: BlockToolUse, ID: ToolUseID(tc.ID, resp.ID, i),
				Name: tc.Function.Name, Input: toolInput(tc.Function.Arguments)})
		}
	}
	stop := StopReason(finish)
	msg.StopReason = &stop
	return msg
}

// MessageID is the Messages id of a V4 reply id: "msg_" and the V4 id,
// so the request log's reply id and the client's are one search apart.
func MessageID(v4ID string) string {
	if strings.HasPrefix(v4ID, "msg_") {
		return v4ID
	}
	return "msg_" + v4ID
}

// ToolUseID is the id of a tool_use block: the V4 call's id (a client
// sends it back as tool_result.tool_use_id, and V4 wants it back as
// tool_call_id), or one derived from the reply id when the backend gave
// none.
func ToolUseID(callID, replyID string, i int) string {
	if callID != "" {
		return callID
	}
	return "toolu_" + replyID + "_" + strconv.Itoa(i)
}

// toolInput is a tool call's arguments as the tool_use input object.
// Arguments that are not a JSON object (a model that wrote broken JSON)
// are kept under "arguments" rather than dropped, so the client sees what
// the model wrote.
func toolInput(args string) json.RawMessage {
	args = strings.TrimSpace(args)
	if args == "" {
		return json.RawMessage("{}")
	}
	if json.Valid([]byte(args)) && args[0] == '{' {
		return json.RawMessage(args)
	}
	b, _ := json.Marshal(map[string]string{"arguments": args})
	return b
}

// StopReason maps a V4 finish_reason (docs/v4.md §4) to a stop_reason.
// V4 does not say which stop word ended a reply, so "stop" is end_turn
// (docs/anthropic.md §3); "sensitive" is a refusal.
func StopReason(finish string) string {
	switch finish {
	case zhipuai.FinishLength:
		return StopMaxTokens
	case zhipuai.FinishToolCalls:
		return StopToolUse
	case zhipuai.FinishSensitive:
		return StopRefusal
	}
	return StopEndTurn
}

// UsageOf converts a V4 usage: the cached prompt tokens are a part of
// prompt_tokens in V4 and a separate count in Anthropic's usage, so
// input_tokens + cache_read_input_tokens = prompt_tokens, the count the
// request log and the bill hold (docs/anthropic.md §4).
func UsageOf(u *zhipuai.Usage) Usage {
	if u == nil {
		return Usage{}
	}
	cached := 0
	if d := u.PromptTokensDetails; d != nil {
		cached = min(max(d.CachedTokens, 0), u.PromptTokens)
	}
	return Usage{InputTokens: u.PromptTokens - cached, OutputTokens: u.CompletionTokens, CacheReadInputTokens: cached}
}
