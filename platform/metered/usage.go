package metered

import "github.com/glmkit/glmkit/platform"

// UsageMetrics is the optional part of Metrics that counts usage reports a
// call had to bound (httpapi.Metrics implements it).
type UsageMetrics interface {
	UsageBounded(model string)
}

// maxReportedTokens bounds a count when the model's context is unknown:
// far beyond any real call, far below where sums of counts overflow.
const maxReportedTokens = 1 << 24

// maxEmbeddingInputs is how many texts one embeddings call carries at most
// (docs/v4.md §5): its prompt may fill the context once per text.
const maxEmbeddingInputs = 64

// bounded checks a usage a backend reported against what the call could
// have used: no count below zero, none beyond the model's context window
// (times the inputs of an embeddings call), and a total that is the sum
// of its parts when a part was cut or the total is out of range. A
// backend that reports more is wrong or hostile, and what it reports is
// what the account pays and what the daily quota counts, so the call is
// billed at the bound instead (docs/design.md §3 "Money").
func (c *Call) bounded(model string, u platform.Usage) (platform.Usage, bool) {
	limit := maxReportedTokens
	if info, ok := c.s.opts.Catalogue.Model(model); ok && info.ContextTokens > 0 {
		limit = info.ContextTokens
		if info.Kind == platform.KindEmbedding {
			limit *= maxEmbeddingInputs
		}
	}
	clamp := func(n int) (int, bool) {
		switch {
		case n < 0:
			return 0, true
		case n > limit:
			return limit, true
		}
		return n, false
	}
	var cutP, cutC bool
	u.PromptTokens, cutP = clamp(u.PromptTokens)
	u.CompletionTokens, cutC = clamp(u.CompletionTokens)
	cut := cutP || cutC
	// The details stay parts of their counts (docs/v4.md §11).
	u.CachedTokens = min(max(u.CachedTokens, 0), u.PromptTokens)
	u.ReasoningTokens = min(max(u.ReasoningTokens, 0), u.CompletionTokens)
	if sum := u.PromptTokens + u.CompletionTokens; cut || u.TotalTokens < 0 || u.TotalTokens > 2*limit {
		cut = cut || u.TotalTokens != sum
		u.TotalTokens = sum
	}
	return u, cut
}

// reported records usage a backend reported, bounded first; a bound that
// bites leaves a log line and a metric.
func (c *Call) reported(model string, u platform.Usage, outcome platform.Outcome) {
	b, cut := c.bounded(model, u)
	if cut {
		c.s.log.Warn("backend reported usage beyond what the call could use; billed at the bound",
			"request_id", c.Row.ID, "model", model, "reported_prompt", u.PromptTokens,
			"reported_completion", u.CompletionTokens, "reported_total", u.TotalTokens,
			"billed_prompt", b.PromptTokens, "billed_completion", b.CompletionTokens)
		if m, ok := c.s.metrics.(UsageMetrics); ok {
			m.UsageBounded(model)
		}
	}
	c.used(model, b, outcome, false)
}
