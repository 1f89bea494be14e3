package metered

import (
	"context"
	"errors"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Tokenize counts the prompt tokens of a tokenizer request. It meets the
// caller's limits like any call and is recorded, but uses no model
// tokens: counting is not billed, so it settles at zero. estimate is the
// caller's local count, returned (with Estimated set) when no backend of
// the model can count exactly (platform.ErrNotCounted, docs/v4.md §11).
func (c *Call) Tokenize(ctx context.Context, req *zhipuai.TokenizerRequest, estimate int) (*zhipuai.TokenizerResponse, error) {
	if err := c.admit(ctx, req.Model, 0, 0, 0, 0); err != nil {
		return nil, err
	}
	var resp *zhipuai.TokenizerResponse
	var err error = platform.ErrNotCounted
	if tb, ok := c.s.opts.Backend.(platform.TokenizerBackend); ok {
		resp, err = tb.Tokenize(c.backendCtx(ctx), req)
	}
	switch {
	case errors.Is(err, platform.ErrNotCounted):
		resp = &zhipuai.TokenizerResponse{Estimated: true,
			Usage: zhipuai.Usage{PromptTokens: estimate, TotalTokens: estimate}}
	case err != nil:
		c.backendFailed(err)
		return nil, err
	}
	c.used(req.Model, platform.Usage{}, platform.OutcomeOK, false)
	return resp, nil
}

// Rerank runs a rerank call: reserved for prompt (the caller's estimate
// of the query and documents), charged for the input the backend
// reports, as embeddings are (input only).
func (c *Call) Rerank(ctx context.Context, req *zhipuai.RerankRequest, prompt int) (*zhipuai.RerankResponse, error) {
	rb, ok := c.s.opts.Backend.(platform.RerankBackend)
	if !ok {
		return nil, platform.Errorf(platform.CodeUnsupportedMode, "model %s does not rerank", req.Model)
	}
	if err := c.admit(ctx, req.Model, prompt, 0, 0, 0); err != nil {
		return nil, err
	}
	resp, err := rb.Rerank(c.backendCtx(ctx), req)
	if err != nil {
		c.backendFailed(err)
		return nil, err
	}
	resp.Usage.CompletionTokens = 0
	if resp.Usage.PromptTokens == 0 {
		resp.Usage.PromptTokens = resp.Usage.TotalTokens
	}
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	c.reported(req.Model, usageOf(resp.Usage), platform.OutcomeOK)
	return resp, nil
}
