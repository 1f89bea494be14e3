package zhipuaitest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/glmkit/glmkit/internal/sse"
)

// Engine is a scripted OpenAI-compatible inference engine with vLLM's wire
// shapes, for the tests of glm serve's openai backends where a model would
// answer (docs/v4.md §11): a thinking model started with a reasoning
// parser streams delta.reasoning_content before its content, reports usage
// only when stream_options.include_usage asks (in a last chunk with
// "choices": []) and no reasoning_tokens detail; POST /tokenize applies the
// chat template and counts; POST /v1/rerank scores documents. Everything
// around the scripted words is real HTTP.
type Engine struct {
	ts *httptest.Server

	mu      sync.Mutex
	replies []EngineReply
	reqs    []EngineRequest
}

// EngineReply is one scripted chat answer. Without one queued the engine
// answers "ok" with no reasoning.
type EngineReply struct {
	// Reasoning and Content are the pieces, one chunk each.
	Reasoning, Content []string
	// PromptTokens and CompletionTokens are the usage reported; 0 counts
	// them with the engine's tokenizer (EngineTokens).
	PromptTokens, CompletionTokens int
	// CachedTokens, when set, is reported as prompt_tokens_details.
	CachedTokens int
}

// EngineRequest is one request the engine received.
type EngineRequest struct {
	Path string
	Body []byte
}

// NewEngine starts an engine on loopback; Close stops it.
func NewEngine() *Engine {
	e := &Engine{}
	e.ts = httptest.NewServer(http.HandlerFunc(e.serve))
	return e
}

// URL is the engine's OpenAI base, ending in /v1.
func (e *Engine) URL() string { return e.ts.URL + "/v1" }

// Close stops the engine.
func (e *Engine) Close() { e.ts.Close() }

// Enqueue adds chat answers, taken in order.
func (e *Engine) Enqueue(r ...EngineReply) {
	e.mu.Lock()
	e.replies = append(e.replies, r...)
	e.mu.Unlock()
}

// Requests returns the requests received so far.
func (e *Engine) Requests() []EngineRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]EngineRequest(nil), e.reqs...)
}

// EngineTokens is the engine tokenizer's count of a text: one token per
// rune, so a test can tell its counts from glm serve's estimates.
func EngineTokens(s string) int { return utf8.RuneCountInString(s) }

type engineMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// templateTokens is what the engine's chat template makes of messages:
// each message's text plus 3 tokens of role markup, plus 1 for the
// generation prompt.
func templateTokens(msgs []engineMessage) int {
	n := 1
	for _, m := range msgs {
		var text string
		_ = json.Unmarshal(m.Content, &text)
		n += 3 + EngineTokens(text)
	}
	return n
}

func (e *Engine) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	e.mu.Lock()
	e.reqs = append(e.reqs, EngineRequest{Path: r.URL.Path, Body: body})
	e.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions":
		e.chat(w, body)
	case r.Method == http.MethodPost && r.URL.Path == "/tokenize":
		var in struct {
			Messages []engineMessage `json:"messages"`
		}
		if json.Unmarshal(body, &in) != nil || len(in.Messages) == 0 {
			engineError(w, http.StatusBadRequest, "messages are required")
			return
		}
		n := templateTokens(in.Messages)
		writeJSON(w, http.StatusOK, map[string]any{"count": n, "max_model_len": 131072, "tokens": make([]int, n)})
	case r.Method == http.MethodPost && r.URL.Path == "/v1/rerank":
		e.rerank(w, body)
	default:
		engineError(w, http.StatusNotFound, "Not Found")
	}
}

// engineError is vLLM's flat error shape.
func engineError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"object": "error", "message": msg, "type": "BadRequestError", "param": nil, "code": status})
}

func (e *Engine) chat(w http.ResponseWriter, body []byte) {
	var in struct {
		Model         string          `json:"model"`
		Messages      []engineMessage `json:"messages"`
		Stream        bool            `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if json.Unmarshal(body, &in) != nil || len(in.Messages) == 0 {
		engineError(w, http.StatusBadRequest, "messages are required")
		return
	}
	e.mu.Lock()
	rep := EngineReply{Content: []string{"ok"}}
	if len(e.replies) > 0 {
		rep, e.replies = e.replies[0], e.replies[1:]
	}
	e.mu.Unlock()
	reasoning, content := strings.Join(rep.Reasoning, ""), strings.Join(rep.Content, "")
	usage := map[string]any{}
	p, c := rep.PromptTokens, rep.CompletionTokens
	if p == 0 {
		p = templateTokens(in.Messages)
	}
	if c == 0 {
		c = EngineTokens(reasoning) + EngineTokens(content)
	}
	usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"] = p, c, p+c
	if rep.CachedTokens > 0 {
		usage["prompt_tokens_details"] = map[string]int{"cached_tokens": rep.CachedTokens}
	}
	const id, created = "chatcmpl-engine", 1764800000
	if !in.Stream {
		msg := map[string]any{"role": "assistant", "content": content, "tool_calls": []any{}}
		if reasoning != "" {
			msg["reasoning_content"] = reasoning
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "chat.completion", "created": created, "model": in.Model,
			"choices": []any{map[string]any{"index": 0, "message": msg, "finish_reason": "stop"}}, "usage": usage})
		return
	}
	chunk := func(delta map[string]any, finish any) []byte {
		return marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": in.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}})
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	sw := sse.NewWriter(w)
	events := [][]byte{chunk(map[string]any{"role": "assistant", "content": ""}, nil)}
	for _, p := range rep.Reasoning {
		events = append(events, chunk(map[string]any{"reasoning_content": p}, nil))
	}
	for _, p := range rep.Content {
		events = append(events, chunk(map[string]any{"content": p}, nil))
	}
	events = append(events, chunk(map[string]any{"content": ""}, "stop"))
	if in.StreamOptions != nil && in.StreamOptions.IncludeUsage {
		events = append(events, marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created,
			"model": in.Model, "choices": []any{}, "usage": usage}))
	}
	for _, ev := range events {
		if sw.WriteData(ev) != nil {
			return
		}
	}
	_ = sw.WriteDone()
}

func (e *Engine) rerank(w http.ResponseWriter, body []byte) {
	var in struct {
		Model     string   `json:"model"`
		Query     string   `json:"query"`
		Documents []string `json:"documents"`
	}
	if json.Unmarshal(body, &in) != nil || in.Query == "" || len(in.Documents) == 0 {
		engineError(w, http.StatusBadRequest, "query and documents are required")
		return
	}
	type result struct {
		Index          int               `json:"index"`
		Document       map[string]string `json:"document"`
		RelevanceScore float64           `json:"relevance_score"`
	}
	results := make([]result, len(in.Documents))
	n := 0
	for i, d := range in.Documents {
		results[i] = result{Index: i, Document: map[string]string{"text": d}, RelevanceScore: LexicalScore(in.Query, d)}
		n += EngineTokens(in.Query) + EngineTokens(d)
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].RelevanceScore > results[j].RelevanceScore })
	writeJSON(w, http.StatusOK, map[string]any{"id": "rerank-engine", "model": in.Model, "results": results,
		"usage": map[string]int{"total_tokens": n}})
}
