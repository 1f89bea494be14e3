package metered

import (
	"context"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Embeddings runs an embeddings call. prompt is the caller's estimate of
// the input tokens; nothing is reserved for output. The reply's usage is
// normalised to input only (embeddings bill input, docs/v4.md §7), as clients
// see it too.
func (c *Call) Embeddings(ctx context.Context, req *zhipuai.EmbeddingRequest, prompt int) (*zhipuai.EmbeddingResponse, error) {
	if c.s.embed == nil {
		return nil, platform.Errorf(platform.CodeUnsupportedMode, "model %s does not answer embeddings", req.Model)
	}
	if err := c.admit(ctx, req.Model, prompt, 0, 0, 0); err != nil {
		return nil, err
	}
	resp, err := c.s.embed.Embeddings(c.backendCtx(ctx), req)
	if err != nil {
		c.backendFailed(err)
		return nil, err
	}
	resp.Usage.CompletionTokens = 0
	if resp.Usage.TotalTokens == 0 {
		resp.Usage.TotalTokens = resp.Usage.PromptTokens
	}
	c.reported(req.Model, usageOf(resp.Usage), platform.OutcomeOK)
	return resp, nil
}

// Images runs an image generation; the reservation is for the n images
// asked (default 1) and the prompt's tokens, the charge for the images
// returned.
func (c *Call) Images(ctx context.Context, req *zhipuai.ImageRequest) (*zhipuai.ImagesResponse, error) {
	if c.s.images == nil {
		return nil, platform.Errorf(platform.CodeUnsupportedMode, "model %s does not generate images", req.Model)
	}
	n := 1
	if req.N != nil {
		n = *req.N
	}
	if err := c.admit(ctx, req.Model, platform.EstimateTokens(req.Prompt), 0, 0, n); err != nil {
		return nil, err
	}
	resp, err := c.s.images.Images(c.backendCtx(ctx), req)
	if err != nil {
		c.backendFailed(err)
		return nil, err
	}
	c.used(req.Model, platform.Usage{Images: len(resp.Data)}, platform.OutcomeOK, false)
	return resp, nil
}
