package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// OpenAIOptions configures an OpenAI-compatible engine backend.
type OpenAIOptions struct {
	// Name identifies the backend in logs (default "openai").
	Name string
	// BaseURL is the engine's OpenAI base, e.g. "http://127.0.0.1:8000/v1".
	BaseURL string
	// APIKey is the engine's optional static bearer token.
	APIKey string
	// Flavor names the engine for its quirks: FlavorVLLM, FlavorSGLang,
	// FlavorOllama, FlavorLlamaCpp or "".
	Flavor string
	// HTTPClient defaults to NewHTTPClient().
	HTTPClient *http.Client
	// StreamClient opens streams; it defaults to HTTPClient when that is
	// set, else to NewStreamHTTPClient().
	StreamClient *http.Client
	// ToolParser: ToolParserAuto ("" too), ToolParserGLM4, ToolParserGLM45 or
	// ToolParserNone — whether tool calls the engine left in its text (GLM-4
	// native, glm4tools.go; GLM-4.5+ markup, glm45tools.go) become V4 tool
	// calls.
	ToolParser string
	// StreamIdle cuts a stream that sends no byte for this long after its
	// first (default DefaultStreamIdle; negative: never).
	StreamIdle time.Duration
}

// OpenAI serves models of an OpenAI-compatible engine (vLLM, SGLang,
// Ollama, llama.cpp server), translating both ways (docs/peers.md §4).
type OpenAI struct {
	name   string
	base   string
	auth   []string // the Authorization value (bearer)
	flavor string
	client *http.Client
	stream *http.Client // opens streams (OpenAIOptions.StreamClient)
	// chatURL is base + /chat/completions, made once.
	chatURL string
	// toolParser is OpenAIOptions.ToolParser.
	toolParser string
	idle       time.Duration
	// embedSize is the size of the last embeddings reply (readBodySized).
	embedSize atomic.Int64
}

// NewOpenAI returns an engine backend.
func NewOpenAI(o OpenAIOptions) (*OpenAI, error) {
	if o.BaseURL == "" {
		return nil, errors.New("openai backend: base_url is required")
	}
	switch o.ToolParser {
	case "", ToolParserAuto, ToolParserGLM4, ToolParserGLM45, ToolParserNone:
	default:
		return nil, fmt.Errorf("openai backend: unknown tool_parser %q (auto, glm4, glm45 or none)", o.ToolParser)
	}
	b := &OpenAI{name: o.Name, base: o.BaseURL, auth: bearer(o.APIKey), flavor: o.Flavor, client: o.HTTPClient,
		toolParser: o.ToolParser, idle: streamIdle(o.StreamIdle), chatURL: joinURL(o.BaseURL, "/chat/completions")}
	if b.name == "" {
		b.name = "openai"
	}
	b.client, b.stream = clients(o.HTTPClient, o.StreamClient)
	return b, nil
}

// Name implements platform.Backend.
func (b *OpenAI) Name() string { return b.name }

func clientModel(req platform.ChatRequest) string {
	if req.ClientModel != "" {
		return req.ClientModel
	}
	return req.Req.Model
}

// Chat implements platform.ChatBackend.
func (b *OpenAI) Chat(ctx context.Context, req platform.ChatRequest) (*zhipuai.ChatCompletion, []byte, error) {
	if req.Req == nil {
		return nil, nil, platform.Errorf(platform.CodeMissingField, "missing request")
	}
	oreq, err := ToOpenAIChat(req.Req, false, b.flavor)
	if err != nil {
		return nil, nil, err
	}
	parser := textToolParserFor(b.toolParser, req.Req)
	b.glm4EngineRequest(oreq, parser)
	body, err := json.Marshal(oreq)
	if err != nil {
		return nil, nil, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	resp, err := postJSON(ctx, b.client, b.chatURL, b.auth, body, false)
	if err != nil {
		return nil, nil, transportError(ctx, b.name, err)
	}
	raw, err := readBody(resp, maxReplyBytes)
	if err != nil {
		return nil, nil, transportError(ctx, b.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, engineError(b.name, resp.StatusCode, raw, req.Req.Model, clientModel(req))
	}
	var in oaChatCompletion
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, nil, badReply(b.name, err)
	}
	if (len(in.Error) > 0 && string(in.Error) != "null") || len(in.Choices) == 0 {
		return nil, nil, engineError(b.name, http.StatusInternalServerError, raw, req.Req.Model, clientModel(req))
	}
	if thinkInText(b.toolParser, req.Req.Model) {
		splitThinkReply(&in)
	}
	out := FromOpenAIChat(&in, req.Req, clientModel(req))
	if parser != nil {
		parser.apply(out)
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return nil, nil, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	return out, enc, nil
}

// ChatStream implements platform.ChatBackend.
func (b *OpenAI) ChatStream(ctx context.Context, req platform.ChatRequest) (platform.Stream, error) {
	if req.Req == nil {
		return nil, platform.Errorf(platform.CodeMissingField, "missing request")
	}
	oreq, err := ToOpenAIChat(req.Req, true, b.flavor)
	if err != nil {
		return nil, err
	}
	parser := textToolParserFor(b.toolParser, req.Req)
	b.glm4EngineRequest(oreq, parser)
	body, err := json.Marshal(oreq)
	if err != nil {
		return nil, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	ctx, cancel := streamContext(ctx)
	resp, err := postJSON(ctx, b.stream, b.chatURL, b.auth, body, true)
	if err != nil {
		cancel()
		return nil, transportError(ctx, b.name, err)
	}
	if resp.StatusCode != http.StatusOK || !isEventStream(resp.Header) {
		raw, rerr := readBody(resp, maxErrorBytes)
		cancel()
		if rerr != nil {
			return nil, transportError(ctx, b.name, rerr)
		}
		status := resp.StatusCode
		if status == http.StatusOK {
			status = http.StatusInternalServerError // JSON where a stream was asked for
		}
		return nil, engineError(b.name, status, raw, req.Req.Model, clientModel(req))
	}
	resp.Body = newIdleBody(resp.Body, b.idle, cancel)
	tr := newChunkTranslator(req.Req, clientModel(req))
	if req.PromptTokens > 0 {
		tr.prompt, tr.req = req.PromptTokens, nil
	}
	if parser != nil {
		tr.glm = parser.stream()
	}
	if thinkInText(b.toolParser, req.Req.Model) {
		tr.think = &thinkSplit{}
	}
	return &oaStream{
		ctx: ctx, cancel: cancel, backend: b.name, upModel: req.Req.Model,
		body: resp.Body, r: sse.NewReader(resp.Body), tr: tr,
	}, nil
}

// oaEmbeddingRequest always sends a list and asks for floats; dimensions
// are never forwarded (most engines reject it for models without
// Matryoshka training) — the router checks the size that comes back.
type oaEmbeddingRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	EncodingFormat string   `json:"encoding_format"`
}

// Embeddings implements platform.EmbeddingBackend.
func (b *OpenAI) Embeddings(ctx context.Context, req *zhipuai.EmbeddingRequest) (*zhipuai.EmbeddingResponse, error) {
	body, err := json.Marshal(oaEmbeddingRequest{Model: req.Model, Input: req.Input, EncodingFormat: zhipuai.EncodingFloat})
	if err != nil {
		return nil, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	resp, err := postJSON(ctx, b.client, joinURL(b.base, "/embeddings"), b.auth, body, false)
	if err != nil {
		return nil, transportError(ctx, b.name, err)
	}
	raw, err := readBodySized(resp, maxReplyBytes, &b.embedSize, nil)
	if err != nil {
		return nil, transportError(ctx, b.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, engineError(b.name, resp.StatusCode, raw, req.Model, req.Model)
	}
	var out zhipuai.EmbeddingResponse
	if err := decodeEmbeddings(raw, &out); err != nil {
		return nil, badReply(b.name, err)
	}
	if len(out.Data) != len(req.Input) {
		return nil, badReply(b.name, fmt.Errorf("%d vectors for %d inputs", len(out.Data), len(req.Input)))
	}
	out.Object = "list"
	for i := range out.Data {
		out.Data[i].Object = "embedding"
	}
	if out.Usage.PromptTokens == 0 {
		// llama.cpp and older Ollama report no usage; bill an estimate.
		for _, s := range req.Input {
			out.Usage.PromptTokens += platform.EstimateTokens(s)
		}
	}
	out.Usage.CompletionTokens = 0
	out.Usage.TotalTokens = out.Usage.PromptTokens
	return &out, nil
}

// engineError maps an engine's error reply to V4 (docs/peers.md §4.6). Engines
// answer in three shapes: OpenAI's {"error":{message,type,param,code}},
// vLLM's flat {"object":"error","message","type","code":400} and Ollama's
// native {"error":"text"}. The engine's model name is replaced by the
// client's in any message passed on, so an alias stays an alias.
func engineError(backend string, status int, body []byte, upModel, model string) *platform.Error {
	msg, typ, code := parseEngineError(body)
	if code >= 400 && code < 600 && status == http.StatusOK {
		status = code // in-band errors carry the status as code
	}
	cause := fmt.Errorf("backend %s: HTTP %d %s: %s", backend, status, typ, clip(msg, 500))
	low := strings.ToLower(msg)
	if upModel != "" && upModel != model {
		msg = strings.ReplaceAll(msg, upModel, model)
	}
	msg = clip(msg, 300)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		// The client's key was fine; the operator's engine key is not.
		return retryable(platform.CodeInternal, "upstream authentication failed", cause)
	case status == http.StatusTooManyRequests:
		return retryable(platform.CodeOverloaded, "upstream is busy, please retry later", cause)
	case status == http.StatusNotFound:
		return retryable(platform.CodeUnknownModel, "model is not available on this backend", cause)
	case isContextError(low, typ):
		return &platform.Error{Code: platform.CodePromptTooLong, Message: "prompt exceeds max length: " + msg, Err: cause}
	case status >= 500:
		return retryable(platform.CodeInternal, "upstream error", cause)
	case strings.Contains(low, "does not support tools"), strings.Contains(low, "--jinja"),
		strings.Contains(low, "tool choice") && strings.Contains(low, "requires"):
		// Ollama's glm4 and llama.cpp without --jinja (docs/peers.md §4 table).
		return &platform.Error{Code: platform.CodeUnsupportedMode, Message: "this model does not support tool calls here", Err: cause}
	case strings.Contains(low, "multimodal") || strings.Contains(low, "image input") || strings.Contains(low, "does not support image"):
		return &platform.Error{Code: platform.CodeUnsupportedMode, Message: "this model does not support images here", Err: cause}
	case status >= 400:
		if msg == "" {
			msg = "upstream rejected the request"
		}
		return &platform.Error{Code: platform.CodeBadParams, Message: msg, Err: cause}
	}
	return retryable(platform.CodeInternal, "unexpected upstream reply", cause)
}

// isContextError recognises "prompt too long" in the words of vLLM
// ("This model's maximum context length is 8192 tokens…"), SGLang, Ollama
// and llama.cpp ("the request exceeds the available context size", type
// exceed_context_size_error).
func isContextError(low, typ string) bool {
	if typ == "exceed_context_size_error" {
		return true
	}
	for _, p := range []string{
		"maximum context length", "context length", "context size", "context window",
		"exceeds the available context", "prompt is too long", "too many tokens",
		"max_tokens' or 'max_completion_tokens' is too large", "input is too long",
	} {
		if strings.Contains(low, p) {
			return true
		}
	}
	return false
}

// parseEngineError pulls message, type and numeric code from any of the
// three error shapes.
func parseEngineError(body []byte) (msg, typ string, code int) {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &env) != nil {
		return clip(string(body), 300), "", 0
	}
	msg, typ, code = env.Message, env.Type, numCode(env.Code)
	if len(env.Error) > 0 && env.Error[0] == '{' {
		var inner struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Code    json.RawMessage `json:"code"`
		}
		if json.Unmarshal(env.Error, &inner) == nil {
			msg, typ, code = inner.Message, inner.Type, numCode(inner.Code)
		}
	} else if len(env.Error) > 0 && env.Error[0] == '"' {
		_ = json.Unmarshal(env.Error, &msg)
	}
	if msg == "" && len(env.Detail) > 0 {
		msg = clip(string(env.Detail), 300) // FastAPI validation errors
	}
	return msg, typ, code
}

func numCode(raw json.RawMessage) int {
	s := strings.Trim(string(raw), `"`)
	n, _ := strconv.Atoi(s)
	return n
}
