package metered

import (
	"context"
	"math"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

type boundedCounts struct {
	counts
	bounded []string
}

func (b *boundedCounts) UsageBounded(model string) { b.bounded = append(b.bounded, model) }

// A backend's usage report is billed as reported when it is possible, and
// at the bound (glm-4: the 128,000-token context) when it is negative, beyond
// the context, or overflows; each bound that bites is counted.
func TestReportedUsageIsBounded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		report  zhipuai.Usage
		want    platform.Usage
		bounded bool
	}{
		{"ordinary", zhipuai.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15},
			platform.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}, false},
		{"negative", zhipuai.Usage{PromptTokens: -1000, CompletionTokens: 5, TotalTokens: -995},
			platform.Usage{PromptTokens: 0, CompletionTokens: 5, TotalTokens: 5}, true},
		{"beyond the context", zhipuai.Usage{PromptTokens: 10, CompletionTokens: 9_000_000, TotalTokens: 9_000_010},
			platform.Usage{PromptTokens: 10, CompletionTokens: 128_000, TotalTokens: 128_010}, true},
		{"overflow", zhipuai.Usage{PromptTokens: math.MaxInt, CompletionTokens: math.MaxInt},
			platform.Usage{PromptTokens: 128_000, CompletionTokens: 128_000, TotalTokens: 256_000}, true},
		{"total alone absurd", zhipuai.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: math.MaxInt},
			platform.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}, true},
	} {
		be := &backend{reply: &zhipuai.ChatCompletion{Usage: tc.report}}
		f := newFixture(be)
		m := &boundedCounts{}
		f.svc = New(Options{Backend: be, Catalogue: be, Meter: f.meter, Limiter: f.limiter, Log: f.log, Metrics: m})
		var c Call
		f.begin(&c)
		if _, _, err := c.Chat(context.Background(), chatReq(nil), 1); err != nil {
			t.Fatal(err)
		}
		c.End(context.Background())
		s := f.exactlyOnce(t, platform.OutcomeOK)
		if s.Usage != tc.want || f.log.rows[0].Usage != tc.want || (len(m.bounded) == 1) != tc.bounded {
			t.Errorf("%s: got settled %+v, row %+v, %d bounded; want %+v, bounded %v",
				tc.name, s.Usage, f.log.rows[0].Usage, len(m.bounded), tc.want, tc.bounded)
		}
	}
}
