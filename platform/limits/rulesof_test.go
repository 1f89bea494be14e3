package limits

import (
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// Stored rules reach the limiter per subject, field for field.
func TestRulesOf(t *testing.T) {
	got := RulesOf([]platform.LimitRule{
		{Subject: platform.LimitAccount, ID: "acme", MaxConcurrent: 2, RPM: 60, DailyTokens: 1000},
		{Subject: platform.LimitKey, ID: "k1", RPM: 5},
	})
	if r := got.Accounts["acme"]; r != (Rule{MaxConcurrent: 2, RPM: 60, DailyTokens: 1000}) {
		t.Errorf("account rule: got %+v, want 2/60/1000", r)
	}
	if r := got.Keys["k1"]; r != (Rule{RPM: 5}) {
		t.Errorf("key rule: got %+v, want rpm 5", r)
	}
	if len(got.Accounts) != 1 || len(got.Keys) != 1 {
		t.Errorf("got %+v, want one account and one key", got)
	}
}
