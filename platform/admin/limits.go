package admin

import (
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/limits"
)

// Bounds of limit values (far above any real limit; they keep a typo such
// as an extra zero run from becoming "unlimited" by overflow).
const (
	MaxConcurrentLimit = 1_000_000
	MaxRPMLimit        = 1_000_000_000
	MaxDailyTokens     = 1_000_000_000_000_000
)

// LimitValues are the fields of a limit rule the operator sets: nil is
// "keep the current value" (0, off, for a new rule); 0 turns a limit off.
// The JSON names are the --limits file's.
type LimitValues struct {
	MaxConcurrent *int64 `json:"max_concurrent"`
	RPM           *int64 `json:"rpm"`
	DailyTokens   *int64 `json:"daily_tokens"`
}

// ValidLimitSubject checks a rule's subject and id.
func ValidLimitSubject(subject, id string) error {
	switch subject {
	case platform.LimitAccount:
		if !ValidAccountID(id) {
			return invalid("account %s: 1–64 characters of A–Z a–z 0–9 _ - .", envelope.Quote(id))
		}
	case platform.LimitKey:
		if !platform.ValidKeyID(id) {
			return invalid("key %s: want a key id (32 hex characters, glm keys list)", envelope.Quote(id))
		}
	default:
		return invalid("subject %s: want account or key", envelope.Quote(subject))
	}
	return nil
}

// Limit validates a limit change for (subject, id).
func Limit(subject, id string, v LimitValues) (billing.LimitPatch, error) {
	if err := ValidLimitSubject(subject, id); err != nil {
		return billing.LimitPatch{}, err
	}
	if v.MaxConcurrent == nil && v.RPM == nil && v.DailyTokens == nil {
		return billing.LimitPatch{}, missing("max_concurrent, rpm or daily_tokens is required")
	}
	for _, f := range []struct {
		name string
		v    *int64
		max  int64
	}{{"max_concurrent", v.MaxConcurrent, MaxConcurrentLimit}, {"rpm", v.RPM, MaxRPMLimit}, {"daily_tokens", v.DailyTokens, MaxDailyTokens}} {
		if f.v != nil && (*f.v < 0 || *f.v > f.max) {
			return billing.LimitPatch{}, invalid("%s must be between 0 (off) and %d", f.name, f.max)
		}
	}
	return billing.LimitPatch{MaxConcurrent: v.MaxConcurrent, RPM: v.RPM, DailyTokens: v.DailyTokens}, nil
}

// LimitRule is the JSON form of a limit rule (glm limits list --json and
// the admin API): the platform's one definition.
type LimitRule = platform.LimitRule

// LimitView is a stored rule in the platform's form: the one place the
// billing store's rule type is converted.
func LimitView(r billing.LimitRule) platform.LimitRule {
	return platform.LimitRule{Subject: r.Subject, ID: r.ID, MaxConcurrent: r.MaxConcurrent, RPM: r.RPM,
		DailyTokens: r.DailyTokens, UpdatedAt: r.UpdatedAt}
}

// LimitViews is a rule list in the platform's form; never nil.
func LimitViews(rs []billing.LimitRule) []platform.LimitRule { return views(rs, LimitView) }

// LimitRules converts stored rules into the limiter's form (what glm serve
// loads on each reload).
func LimitRules(rs []billing.LimitRule) limits.Rules { return limits.RulesOf(LimitViews(rs)) }
