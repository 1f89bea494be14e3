package billing

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limit rule subjects.
const (
	LimitAccount = "account"
	LimitKey     = "key"
)

// LimitRule is an operator-set limit for one account or key, stored in
// billing_limit_rules and enforced in memory by every glm serve
// (platform/limits). Zero fields are off.
type LimitRule struct {
	Subject       string // LimitAccount or LimitKey
	ID            string
	MaxConcurrent int64
	RPM           int64
	DailyTokens   int64
	UpdatedAt     time.Time
}

// LimitPatch changes some fields of a rule; nil fields keep their value
// (0 for a new rule).
type LimitPatch struct {
	MaxConcurrent, RPM, DailyTokens *int64
}

func validSubject(s string) bool { return s == LimitAccount || s == LimitKey }

// SetLimit creates or changes the rule of (subject, id) and returns it.
// Callers validate values (platform/admin.LimitInput); the table's CHECKs
// refuse negatives anyway.
func (s *Store) SetLimit(ctx context.Context, subject, id string, p LimitPatch) (LimitRule, error) {
	if !validSubject(subject) || id == "" {
		return LimitRule{}, fmt.Errorf("billing: limit: bad subject %q %q", subject, id)
	}
	now := s.now()
	var r LimitRule
	err := s.db.Tx(ctx, func(tx LedgerTx) error {
		cur, found, err := tx.LockLimit(ctx, subject, id)
		if err != nil {
			return err
		}
		r = LimitRule{Subject: subject, ID: id}
		if found {
			r.MaxConcurrent, r.RPM, r.DailyTokens = cur.MaxConcurrent, cur.RPM, cur.DailyTokens
		}
		for _, f := range []struct {
			v   *int64
			dst *int64
		}{{p.MaxConcurrent, &r.MaxConcurrent}, {p.RPM, &r.RPM}, {p.DailyTokens, &r.DailyTokens}} {
			if f.v != nil {
				if *f.v < 0 {
					return errors.New("billing: limit: negative value")
				}
				*f.dst = *f.v
			}
		}
		// The time as the ledger keeps it, so the rule returned equals
		// the one read back.
		r.UpdatedAt = time.UnixMilli(now.UnixMilli()).UTC()
		return tx.PutLimit(ctx, r)
	})
	if err != nil {
		return LimitRule{}, err
	}
	return r, nil
}

// ClearLimit deletes the rule of (subject, id); found=false when there was
// none.
func (s *Store) ClearLimit(ctx context.Context, subject, id string) (found bool, err error) {
	return s.db.DeleteLimit(ctx, subject, id)
}

// GetLimit returns the rule of (subject, id); found=false when there is none.
func (s *Store) GetLimit(ctx context.Context, subject, id string) (LimitRule, bool, error) {
	return s.db.Limit(ctx, subject, id)
}

// ListLimits returns every rule, accounts first, by id. glm serve reads it
// on start and on each limits reload: one small SELECT, never per request.
func (s *Store) ListLimits(ctx context.Context) ([]LimitRule, error) {
	return s.db.Limits(ctx)
}
