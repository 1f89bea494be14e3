package billing

import (
	"context"
	"database/sql"
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
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		r = LimitRule{Subject: subject, ID: id}
		err := tx.QueryRowContext(ctx, `SELECT max_concurrent, rpm, daily_tokens FROM billing_limit_rules WHERE subject = $1 AND id = $2`+s.db.Dialect.ForUpdate,
			subject, id).Scan(&r.MaxConcurrent, &r.RPM, &r.DailyTokens)
		if err != nil && !isNoRows(err) {
			return fmt.Errorf("billing: limit: %w", err)
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
		r.UpdatedAt = fromMS(ms(now))
		_, err = tx.ExecContext(ctx, `INSERT INTO billing_limit_rules (subject, id, max_concurrent, rpm, daily_tokens, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject, id) DO UPDATE SET max_concurrent = excluded.max_concurrent, rpm = excluded.rpm, daily_tokens = excluded.daily_tokens, updated_at = excluded.updated_at`,
			subject, id, r.MaxConcurrent, r.RPM, r.DailyTokens, ms(now))
		if err != nil {
			return fmt.Errorf("billing: set limit: %w", err)
		}
		return nil
	})
	if err != nil {
		return LimitRule{}, err
	}
	return r, nil
}

// ClearLimit deletes the rule of (subject, id); found=false when there was
// none.
func (s *Store) ClearLimit(ctx context.Context, subject, id string) (found bool, err error) {
	res, err := s.db.SQL.ExecContext(ctx, `DELETE FROM billing_limit_rules WHERE subject = $1 AND id = $2`, subject, id)
	if err != nil {
		return false, fmt.Errorf("billing: clear limit: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("billing: clear limit: %w", err)
	}
	return n > 0, nil
}

// GetLimit returns the rule of (subject, id); found=false when there is none.
func (s *Store) GetLimit(ctx context.Context, subject, id string) (LimitRule, bool, error) {
	r := LimitRule{Subject: subject, ID: id}
	var up int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT max_concurrent, rpm, daily_tokens, updated_at FROM billing_limit_rules WHERE subject = $1 AND id = $2`,
		subject, id).Scan(&r.MaxConcurrent, &r.RPM, &r.DailyTokens, &up)
	if isNoRows(err) {
		return LimitRule{}, false, nil
	}
	if err != nil {
		return LimitRule{}, false, fmt.Errorf("billing: limit: %w", err)
	}
	r.UpdatedAt = fromMS(up)
	return r, true, nil
}

// ListLimits returns every rule, accounts first, by id. glm serve reads it
// on start and on each limits reload: one small SELECT, never per request.
func (s *Store) ListLimits(ctx context.Context) ([]LimitRule, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT subject, id, max_concurrent, rpm, daily_tokens, updated_at FROM billing_limit_rules ORDER BY subject, id`)
	if err != nil {
		return nil, fmt.Errorf("billing: list limits: %w", err)
	}
	defer rows.Close()
	var out []LimitRule
	for rows.Next() {
		var r LimitRule
		var up int64
		if err := rows.Scan(&r.Subject, &r.ID, &r.MaxConcurrent, &r.RPM, &r.DailyTokens, &up); err != nil {
			return nil, fmt.Errorf("billing: list limits: %w", err)
		}
		r.UpdatedAt = fromMS(up)
		out = append(out, r)
	}
	return out, rows.Err()
}
