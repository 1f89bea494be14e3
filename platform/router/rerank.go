package router

import (
	"context"
	"errors"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/upstream"
	"github.com/glmkit/glmkit/zhipuai"
)

var (
	_ platform.TokenizerBackend = (*Router)(nil)
	_ platform.RerankBackend    = (*Router)(nil)
)

// Tokenize implements platform.TokenizerBackend for chat and vision models:
// the model's backends are asked in plan order, and one that cannot count
// (platform.ErrNotCounted) hands over to the next without counting as a
// failure. With no backend able to count it returns ErrNotCounted and the
// caller estimates (docs/v4.md §11).
func (r *Router) Tokenize(ctx context.Context, req *zhipuai.TokenizerRequest) (*zhipuai.TokenizerResponse, error) {
	rt, err := r.lookup(req.Model, platform.KindChat, platform.KindVision)
	if err != nil {
		return nil, err
	}
	retry := func(err error) bool { return errors.Is(err, platform.ErrNotCounted) || upstream.Retryable(err) }
	resp, err := failover(r, ctx, rt, 0, retry, func(t *target) (*zhipuai.TokenizerResponse, error) {
		if t.m.tokens == nil {
			r.finish(ctx, t.m, nil)
			return nil, platform.ErrNotCounted
		}
		actx, cancel := context.WithTimeout(ctx, t.m.timeout)
		defer cancel()
		c := *req
		c.Model = t.upstream
		resp, err := t.m.tokens.Tokenize(actx, &c)
		if err != nil && ctx.Err() == nil && actx.Err() != nil {
			err = timeoutError(t.m, err)
		}
		if errors.Is(err, platform.ErrNotCounted) {
			r.finish(ctx, t.m, nil) // a known gap, not a failing backend
		} else {
			r.finish(ctx, t.m, err)
		}
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	resp.Model = req.Model
	return resp, nil
}

// Rerank implements platform.RerankBackend for rerank models, with the
// failover of every other call.
func (r *Router) Rerank(ctx context.Context, req *zhipuai.RerankRequest) (*zhipuai.RerankResponse, error) {
	rt, err := r.lookup(req.Model, platform.KindRerank)
	if err != nil {
		return nil, err
	}
	resp, err := attempt(r, ctx, rt, 0, func(ctx context.Context, t *target) (*zhipuai.RerankResponse, error) {
		c := *req
		c.Model = t.upstream
		return t.m.rerank.Rerank(ctx, &c)
	})
	if err != nil {
		return nil, err
	}
	resp.Model = req.Model
	return resp, nil
}
