package metered

import (
	"context"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// boundRes is a reservation that pays for n output tokens.
type boundRes struct {
	n       int
	bounded bool
}

func (boundRes) Settle(context.Context, platform.Settlement) (platform.Charge, error) {
	return platform.Charge{}, nil
}

func (r boundRes) OutputTokens() (int, bool) { return r.n, r.bounded }

// A reservation that pays for less output than asked sends the bound
// upstream as max_tokens on a copy, with the raw body dropped so a
// pass-through backend encodes the bounded request (docs/design.md §7);
// the caller's request is left as it was.
func TestBoundOutput(t *testing.T) {
	asked := 4096
	orig := &zhipuai.ChatCompletionRequest{Model: "glm-4", MaxTokens: &asked}
	req := platform.ChatRequest{Req: orig, Raw: []byte(`{"model":"glm-4","max_tokens":4096}`)}

	got := boundOutput(req, boundRes{n: 988, bounded: true})
	if got.Req.MaxTokens == nil || *got.Req.MaxTokens != 988 || got.Raw != nil {
		t.Errorf("bounded: got max_tokens %v raw %q, want 988 and no raw body", got.Req.MaxTokens, got.Raw)
	}
	if *orig.MaxTokens != 4096 || req.Raw == nil {
		t.Errorf("the caller's request changed: max_tokens %d raw %q", *orig.MaxTokens, req.Raw)
	}
	if got := boundOutput(req, boundRes{n: 4096}); got.Req != orig || got.Raw == nil {
		t.Errorf("not bounded: got a changed request %+v, want the caller's", got)
	}
	nop, _ := platform.NopMeter{}.Reserve(context.Background(), platform.ReserveRequest{})
	if got := boundOutput(req, nop); got.Req != orig {
		t.Errorf("a meter without bounds: got a changed request")
	}
}
