package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Tokenizer and rerank on the backends (docs/v4.md §11). The cloud answers
// both itself, so the zhipu backend forwards them. Engines count with the
// served model's own tokenizer where they have an endpoint for it, and
// rerank where they serve a reranker:
//
//   - vLLM: POST /tokenize (at the server root, not under /v1) takes chat
//     messages and applies the chat template, answering {"count"}; POST
//     /v1/rerank answers {"results":[{index, document:{text},
//     relevance_score}], "usage":{…}}.
//   - llama.cpp server: POST /apply-template renders messages with the
//     model's template ({"prompt"}), POST /tokenize counts a text
//     ({"tokens":[…]}); POST /v1/rerank as vLLM (started with --reranking).
//   - Text Embeddings Inference (flavor "tei"): POST /rerank {query, texts,
//     raw_scores, return_text} answers [{index, score, text}].
//   - SGLang and Ollama have no such endpoints here: the tokenizer answers
//     platform.ErrNotCounted (the caller's estimate is labelled as one).

// FlavorTEI names Text Embeddings Inference, which serves embeddings on
// its OpenAI route and rerankers on its own /rerank.
const FlavorTEI = "tei"

var (
	_ platform.TokenizerBackend = (*Zhipu)(nil)
	_ platform.RerankBackend    = (*Zhipu)(nil)
	_ platform.TokenizerBackend = (*OpenAI)(nil)
	_ platform.RerankBackend    = (*OpenAI)(nil)
)

// Tokenize implements platform.TokenizerBackend by forwarding.
func (z *Zhipu) Tokenize(ctx context.Context, req *zhipuai.TokenizerRequest) (*zhipuai.TokenizerResponse, error) {
	var out zhipuai.TokenizerResponse
	if err := z.postDecode(ctx, "/tokenizer", req, &out); err != nil {
		return nil, err
	}
	out.Estimated = false // only glm serve's own fallback sets it
	return &out, nil
}

// Rerank implements platform.RerankBackend by forwarding.
func (z *Zhipu) Rerank(ctx context.Context, req *zhipuai.RerankRequest) (*zhipuai.RerankResponse, error) {
	var out zhipuai.RerankResponse
	if err := z.postDecode(ctx, "/rerank", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// engineRoot is the engine's server root: the base URL without its
// trailing "/v1", where vLLM and llama.cpp serve /tokenize.
func (b *OpenAI) engineRoot() string {
	base := strings.TrimRight(b.base, "/")
	return strings.TrimSuffix(base, "/v1")
}

// postEngine posts v to url and decodes the 200 reply into out; any other
// status is the engine's error in V4 terms.
func (b *OpenAI) postEngine(ctx context.Context, url string, v, out any, upModel, model string) error {
	body, err := json.Marshal(v)
	if err != nil {
		return platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	resp, err := postJSON(ctx, b.client, url, b.auth, body, false)
	if err != nil {
		return transportError(ctx, b.name, err)
	}
	raw, err := readBody(resp, maxReplyBytes)
	if err != nil {
		return transportError(ctx, b.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return engineError(b.name, resp.StatusCode, raw, upModel, model)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return badReply(b.name, err)
	}
	return nil
}

// Tokenize implements platform.TokenizerBackend on the engines that can
// count; req.Model is the engine's name for the model.
func (b *OpenAI) Tokenize(ctx context.Context, req *zhipuai.TokenizerRequest) (*zhipuai.TokenizerResponse, error) {
	var n int
	var err error
	switch b.flavor {
	case FlavorVLLM:
		n, err = b.tokenizeVLLM(ctx, req)
	case FlavorLlamaCpp:
		n, err = b.tokenizeLlamaCpp(ctx, req)
	default:
		return nil, platform.ErrNotCounted
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	id := platform.NewID(now)
	return &zhipuai.TokenizerResponse{ID: id, RequestID: req.RequestID, Created: now.Unix(),
		Usage: zhipuai.Usage{PromptTokens: n, TotalTokens: n}}, nil
}

// engineChat is the part of a chat request the tokenize endpoints render:
// the messages and tools exactly as a chat call would send them.
func engineChat(req *zhipuai.TokenizerRequest, flavor string) (*oaChatRequest, error) {
	return ToOpenAIChat(&zhipuai.ChatCompletionRequest{Model: req.Model, Messages: req.Messages, Tools: req.Tools}, false, flavor)
}

func (b *OpenAI) tokenizeVLLM(ctx context.Context, req *zhipuai.TokenizerRequest) (int, error) {
	oreq, err := engineChat(req, b.flavor)
	if err != nil {
		return 0, err
	}
	in := struct {
		Model               string      `json:"model"`
		Messages            []oaMessage `json:"messages"`
		Tools               []oaTool    `json:"tools,omitempty"`
		AddGenerationPrompt bool        `json:"add_generation_prompt"`
	}{oreq.Model, oreq.Messages, oreq.Tools, true}
	var out struct {
		Count *int `json:"count"`
	}
	if err := b.postEngine(ctx, b.engineRoot()+"/tokenize", in, &out, req.Model, req.Model); err != nil {
		return 0, err
	}
	if out.Count == nil {
		return 0, badReply(b.name, fmt.Errorf("tokenize reply without count"))
	}
	return *out.Count, nil
}

func (b *OpenAI) tokenizeLlamaCpp(ctx context.Context, req *zhipuai.TokenizerRequest) (int, error) {
	oreq, err := engineChat(req, b.flavor)
	if err != nil {
		return 0, err
	}
	var tmpl struct {
		Prompt *string `json:"prompt"`
	}
	in := struct {
		Messages []oaMessage `json:"messages"`
		Tools    []oaTool    `json:"tools,omitempty"`
	}{oreq.Messages, oreq.Tools}
	if err := b.postEngine(ctx, b.engineRoot()+"/apply-template", in, &tmpl, req.Model, req.Model); err != nil {
		return 0, err
	}
	if tmpl.Prompt == nil {
		return 0, badReply(b.name, fmt.Errorf("apply-template reply without prompt"))
	}
	var toks struct {
		Tokens []json.RawMessage `json:"tokens"`
	}
	// The template already holds the special tokens; none are added.
	tin := struct {
		Content    string `json:"content"`
		AddSpecial bool   `json:"add_special"`
	}{*tmpl.Prompt, false}
	if err := b.postEngine(ctx, b.engineRoot()+"/tokenize", tin, &toks, req.Model, req.Model); err != nil {
		return 0, err
	}
	return len(toks.Tokens), nil
}

// Rerank implements platform.RerankBackend: TEI's own route for flavor
// "tei", the OpenAI-style /rerank of vLLM and llama.cpp otherwise.
func (b *OpenAI) Rerank(ctx context.Context, req *zhipuai.RerankRequest) (*zhipuai.RerankResponse, error) {
	var out *zhipuai.RerankResponse
	var err error
	if b.flavor == FlavorTEI {
		out, err = b.rerankTEI(ctx, req)
	} else {
		out, err = b.rerankOpenAI(ctx, req)
	}
	if err != nil {
		return nil, err
	}
	// Best first and at most top_n, whatever order the engine used.
	sort.SliceStable(out.Results, func(i, j int) bool { return out.Results[i].RelevanceScore > out.Results[j].RelevanceScore })
	if req.TopN != nil && *req.TopN > 0 && *req.TopN < len(out.Results) {
		out.Results = out.Results[:*req.TopN]
	}
	for i := range out.Results {
		r := &out.Results[i]
		if r.Index < 0 || r.Index >= len(req.Documents) {
			return nil, badReply(b.name, fmt.Errorf("rerank result index %d of %d documents", r.Index, len(req.Documents)))
		}
		r.Document = ""
		if req.ReturnDocuments {
			r.Document = req.Documents[r.Index]
		}
	}
	if out.Usage.PromptTokens == 0 {
		out.Usage.PromptTokens = out.Usage.TotalTokens
	}
	if out.Usage.PromptTokens == 0 {
		// TEI reports no usage; bill a stated estimate of the input.
		n := platform.EstimateTokens(req.Query) * len(req.Documents)
		for _, d := range req.Documents {
			n += platform.EstimateTokens(d)
		}
		out.Usage.PromptTokens = n
	}
	out.Usage.CompletionTokens = 0
	out.Usage.TotalTokens = out.Usage.PromptTokens
	now := time.Now()
	out.ID, out.RequestID, out.Created = platform.NewID(now), req.RequestID, now.Unix()
	return out, nil
}

func (b *OpenAI) rerankOpenAI(ctx context.Context, req *zhipuai.RerankRequest) (*zhipuai.RerankResponse, error) {
	in := struct {
		Model     string   `json:"model"`
		Query     string   `json:"query"`
		Documents []string `json:"documents"`
	}{req.Model, req.Query, req.Documents}
	var out struct {
		Results []struct {
			Index          int      `json:"index"`
			RelevanceScore *float64 `json:"relevance_score"`
		} `json:"results"`
		Usage oaUsage `json:"usage"`
	}
	if err := b.postEngine(ctx, joinURL(b.base, "/rerank"), in, &out, req.Model, req.Model); err != nil {
		return nil, err
	}
	resp := &zhipuai.RerankResponse{Results: make([]zhipuai.RerankResult, 0, len(out.Results)),
		Usage: zhipuai.Usage{PromptTokens: out.Usage.PromptTokens, TotalTokens: out.Usage.TotalTokens}}
	for _, r := range out.Results {
		if r.RelevanceScore == nil {
			return nil, badReply(b.name, fmt.Errorf("rerank result without relevance_score"))
		}
		resp.Results = append(resp.Results, zhipuai.RerankResult{Index: r.Index, RelevanceScore: *r.RelevanceScore})
	}
	return resp, nil
}

func (b *OpenAI) rerankTEI(ctx context.Context, req *zhipuai.RerankRequest) (*zhipuai.RerankResponse, error) {
	in := struct {
		Query     string   `json:"query"`
		Texts     []string `json:"texts"`
		RawScores bool     `json:"raw_scores"`
		Truncate  bool     `json:"truncate"`
	}{req.Query, req.Documents, req.ReturnRawScores, true}
	var out []struct {
		Index int     `json:"index"`
		Score float64 `json:"score"`
	}
	if err := b.postEngine(ctx, b.engineRoot()+"/rerank", in, &out, req.Model, req.Model); err != nil {
		return nil, err
	}
	resp := &zhipuai.RerankResponse{Results: make([]zhipuai.RerankResult, 0, len(out))}
	for _, r := range out {
		resp.Results = append(resp.Results, zhipuai.RerankResult{Index: r.Index, RelevanceScore: r.Score})
	}
	return resp, nil
}
