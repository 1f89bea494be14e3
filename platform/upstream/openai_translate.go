package upstream

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// This file holds the pure translation between V4 and the OpenAI-compatible
// shape engines speak (docs/peers.md §4). The functions do no I/O, so they are
// tested with golden fixtures and benchmarked on their own.

// Engine flavours whose quirks are known.
const (
	FlavorVLLM     = "vllm"
	FlavorSGLang   = "sglang"
	FlavorOllama   = "ollama"
	FlavorLlamaCpp = "llamacpp"
)

// oaChatRequest is what an OpenAI-compatible engine accepts.
type oaChatRequest struct {
	Model          string                  `json:"model"`
	Messages       []oaMessage             `json:"messages"`
	Stream         bool                    `json:"stream,omitempty"`
	StreamOptions  *oaStreamOptions        `json:"stream_options,omitempty"`
	Temperature    *float64                `json:"temperature,omitempty"`
	TopP           *float64                `json:"top_p,omitempty"`
	MaxTokens      *int                    `json:"max_tokens,omitempty"`
	Stop           []string                `json:"stop,omitempty"`
	Seed           *int64                  `json:"seed,omitempty"`
	Tools          []oaTool                `json:"tools,omitempty"`
	ToolChoice     string                  `json:"tool_choice,omitempty"`
	ResponseFormat *zhipuai.ResponseFormat `json:"response_format,omitempty"`
	// ChatTemplateKwargs carries thinking to the engine's chat template
	// (docs/v4.md §11: enable_thinking, clear_thinking).
	ChatTemplateKwargs map[string]any `json:"chat_template_kwargs,omitempty"`
}

type oaStreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// oaMessage.Content is a string, a list of parts, or null (an assistant
// message that only calls tools).
type oaMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []oaToolCall    `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
	Name       string          `json:"name,omitempty"`
	// ReasoningContent is an earlier assistant turn's reasoning; the GLM-4.5+
	// chat templates render it when thinking is preserved (docs/v4.md §11).
	ReasoningContent string `json:"reasoning_content,omitempty"`
}

type oaPart struct {
	Type     string      `json:"type"`
	Text     string      `json:"text,omitempty"`
	ImageURL *oaImageURL `json:"image_url,omitempty"`
}

type oaImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type oaToolCall struct {
	Index    *int           `json:"index,omitempty"`
	ID       string         `json:"id,omitempty"`
	Type     string         `json:"type,omitempty"`
	Function oaFunctionCall `json:"function"`
}

type oaFunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

type oaTool struct {
	Type     string               `json:"type"`
	Function *zhipuai.FunctionDef `json:"function"`
}

// ToOpenAIChat translates a V4 chat request for an engine (docs/peers.md §4.3):
//   - Zhipu-only fields are dropped: request_id, user_id, do_sample,
//     sensitive_word_check, watermark_enabled, tool_stream, meta, extra,
//     web_search and retrieval tools (engines have neither); tool_choice
//     goes only with tools left (vLLM rejects tool_choice without tools);
//   - thinking becomes chat_template_kwargs enable_thinking (and
//     clear_thinking) for the engines whose chat templates read them (vLLM,
//     SGLang, llama.cpp; docs/v4.md §11), and an assistant turn's
//     reasoning_content goes back to those engines; others get neither;
//   - do_sample:false becomes temperature 0 (greedy) without top_p;
//   - a bare base64 image becomes a data URI (engines require one; the
//     Python SDK strips the prefix, docs/v4.md §3), http(s) and data URIs pass;
//   - video parts are refused with 1214: no engine takes them;
//   - streams ask for usage (stream_options.include_usage), since engines
//     only report it then (docs/peers.md §4.4).
func ToOpenAIChat(req *zhipuai.ChatCompletionRequest, stream bool, flavor string) (*oaChatRequest, error) {
	out := &oaChatRequest{
		Model:          req.Model,
		Stream:         stream,
		Temperature:    req.Temperature,
		TopP:           req.TopP,
		MaxTokens:      req.MaxTokens,
		Stop:           req.Stop,
		Seed:           req.Seed,
		ResponseFormat: req.ResponseFormat,
		Messages:       make([]oaMessage, 0, len(req.Messages)),
	}
	if stream {
		out.StreamOptions = &oaStreamOptions{IncludeUsage: true}
	}
	if req.DoSample != nil && !*req.DoSample {
		out.Temperature = zhipuai.Ptr(0.0)
		out.TopP = nil
	}
	for _, t := range req.Tools {
		if t.Type == zhipuai.ToolTypeFunction && t.Function != nil {
			out.Tools = append(out.Tools, oaTool{Type: zhipuai.ToolTypeFunction, Function: t.Function})
		}
	}
	if len(out.Tools) > 0 && req.ToolChoice != "" {
		out.ToolChoice = req.ToolChoice
	}
	out.ChatTemplateKwargs = thinkingKwargs(req.Thinking, flavor)
	for i := range req.Messages {
		m, err := toOpenAIMessage(&req.Messages[i], flavor)
		if err != nil {
			return nil, err
		}
		out.Messages = append(out.Messages, m)
	}
	return out, nil
}

var jsonNull = json.RawMessage("null")

// templateKwargs reports whether the engine passes chat_template_kwargs
// (and an assistant turn's reasoning_content) to the model's template.
func templateKwargs(flavor string) bool {
	switch flavor {
	case FlavorVLLM, FlavorSGLang, FlavorLlamaCpp:
		return true
	}
	return false
}

// thinkingKwargs is the chat_template_kwargs that switch a GLM-4.5+ model's
// thinking on an engine, nil when there is nothing to say or the engine
// does not take them. Ollama's OpenAI layer has no such field and an
// unnamed engine may refuse unknown fields, so only the engines known to
// pass them to the template get them.
func thinkingKwargs(th *zhipuai.Thinking, flavor string) map[string]any {
	if th == nil {
		return nil
	}
	if !templateKwargs(flavor) {
		return nil
	}
	kw := map[string]any{}
	switch th.Type {
	case zhipuai.ThinkingEnabled:
		kw["enable_thinking"] = true
	case zhipuai.ThinkingDisabled:
		kw["enable_thinking"] = false
	}
	if th.ClearThinking != nil {
		kw["clear_thinking"] = *th.ClearThinking
	}
	if len(kw) == 0 {
		return nil
	}
	return kw
}

func toOpenAIMessage(m *zhipuai.Message, flavor string) (oaMessage, error) {
	out := oaMessage{Role: m.Role, ToolCallID: m.ToolCallID, Name: m.Name}
	if templateKwargs(flavor) {
		// Only engines whose GLM templates read it get it back: an unnamed
		// OpenAI-compatible service may refuse the field in input.
		out.ReasoningContent = m.ReasoningContent
	}
	for _, tc := range m.ToolCalls {
		typ := tc.Type
		if typ == "" {
			typ = zhipuai.ToolTypeFunction
		}
		out.ToolCalls = append(out.ToolCalls, oaToolCall{ID: tc.ID, Type: typ, Function: oaFunctionCall(tc.Function)})
	}
	var content any
	switch {
	case m.Content.Parts == nil:
		if m.Content.Text == "" && len(m.ToolCalls) > 0 {
			out.Content = jsonNull
			return out, nil
		}
		content = m.Content.Text
	case m.Role != zhipuai.RoleUser:
		// Multi-turn vision history has assistant content as text parts
		// (docs/v4.md §3); engines want a string there.
		content = m.Content.String()
	default:
		parts := make([]oaPart, 0, len(m.Content.Parts))
		for _, p := range m.Content.Parts {
			switch p.Type {
			case zhipuai.PartText:
				parts = append(parts, oaPart{Type: zhipuai.PartText, Text: p.Text})
			case zhipuai.PartImageURL:
				if p.ImageURL == nil || p.ImageURL.URL == "" {
					return out, platform.Errorf(platform.CodeMissingField, "image_url.url is required")
				}
				u, err := imageURLForEngine(p.ImageURL.URL, flavor)
				if err != nil {
					return out, err
				}
				parts = append(parts, oaPart{Type: zhipuai.PartImageURL, ImageURL: &oaImageURL{URL: u, Detail: p.ImageURL.Detail}})
			case zhipuai.PartVideoURL:
				return out, platform.Errorf(platform.CodeInvalidField, "video input is not supported by this model")
			default:
				return out, platform.Errorf(platform.CodeInvalidField, "unknown content part type %q", p.Type)
			}
		}
		content = parts
	}
	b, err := json.Marshal(content)
	if err != nil {
		return out, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	out.Content = b
	return out, nil
}

// imageURLForEngine keeps URLs and data URIs and turns V4's bare base64
// into a data URI, naming the type from the image's magic bytes.
func imageURLForEngine(u, flavor string) (string, error) {
	switch {
	case strings.HasPrefix(u, "data:"):
		return u, nil
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		if flavor == FlavorOllama {
			// Ollama's OpenAI layer takes base64 images only; fetching a
			// client's URL from the server would open an SSRF hole.
			return "", platform.Errorf(platform.CodeInvalidField,
				"this model takes images as base64 only, not as URLs")
		}
		return u, nil
	}
	mt := sniffImage(u)
	if mt == "" {
		return "", platform.Errorf(platform.CodeInvalidField,
			"image_url.url must be an http(s) URL, a data URI or base64 of a PNG, JPEG, GIF or WebP image")
	}
	return "data:" + mt + ";base64," + u, nil
}

// sniffImage decodes the first 12 bytes of base64 text and names the image
// type by its magic bytes ("" if unknown or not base64).
func sniffImage(b64 string) string {
	if len(b64) < 16 {
		return ""
	}
	var head [12]byte
	n, err := base64.StdEncoding.Decode(head[:], []byte(b64[:16]))
	if err != nil {
		// URL-safe alphabet, sometimes produced by other tools.
		if n, err = base64.URLEncoding.Decode(head[:], []byte(b64[:16])); err != nil {
			return ""
		}
	}
	h := head[:n]
	switch {
	case len(h) >= 8 && string(h[:8]) == "\x89PNG\r\n\x1a\n":
		return "image/png"
	case len(h) >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF:
		return "image/jpeg"
	case len(h) >= 6 && (string(h[:6]) == "GIF87a" || string(h[:6]) == "GIF89a"):
		return "image/gif"
	case len(h) >= 12 && string(h[:4]) == "RIFF" && string(h[8:12]) == "WEBP":
		return "image/webp"
	}
	return ""
}

// oaChatCompletion is an engine's sync reply.
type oaChatCompletion struct {
	ID      string          `json:"id"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []oaChoice      `json:"choices"`
	Usage   *oaUsage        `json:"usage"`
	Error   json.RawMessage `json:"error"`
}

type oaChoice struct {
	Index        int        `json:"index"`
	Message      oaReplyMsg `json:"message"`
	FinishReason string     `json:"finish_reason"`
}

// oaReplyMsg is an engine's reply message. Engines name the reasoning
// differently: vLLM's reasoning parsers and llama.cpp write
// reasoning_content, newer vLLM and Ollama write reasoning.
type oaReplyMsg struct {
	Role             string       `json:"role"`
	Content          *string      `json:"content"`
	ReasoningContent *string      `json:"reasoning_content"`
	Reasoning        *string      `json:"reasoning"`
	ToolCalls        []oaToolCall `json:"tool_calls"`
}

// reasoningOf is the reasoning an engine sent under either name.
func reasoningOf(rc, r *string) string {
	if rc != nil && *rc != "" {
		return *rc
	}
	if r != nil {
		return *r
	}
	return ""
}

type oaUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// v4 converts the usage; reasoning estimates the reasoning tokens from the
// reasoning text relayed, used when the engine reports no
// reasoning_tokens of its own (vLLM and llama.cpp count them inside
// completion_tokens without a detail). The detail is a part of
// completion_tokens either way, so it never changes what is billed
// (docs/v4.md §11).
func (u *oaUsage) v4(reasoning int) zhipuai.Usage {
	out := zhipuai.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	if u.PromptTokensDetails != nil && u.PromptTokensDetails.CachedTokens > 0 {
		out.PromptTokensDetails = &zhipuai.PromptTokensDetails{CachedTokens: u.PromptTokensDetails.CachedTokens}
	}
	if u.CompletionTokensDetails != nil && u.CompletionTokensDetails.ReasoningTokens > 0 {
		reasoning = u.CompletionTokensDetails.ReasoningTokens
	}
	if reasoning > 0 {
		out.CompletionTokensDetails = &zhipuai.CompletionTokensDetails{ReasoningTokens: min(reasoning, out.CompletionTokens)}
	}
	return out
}

// v4Finish maps an engine's finish_reason onto V4's set (docs/v4.md §4).
func v4Finish(r string) string {
	switch r {
	case "", "stop", "eos", "end_turn":
		return zhipuai.FinishStop
	case "length", "max_tokens":
		return zhipuai.FinishLength
	case "tool_calls", "function_call":
		return zhipuai.FinishToolCalls
	case "content_filter":
		return zhipuai.FinishSensitive
	case "abort", "error":
		return zhipuai.FinishNetworkError
	}
	return r
}

// FromOpenAIChat translates an engine's sync reply to V4: string ids,
// request_id, created in seconds, role "assistant", tool calls with index
// and type, finish reasons mapped, usage always present (estimated when the
// engine sent none). model is the client-facing name.
func FromOpenAIChat(in *oaChatCompletion, req *zhipuai.ChatCompletionRequest, model string) *zhipuai.ChatCompletion {
	out := &zhipuai.ChatCompletion{
		ID: in.ID, RequestID: req.RequestID, Created: in.Created, Model: model,
		Choices: make([]zhipuai.Choice, 0, len(in.Choices)),
	}
	if out.ID == "" {
		out.ID = platform.NewID(time.Now())
	}
	if out.RequestID == "" {
		out.RequestID = out.ID
	}
	if out.Created == 0 {
		out.Created = time.Now().Unix()
	}
	for _, c := range in.Choices {
		msg := zhipuai.CompletionMessage{Role: zhipuai.RoleAssistant}
		if c.Message.Content != nil {
			msg.Content = *c.Message.Content
		}
		msg.ReasoningContent = reasoningOf(c.Message.ReasoningContent, c.Message.Reasoning)
		for i, tc := range c.Message.ToolCalls {
			msg.ToolCalls = append(msg.ToolCalls, v4ToolCall(tc, i))
		}
		fr := v4Finish(c.FinishReason)
		if len(msg.ToolCalls) > 0 && fr == zhipuai.FinishStop {
			fr = zhipuai.FinishToolCalls // some engines say stop after a call
		}
		out.Choices = append(out.Choices, zhipuai.Choice{Index: c.Index, FinishReason: fr, Message: msg})
	}
	thought := 0
	for _, c := range out.Choices {
		thought += platform.EstimateTokens(c.Message.ReasoningContent)
	}
	if in.Usage != nil {
		out.Usage = in.Usage.v4(thought)
	} else {
		out.Usage = estimateUsage(req, replyText(out))
		if thought > 0 {
			out.Usage.CompletionTokensDetails = &zhipuai.CompletionTokensDetails{ReasoningTokens: min(thought, out.Usage.CompletionTokens)}
		}
	}
	return out
}

func v4ToolCall(tc oaToolCall, i int) zhipuai.ToolCall {
	idx := i
	if tc.Index != nil {
		idx = *tc.Index
	}
	id := tc.ID
	if id == "" {
		id = fmt.Sprintf("call_%s_%d", platform.NewID(time.Now()), idx)
	}
	args := tc.Function.Arguments
	if args == "" {
		args = "{}"
	}
	return zhipuai.ToolCall{ID: id, Type: zhipuai.ToolTypeFunction, Index: zhipuai.Ptr(idx),
		Function: zhipuai.FunctionCall{Name: tc.Function.Name, Arguments: args}}
}
