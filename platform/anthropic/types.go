package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
)

// The Messages API wire types (docs/anthropic.md §2). They are defined
// here once: the handler decodes requests into them and encodes replies
// and stream events from them. Optional numbers are pointers so an
// explicit 0 survives; unknown fields are ignored, as the V4 types do.

// Content block types.
const (
	BlockText       = "text"
	BlockImage      = "image"
	BlockToolUse    = "tool_use"
	BlockToolResult = "tool_result"
	BlockThinking   = "thinking"
	// BlockRedactedThinking comes back from clients that replay a
	// conversation; it carries nothing the platform can use.
	BlockRedactedThinking = "redacted_thinking"
)

// Stop reasons (docs/anthropic.md §3).
const (
	StopEndTurn      = "end_turn"
	StopMaxTokens    = "max_tokens"
	StopStopSequence = "stop_sequence"
	StopToolUse      = "tool_use"
	StopRefusal      = "refusal"
)

// MessagesRequest is the body of POST /v1/messages (and, without
// max_tokens, of /v1/messages/count_tokens).
type MessagesRequest struct {
	Model         string          `json:"model"`
	System        Content         `json:"system,omitzero"`
	Messages      []InputMessage  `json:"messages"`
	MaxTokens     *int            `json:"max_tokens,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	TopK          *int            `json:"top_k,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Tools         []Tool          `json:"tools,omitempty"`
	ToolChoice    *ToolChoice     `json:"tool_choice,omitempty"`
	Thinking      *ThinkingConfig `json:"thinking,omitempty"`
	Metadata      *Metadata       `json:"metadata,omitempty"`
}

// InputMessage is one turn of "messages".
type InputMessage struct {
	Role    string  `json:"role"`
	Content Content `json:"content"`
}

// Content is a string or a list of blocks ("system", a message's
// "content", a tool_result's "content"). A string decodes as one text
// block, so the translation sees one shape.
type Content struct {
	Blocks []Block
	// set is true when the field was present and not null.
	set bool
}

// IsZero reports whether the content is absent (for omitzero).
func (c Content) IsZero() bool { return !c.set && c.Blocks == nil }

// TextContent builds a content of one text block.
func TextContent(s string) Content {
	return Content{Blocks: []Block{{Type: BlockText, Text: s}}, set: true}
}

// UnmarshalJSON accepts null, a string or an array of blocks.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*c = Content{}
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = TextContent(s)
		return nil
	case len(b) > 0 && b[0] == '[':
		var blocks []Block
		if err := json.Unmarshal(b, &blocks); err != nil {
			return err
		}
		c.Blocks, c.set = blocks, true
		if c.Blocks == nil {
			c.Blocks = []Block{}
		}
		return nil
	}
	return errors.New("content must be a string or an array of content blocks")
}

// MarshalJSON encodes the blocks form.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Blocks == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(c.Blocks)
}

// Text joins the text blocks.
func (c Content) Text() string {
	var buf bytes.Buffer
	for _, b := range c.Blocks {
		if b.Type == BlockText {
			if buf.Len() > 0 {
				buf.WriteByte('\n')
			}
			buf.WriteString(b.Text)
		}
	}
	return buf.String()
}

// Block is one content block of a request or a reply. Which fields are
// set depends on Type; the reply side builds blocks with the
// constructors below so each type carries exactly its fields.
type Block struct {
	Type string `json:"type"`
	// text
	Text string `json:"text,omitempty"`
	// image
	Source *ImageSource `json:"source,omitempty"`
	// tool_use
	ID    string          `json:"id,omitempty"`
	Name  string          `json:"name,omitempty"`
	Input json.RawMessage `json:"input,omitempty"`
	// tool_result
	ToolUseID string   `json:"tool_use_id,omitempty"`
	Result    *Content `json:"content,omitempty"`
	IsError   bool     `json:"is_error,omitempty"`
	// thinking
	Thinking  string  `json:"thinking,omitempty"`
	Signature *string `json:"signature,omitempty"`
}

// ImageSource is an image block's source: base64 data or a URL.
type ImageSource struct {
	Type      string `json:"type"` // "base64" or "url"
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Tool is a client tool with its JSON schema.
type Tool struct {
	// Type is empty or "custom" for a client tool; server tools
	// (web_search_…, bash_…) name a versioned type and are refused.
	Type        string          `json:"type,omitempty"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty"`
}

// ToolChoice is {type: auto|any|tool|none, name}.
type ToolChoice struct {
	Type string `json:"type"`
	Name string `json:"name,omitempty"`
}

// ThinkingConfig is {type: enabled, budget_tokens} or {type: disabled}.
type ThinkingConfig struct {
	Type         string `json:"type"`
	BudgetTokens *int   `json:"budget_tokens,omitempty"`
}

// Metadata carries the caller's user id.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}

// Message is the reply of POST /v1/messages (and the message of a
// stream's message_start event).
type Message struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"` // "message"
	Role         string  `json:"role"` // "assistant"
	Model        string  `json:"model"`
	Content      []Block `json:"content"`
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

// Usage counts tokens the Anthropic way: input_tokens excludes the
// prompt tokens read from the cache, which cache_read_input_tokens
// counts (docs/anthropic.md §4).
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// CountTokensReply is the reply of POST /v1/messages/count_tokens.
type CountTokensReply struct {
	InputTokens int `json:"input_tokens"`
}

// ModelInfo is one entry of GET /v1/models.
type ModelInfo struct {
	Type        string `json:"type"` // "model"
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// ModelList is the reply of GET /v1/models (one page holds them all).
type ModelList struct {
	Data    []ModelInfo `json:"data"`
	HasMore bool        `json:"has_more"`
	FirstID *string     `json:"first_id"`
	LastID  *string     `json:"last_id"`
}

// ErrorEnvelope is every error reply and a stream's error event.
type ErrorEnvelope struct {
	Type      string    `json:"type"` // "error"
	Error     ErrorBody `json:"error"`
	RequestID string    `json:"request_id,omitempty"`
}

// ErrorBody names the error's type and says what went wrong.
type ErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// Event is one stream event: its name goes into the SSE "event:" line and
// its JSON (which repeats the name as "type") into the "data:" line.
type Event struct {
	Type string
	Data any
}

// The stream event payloads (docs/anthropic.md §5).
type (
	messageStartEvent struct {
		Type    string  `json:"type"`
		Message Message `json:"message"`
	}
	blockStartEvent struct {
		Type         string `json:"type"`
		Index        int    `json:"index"`
		ContentBlock Block  `json:"content_block"`
	}
	blockDeltaEvent struct {
		Type  string     `json:"type"`
		Index int        `json:"index"`
		Delta blockDelta `json:"delta"`
	}
	blockDelta struct {
		Type        string  `json:"type"` // text_delta, input_json_delta, thinking_delta
		Text        *string `json:"text,omitempty"`
		PartialJSON *string `json:"partial_json,omitempty"`
		Thinking    *string `json:"thinking,omitempty"`
	}
	blockStopEvent struct {
		Type  string `json:"type"`
		Index int    `json:"index"`
	}
	messageDeltaEvent struct {
		Type  string       `json:"type"`
		Delta messageDelta `json:"delta"`
		Usage Usage        `json:"usage"`
	}
	messageDelta struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}
	typeOnlyEvent struct {
		Type string `json:"type"`
	}
)

// MarshalJSON writes exactly the fields of the block's type: a text block
// always has "text" (empty at a stream's content_block_start, where
// clients append deltas to it), a tool_use block always has "input".
func (b Block) MarshalJSON() ([]byte, error) {
	switch b.Type {
	case BlockText:
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{b.Type, b.Text})
	case BlockThinking:
		sig := ""
		if b.Signature != nil {
			sig = *b.Signature
		}
		return json.Marshal(struct {
			Type      string `json:"type"`
			Thinking  string `json:"thinking"`
			Signature string `json:"signature"`
		}{b.Type, b.Thinking, sig})
	case BlockToolUse:
		input := b.Input
		if len(input) == 0 {
			input = json.RawMessage("{}")
		}
		return json.Marshal(struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		}{b.Type, b.ID, b.Name, input})
	}
	type plain Block // without this method
	return json.Marshal(plain(b))
}
