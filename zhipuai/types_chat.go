package zhipuai

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// This file holds the V4 chat wire types. They are defined once: the SDK
// encodes them, the platform (glm serve) decodes the very same structs, and
// the fake upstream in zhipuaitest speaks them too (docs/design.md §3).
//
// Decoding rules every part relies on (docs/v4.md §8.11): JSON null is the same as
// an absent key, unknown keys are ignored, an empty tools array is accepted.
// Optional numbers are pointers so that an explicit value (temperature 0.01,
// max_tokens 1) survives a round trip; use Ptr to build them.

// Roles of a chat message (docs/v4.md §3 "Messages").
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Finish reasons a choice can end with (docs/v4.md §4).
const (
	FinishStop         = "stop"
	FinishLength       = "length"
	FinishToolCalls    = "tool_calls"
	FinishSensitive    = "sensitive"
	FinishNetworkError = "network_error"
)

// Tool types (docs/v4.md §3 "Tools").
const (
	ToolTypeFunction  = "function"
	ToolTypeRetrieval = "retrieval"
	ToolTypeWebSearch = "web_search"
)

// Content part types of a user message.
const (
	PartText     = "text"
	PartImageURL = "image_url"
	PartVideoURL = "video_url"
)

// Ptr returns a pointer to v, for the optional fields of requests:
// Temperature: zhipuai.Ptr(0.9).
func Ptr[T any](v T) *T { return &v }

// ChatCompletionRequest is the body of POST /chat/completions and of
// POST /async/chat/completions (docs/v4.md §3).
type ChatCompletionRequest struct {
	Model    string    `json:"model"`
	Messages []Message `json:"messages"`

	// RequestID is echoed back; the platform generates one when empty.
	RequestID string `json:"request_id,omitempty"`
	// DoSample false means greedy decoding; temperature and top_p are then ignored.
	DoSample    *bool    `json:"do_sample,omitempty"`
	Stream      bool     `json:"stream,omitempty"`
	Temperature *float64 `json:"temperature,omitempty"`
	TopP        *float64 `json:"top_p,omitempty"`
	MaxTokens   *int     `json:"max_tokens,omitempty"`
	// Stop accepts a JSON string or array on decode (the Python type allows both).
	Stop       StopWords `json:"stop,omitempty"`
	Seed       *int64    `json:"seed,omitempty"`
	Tools      []Tool    `json:"tools,omitempty"`
	ToolChoice string    `json:"tool_choice,omitempty"`
	// UserID identifies the end user (6–128 characters).
	UserID             string              `json:"user_id,omitempty"`
	SensitiveWordCheck *SensitiveWordCheck `json:"sensitive_word_check,omitempty"`
	Meta               *Meta               `json:"meta,omitempty"`
	ResponseFormat     *ResponseFormat     `json:"response_format,omitempty"`
	// Thinking switches a thinking model's reasoning (GLM-4.5 and later,
	// docs/v4.md §11); nil leaves the model's default.
	Thinking *Thinking `json:"thinking,omitempty"`
	// ToolStream asks a stream for tool-call arguments in pieces (GLM-4.6
	// and later); glm serve's own translation sends each call whole, which
	// is one valid piece (docs/v4.md §11).
	ToolStream bool `json:"tool_stream,omitempty"`
	// WatermarkEnabled asks the cloud to mark generated content.
	WatermarkEnabled *bool `json:"watermark_enabled,omitempty"`
	// Extra carries codegeex-4's free-form "extra" object untouched.
	Extra json.RawMessage `json:"extra,omitempty"`
}

// StopWords is the "stop" field: an array of strings on the wire, though a
// bare string is accepted when decoding.
type StopWords []string

// UnmarshalJSON accepts null, a string or an array of strings.
func (s *StopWords) UnmarshalJSON(b []byte) error {
	words, err := stringOrList(b, "stop")
	*s = words
	return err
}

// stringOrList decodes the fields that the Python types let be a string or
// a list of strings ("stop", embeddings "input"); null decodes to nil.
func stringOrList(b []byte, field string) ([]string, error) {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil, nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return nil, err
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return nil, errors.New(field + " must be a string or an array of strings")
	}
	return many, nil
}

// SensitiveWordCheck is {type:"ALL", status:"ENABLE"|"DISABLE"}.
type SensitiveWordCheck struct {
	Type   string `json:"type,omitempty"`
	Status string `json:"status,omitempty"`
}

// Meta is the role-play information of charglm-3.
type Meta struct {
	UserInfo string `json:"user_info,omitempty"`
	BotInfo  string `json:"bot_info,omitempty"`
	BotName  string `json:"bot_name,omitempty"`
	UserName string `json:"user_name,omitempty"`
}

// ResponseFormat is {type:"text"|"json_object"}.
type ResponseFormat struct {
	Type string `json:"type"`
}

// Thinking types (docs/v4.md §11).
const (
	ThinkingEnabled  = "enabled"
	ThinkingDisabled = "disabled"
)

// Thinking is {type:"enabled"|"disabled", clear_thinking:bool} (GLM-4.5 and
// later). ClearThinking false keeps the reasoning of earlier assistant
// turns in the prompt ("preserved thinking"); nil is the model's default.
type Thinking struct {
	Type          string `json:"type,omitempty"`
	ClearThinking *bool  `json:"clear_thinking,omitempty"`
}

// Message is one entry of "messages" in a request.
type Message struct {
	Role string `json:"role"`
	// Content is a string or a list of parts; zero means absent (an assistant
	// message that only carries tool_calls).
	Content    Content    `json:"content,omitzero"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	// ReasoningContent is an assistant turn's reasoning, sent back in
	// multi-turn chats when thinking is preserved (docs/v4.md §11).
	ReasoningContent string `json:"reasoning_content,omitempty"`
	// Name is accepted for OpenAI-shaped clients; the V4 API ignores it.
	Name string `json:"name,omitempty"`
}

// Content is a message's content: either plain text or a list of parts
// (GLM-4V). It encodes as a JSON string when Parts is nil, else as an array.
type Content struct {
	Text  string
	Parts []ContentPart
}

// IsZero reports whether the content is absent (used by omitzero).
func (c Content) IsZero() bool { return c.Text == "" && c.Parts == nil }

// String returns the text of the content, joining the text parts.
func (c Content) String() string {
	if c.Parts == nil {
		return c.Text
	}
	var buf bytes.Buffer
	for _, p := range c.Parts {
		if p.Type == PartText {
			buf.WriteString(p.Text)
		}
	}
	return buf.String()
}

// MarshalJSON encodes the text form or the parts form.
func (c Content) MarshalJSON() ([]byte, error) {
	if c.Parts != nil {
		return json.Marshal(c.Parts)
	}
	return json.Marshal(c.Text)
}

// UnmarshalJSON accepts null, a string or an array of parts.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*c = Content{}
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		if t, ok := plainString(b); ok {
			c.Text = t
			return nil
		}
		return json.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		var parts []ContentPart
		if err := json.Unmarshal(b, &parts); err != nil {
			return err
		}
		if parts == nil {
			parts = []ContentPart{}
		}
		c.Parts = parts
		return nil
	}
	return errors.New("content must be a string or an array of parts")
}

// ContentPart is one part of a multi-part user message.
type ContentPart struct {
	Type     string   `json:"type"`
	Text     string   `json:"text,omitempty"`
	ImageURL *URLPart `json:"image_url,omitempty"`
	VideoURL *URLPart `json:"video_url,omitempty"`
}

// URLPart holds an http(s) URL, a bare base64 string or a data URI.
type URLPart struct {
	URL string `json:"url"`
	// Detail is accepted for OpenAI-shaped clients and passed on to engines.
	Detail string `json:"detail,omitempty"`
}

// ToolCall is a call the model asks for; in a stream delta it arrives whole
// (docs/v4.md §4 "Stream").
type ToolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Index    *int         `json:"index,omitempty"`
	Function FunctionCall `json:"function"`
}

// FunctionCall names a function and carries its arguments as JSON text.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// Tool is an entry of "tools": exactly one of Function, Retrieval or
// WebSearch is set, matching Type.
type Tool struct {
	Type      string         `json:"type"`
	Function  *FunctionDef   `json:"function,omitempty"`
	Retrieval *RetrievalTool `json:"retrieval,omitempty"`
	WebSearch *WebSearchTool `json:"web_search,omitempty"`
}

// FunctionDef describes a callable function; Parameters is a JSON Schema
// kept as raw bytes so that it reaches the upstream unchanged.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// RetrievalTool searches a knowledge base on the platform.
type RetrievalTool struct {
	KnowledgeID string `json:"knowledge_id"`
	// PromptTemplate may use {{knowledge}} and {{question}}.
	PromptTemplate string `json:"prompt_template,omitempty"`
}

// WebSearchTool configures the built-in web search (on by default for
// glm-4 in early 2024; Enable false turns it off).
type WebSearchTool struct {
	Enable              *bool  `json:"enable,omitempty"`
	SearchQuery         string `json:"search_query,omitempty"`
	SearchResult        *bool  `json:"search_result,omitempty"`
	SearchEngine        string `json:"search_engine,omitempty"`
	Count               *int   `json:"count,omitempty"`
	SearchDomainFilter  string `json:"search_domain_filter,omitempty"`
	SearchRecencyFilter string `json:"search_recency_filter,omitempty"`
	ContentSize         string `json:"content_size,omitempty"`
	ResultSequence      string `json:"result_sequence,omitempty"`
	RequireSearch       *bool  `json:"require_search,omitempty"`
	SearchPrompt        string `json:"search_prompt,omitempty"`
}

// ChatCompletion is the reply of a synchronous chat call (docs/v4.md §4).
type ChatCompletion struct {
	ID        string   `json:"id"`
	RequestID string   `json:"request_id,omitempty"`
	Created   int64    `json:"created"`
	Model     string   `json:"model"`
	Choices   []Choice `json:"choices"`
	// Usage is always present on the wire (LangChain and Vercel require it).
	Usage         Usage             `json:"usage"`
	WebSearch     []WebSearchResult `json:"web_search,omitempty"`
	ContentFilter []ContentFilter   `json:"content_filter,omitempty"`
}

// Choice is one choice of a completion (the platform returns one).
type Choice struct {
	Index        int               `json:"index"`
	FinishReason string            `json:"finish_reason"`
	Message      CompletionMessage `json:"message"`
}

// CompletionMessage is the assistant message of a reply.
type CompletionMessage struct {
	Role string `json:"role"`
	// Content is empty (null on the wire from the cloud) when the model only calls tools.
	Content          string     `json:"content"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
}

// UnmarshalJSON tolerates content null and content as a list of text parts.
func (m *CompletionMessage) UnmarshalJSON(b []byte) error {
	type plain CompletionMessage
	var raw struct {
		plain
		Content Content `json:"content"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = CompletionMessage(raw.plain)
	m.Content = raw.Content.String()
	return nil
}

// Usage counts tokens. The three counts are always encoded; the details
// only when the upstream reported them (docs/v4.md §11).
type Usage struct {
	PromptTokens            int                      `json:"prompt_tokens"`
	CompletionTokens        int                      `json:"completion_tokens"`
	TotalTokens             int                      `json:"total_tokens"`
	PromptTokensDetails     *PromptTokensDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *CompletionTokensDetails `json:"completion_tokens_details,omitempty"`
}

// PromptTokensDetails reports cached prompt tokens: a part OF
// prompt_tokens, never in addition to it (docs/v4.md §11).
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// CompletionTokensDetails reports reasoning tokens: a part of
// completion_tokens (docs/v4.md §11).
type CompletionTokensDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// CachedTokens is prompt_tokens_details.cached_tokens, 0 when absent.
func (u Usage) CachedTokens() int {
	if u.PromptTokensDetails == nil {
		return 0
	}
	return u.PromptTokensDetails.CachedTokens
}

// ReasoningTokens is completion_tokens_details.reasoning_tokens, 0 when
// absent.
func (u Usage) ReasoningTokens() int {
	if u.CompletionTokensDetails == nil {
		return 0
	}
	return u.CompletionTokensDetails.ReasoningTokens
}

// WebSearchResult is one source the web_search tool used.
type WebSearchResult struct {
	Icon    string `json:"icon,omitempty"`
	Title   string `json:"title,omitempty"`
	Link    string `json:"link,omitempty"`
	Media   string `json:"media,omitempty"`
	Content string `json:"content,omitempty"`
	Refer   string `json:"refer,omitempty"`
}

// ContentFilter reports a safety review: Level 0 is the most severe.
type ContentFilter struct {
	Role  string `json:"role"`
	Level int    `json:"level"`
}

// ChatCompletionChunk is one "data:" event of a stream (docs/v4.md §4 "Stream").
// The final chunk carries FinishReason and Usage together.
type ChatCompletionChunk struct {
	ID            string            `json:"id"`
	RequestID     string            `json:"request_id,omitempty"`
	Created       int64             `json:"created"`
	Model         string            `json:"model"`
	Choices       []ChunkChoice     `json:"choices"`
	Usage         *Usage            `json:"usage,omitempty"`
	WebSearch     []WebSearchResult `json:"web_search,omitempty"`
	ContentFilter []ContentFilter   `json:"content_filter,omitempty"`
	// Error is set on an in-band failure chunk: data: {"error":{...}}.
	Error *ErrorBody `json:"error,omitempty"`
}

// ChunkChoice is a choice inside a stream chunk.
type ChunkChoice struct {
	Index        int    `json:"index"`
	FinishReason string `json:"finish_reason,omitempty"`
	Delta        Delta  `json:"delta"`
}

// Delta is the increment a chunk carries. Role is repeated on every delta.
type Delta struct {
	Role             string     `json:"role,omitempty"`
	Content          string     `json:"content"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
}

// UnmarshalJSON tolerates content null.
func (d *Delta) UnmarshalJSON(b []byte) error {
	type plain Delta
	var raw struct {
		plain
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*d = Delta(raw.plain)
	if raw.Content != nil {
		d.Content = *raw.Content
	}
	return nil
}

// Async task states (docs/v4.md §4 "Async"); exactly these strings.
const (
	TaskProcessing = "PROCESSING"
	TaskSuccess    = "SUCCESS"
	TaskFail       = "FAIL"
)

// AsyncTaskStatus is the reply of POST /async/chat/completions.
type AsyncTaskStatus struct {
	ID         string `json:"id"`
	RequestID  string `json:"request_id,omitempty"`
	Model      string `json:"model"`
	TaskStatus string `json:"task_status"`
}

// AsyncCompletion is the reply of GET /async-result/{id}. Choices and Usage
// are set on SUCCESS; Error explains a FAIL (a glmkit addition: the cloud's
// FAIL body is undocumented, docs/v4.md §9).
type AsyncCompletion struct {
	ID            string            `json:"id"`
	RequestID     string            `json:"request_id,omitempty"`
	Created       int64             `json:"created,omitempty"`
	Model         string            `json:"model"`
	TaskStatus    string            `json:"task_status"`
	Choices       []Choice          `json:"choices,omitempty"`
	Usage         *Usage            `json:"usage,omitempty"`
	WebSearch     []WebSearchResult `json:"web_search,omitempty"`
	ContentFilter []ContentFilter   `json:"content_filter,omitempty"`
	Error         *ErrorBody        `json:"error,omitempty"`
}

// plainString returns a JSON string without escapes as json.Unmarshal
// would (b is a valid JSON value, as an Unmarshaler gets it): a message's
// text is nearly always one, and taking it without a second decoder keeps
// the request's decode shallow on the stack (a server holding thousands of
// streams keeps each handler's stack at its deepest).
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	b = b[1 : len(b)-1]
	for _, c := range b {
		if c == '\\' || c == '"' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(b) {
		return "", false // the decoder puts U+FFFD in place of bad bytes
	}
	return string(b), true
}
