package zhipuai

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
)

// ValidationKind says what is wrong with the field a ValidationError names.
// Each kind matches one V4 error code (docs/v4.md §6), so the server that runs
// this validator answers exactly what the SDK refused to send.
type ValidationKind uint8

const (
	// InvalidField: the field is there but its value is not accepted, or a
	// field that another field's value requires is absent (tool_call_id on
	// a tool message). Code 1214. The zero value, so a ValidationError
	// built without a kind reads as the common case.
	InvalidField ValidationKind = iota
	// MissingField: a field that every request (model, messages), every
	// message (role), every content part or every tool (type) must carry is
	// absent. Code 1213.
	MissingField
	// ExclusiveFields: two fields that exclude each other are both set.
	// Code 1215.
	ExclusiveFields
	// MalformedRequest: the request cannot be encoded or decoded at all
	// (nil, or a raw JSON field that is not JSON). Code 1210: a server
	// handed the same bytes fails to decode them.
	MalformedRequest
)

func (k ValidationKind) String() string {
	switch k {
	case InvalidField:
		return "invalid field"
	case MissingField:
		return "missing field"
	case ExclusiveFields:
		return "exclusive fields"
	case MalformedRequest:
		return "malformed request"
	}
	return fmt.Sprintf("ValidationKind(%d)", uint8(k))
}

func missing(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: MissingField}
}

func malformed(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...), Kind: MalformedRequest}
}

// nilRequest is a fresh error each time: a shared one could be changed by
// any caller that holds it.
func nilRequest() *ValidationError {
	return malformed("request", "nil request")
}

// ValidateChatRequest is the one chat validator: the SDK runs it before
// sending and glm serve runs it on every chat body it decodes, so both
// sides refuse the same requests with the same field and kind. It checks
// what docs/v4.md §3 fixes and nothing that depends on a model table (whether
// the model exists, takes images, or has room for max_tokens is the
// server's to add):
//
//   - model and at least one message are required, and the messages may not
//     be only system/assistant ones;
//   - roles are system, user, assistant or tool; a user message has
//     content; a tool message needs tool_call_id; only assistant messages
//     carry tool_calls, each with a function name; parts (text, image_url,
//     video_url) only in user messages (assistant: text parts), and
//     image/video parts need a url;
//   - temperature lies in [0, 1], top_p in (0, 1], max_tokens is ≥ 1;
//   - stop holds at most one non-empty word (the platform supports one);
//   - tools are function (with a name of [a-zA-Z0-9_-]{1,64} and JSON
//     object parameters), retrieval (with knowledge_id) or web_search, each
//     with its own sub-object and no other; tool_choice can only be "auto";
//   - model has at most 128 bytes, request_id at most 128 visible ASCII
//     characters, user_id 6–128 characters and no control characters
//     (validate_ids.go: the server stores and echoes them);
//   - response_format and thinking have one of their documented types
//     (thinking's may be empty: the model's default), sensitive_word_check
//     type "ALL" and status "ENABLE" or "DISABLE"; only assistant messages
//     carry reasoning_content (docs/v4.md §11).
//
// The ranges are the ones glm serve enforces, chosen for the clients that
// exist: temperature 0 is greedy decoding for OpenAI-shaped clients, and
// top_p 1 is what they send by default, so both edges are accepted although
// the docs write open intervals; top_p 0 has no meaning and is refused.
// Before sending, the SDK moves the accepted edges inside the platform's
// open intervals the way the Python SDK does (see normalizeSampling).
func ValidateChatRequest(r *ChatCompletionRequest) error {
	if r == nil {
		return nilRequest()
	}
	if err := validateCommon(r.Model, r.RequestID, r.UserID); err != nil {
		return err
	}
	if len(r.Messages) == 0 {
		return missing("messages", "at least one message is required")
	}
	asks := false // a user or tool turn the model can answer
	for i := range r.Messages {
		if err := validateMessage(i, &r.Messages[i]); err != nil {
			return err
		}
		if role := r.Messages[i].Role; role == RoleUser || role == RoleTool {
			asks = true
		}
	}
	if !asks {
		return invalid("messages", "must contain a user (or tool) message, not only system/assistant ones")
	}
	if r.Temperature != nil {
		if t := *r.Temperature; math.IsNaN(t) || t < 0 || t > 1 {
			return invalid("temperature", "must be within [0, 1], got %v", t)
		}
	}
	if r.TopP != nil {
		if p := *r.TopP; math.IsNaN(p) || p <= 0 || p > 1 {
			return invalid("top_p", "must be within (0, 1], got %v", p)
		}
	}
	if r.MaxTokens != nil && *r.MaxTokens < 1 {
		return invalid("max_tokens", "must be at least 1, got %d", *r.MaxTokens)
	}
	if len(r.Stop) > 1 {
		return invalid("stop", "the platform supports one stop word, got %d", len(r.Stop))
	}
	if len(r.Stop) == 1 && r.Stop[0] == "" {
		return invalid("stop[0]", "is empty")
	}
	for i := range r.Tools {
		if err := validateTool(i, &r.Tools[i]); err != nil {
			return err
		}
	}
	if r.ToolChoice != "" && r.ToolChoice != "auto" {
		return invalid("tool_choice", `only "auto" is supported, got %q`, r.ToolChoice)
	}
	if rf := r.ResponseFormat; rf != nil && rf.Type != "text" && rf.Type != "json_object" {
		return invalid("response_format.type", `must be "text" or "json_object", got %q`, rf.Type)
	}
	// An empty type leaves the model's default, so {"clear_thinking": false}
	// alone is a request to keep earlier reasoning (docs/v4.md §11).
	if th := r.Thinking; th != nil && th.Type != "" && th.Type != ThinkingEnabled && th.Type != ThinkingDisabled {
		return invalid("thinking.type", `must be "enabled" or "disabled", got %q`, th.Type)
	}
	if sw := r.SensitiveWordCheck; sw != nil {
		if sw.Type != "" && sw.Type != "ALL" {
			return invalid("sensitive_word_check.type", `must be "ALL", got %q`, sw.Type)
		}
		if sw.Status != "" && sw.Status != "ENABLE" && sw.Status != "DISABLE" {
			return invalid("sensitive_word_check.status", `must be "ENABLE" or "DISABLE", got %q`, sw.Status)
		}
	}
	if len(r.Extra) > 0 && !json.Valid(r.Extra) {
		return malformed("extra", "is not valid JSON")
	}
	return nil
}

func validateMessage(i int, m *Message) error {
	// The field's name is made only for an error: this runs for every
	// message of every request the server takes.
	field := func(sub string) string { return fmt.Sprintf("messages[%d]", i) + sub }
	switch m.Role {
	case RoleSystem, RoleUser, RoleAssistant, RoleTool:
	case "":
		return missing(field(".role"), "is required")
	default:
		return invalid(field(".role"), "unknown role %q (want system, user, assistant or tool)", m.Role)
	}
	if m.Role == RoleUser && m.Content.IsZero() {
		return invalid(field(".content"), "a user message needs content")
	}
	if m.Role == RoleTool && m.ToolCallID == "" {
		return invalid(field(".tool_call_id"), "is required for a tool message")
	}
	if len(m.ToolCalls) > 0 && m.Role != RoleAssistant {
		return invalid(field(".tool_calls"), "only assistant messages carry tool calls")
	}
	if m.ReasoningContent != "" && m.Role != RoleAssistant {
		return invalid(field(".reasoning_content"), "only assistant messages carry reasoning")
	}
	// An assistant turn may have no content at all when tool_calls carry it
	// (docs/v4.md §10: the OpenAI SDKs send it back that way).
	for j, tc := range m.ToolCalls {
		if tc.Function.Name == "" {
			return invalid(field(fmt.Sprintf(".tool_calls[%d].function.name", j)), "is required")
		}
	}
	if m.Content.Parts == nil {
		return nil
	}
	switch m.Role {
	case RoleUser, RoleAssistant:
	default:
		return invalid(field(".content"), "a %s message takes text, not parts", m.Role)
	}
	if len(m.Content.Parts) == 0 {
		return invalid(field(".content"), "empty list of parts")
	}
	for j, p := range m.Content.Parts {
		if err := validatePart(field(fmt.Sprintf(".content[%d]", j)), m.Role, &p); err != nil {
			return err
		}
	}
	return nil
}

func validatePart(field, role string, p *ContentPart) error {
	switch p.Type {
	case PartText:
		return nil
	case PartImageURL, PartVideoURL:
	case "":
		return missing(field+".type", "is required")
	default:
		return invalid(field+".type", "unknown part type %q (want text, image_url or video_url)", p.Type)
	}
	if role == RoleAssistant {
		return invalid(field+".type", "assistant content parts must be text")
	}
	u := p.ImageURL
	if p.Type == PartVideoURL {
		u = p.VideoURL
	}
	if u == nil || strings.TrimSpace(u.URL) == "" {
		return invalid(field+"."+p.Type+".url", "is required")
	}
	return nil
}

func validateTool(i int, t *Tool) error {
	field := fmt.Sprintf("tools[%d]", i)
	set := 0
	for _, b := range []bool{t.Function != nil, t.Retrieval != nil, t.WebSearch != nil} {
		if b {
			set++
		}
	}
	if set > 1 {
		return &ValidationError{Field: field, Reason: "exactly one of function, retrieval, web_search may be set", Kind: ExclusiveFields}
	}
	switch t.Type {
	case ToolTypeFunction:
		if t.Function == nil {
			return invalid(field+".function", "is required for a function tool")
		}
		if !validFunctionName(t.Function.Name) {
			return invalid(field+".function.name", "must be 1–64 characters of a-z, A-Z, 0-9, _ and -, got %q", t.Function.Name)
		}
		if p := t.Function.Parameters; len(p) > 0 {
			if !json.Valid(p) {
				return malformed(field+".function.parameters", "is not valid JSON")
			}
			var obj map[string]json.RawMessage
			if json.Unmarshal(p, &obj) != nil {
				return invalid(field+".function.parameters", "must be a JSON Schema object")
			}
		}
	case ToolTypeRetrieval:
		if t.Retrieval == nil {
			return invalid(field+".retrieval", "is required for a retrieval tool")
		}
		if t.Retrieval.KnowledgeID == "" {
			return invalid(field+".retrieval.knowledge_id", "is required")
		}
	case ToolTypeWebSearch:
		if t.WebSearch == nil {
			return invalid(field+".web_search", "is required for a web_search tool")
		}
	case "":
		return missing(field+".type", "is required")
	default:
		return invalid(field+".type", "unknown tool type %q (want function, retrieval or web_search)", t.Type)
	}
	return nil
}

// validFunctionName is the platform's rule for function names (the same as
// OpenAI's): ^[a-zA-Z0-9_-]{1,64}$.
func validFunctionName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// normalizeSampling moves temperature and top_p inside the platform's open
// intervals like the Python SDK since 2.0.1.1 (docs/v4.md §3): temperature ≤ 0
// becomes 0.01 with do_sample false (greedy), ≥ 1 becomes 0.99; top_p 1
// becomes 0.99 (ValidateChatRequest has already refused top_p ≤ 0). r is
// the SDK's own copy; new pointers are used so the caller's values stay as
// they were.
func normalizeSampling(r *ChatCompletionRequest) {
	if r.Temperature != nil {
		switch t := *r.Temperature; {
		case t <= 0:
			r.Temperature = Ptr(0.01)
			r.DoSample = Ptr(false)
		case t >= 1:
			r.Temperature = Ptr(0.99)
		}
	}
	if r.TopP != nil && *r.TopP >= 1 {
		r.TopP = Ptr(0.99)
	}
}

// ValidateEmbeddingRequest checks docs/v4.md §5: model required, 1–64 non-empty
// inputs, dimensions 256/512/1024/2048 for embedding-3 and 1024 for
// embedding-2, encoding_format float or base64, request_id and user_id
// bounded as for chat.
func ValidateEmbeddingRequest(r *EmbeddingRequest) error {
	if r == nil {
		return nilRequest()
	}
	if err := validateCommon(r.Model, r.RequestID, r.UserID); err != nil {
		return err
	}
	if len(r.Input) == 0 {
		return missing("input", "at least one text is required")
	}
	if len(r.Input) > 64 {
		return invalid("input", "at most 64 texts per call, got %d", len(r.Input))
	}
	for i, s := range r.Input {
		if strings.TrimSpace(s) == "" {
			return invalid(fmt.Sprintf("input[%d]", i), "is empty")
		}
	}
	if r.Dimensions != nil {
		d := *r.Dimensions
		switch r.Model {
		case "embedding-3":
			if d != 256 && d != 512 && d != 1024 && d != 2048 {
				return invalid("dimensions", "embedding-3 supports 256, 512, 1024 or 2048, got %d", d)
			}
		case "embedding-2":
			if d != 1024 {
				return invalid("dimensions", "embedding-2 is fixed at 1024, got %d", d)
			}
		default:
			if d < 1 {
				return invalid("dimensions", "must be positive, got %d", d)
			}
		}
	}
	switch r.EncodingFormat {
	case "", EncodingFloat, EncodingBase64:
	default:
		return invalid("encoding_format", `must be "float" or "base64", got %q`, r.EncodingFormat)
	}
	return nil
}
