package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// Prices and limit rules: the operator's settings.

// Prices implements billing.Ledger.
func (l *DB) Prices(ctx context.Context) ([]billing.Price, error) {
	rows, err := l.db.SQL.QueryContext(ctx, `SELECT model, input_micros, cached_input_micros, output_micros, per_call_micros, image_micros FROM billing_prices ORDER BY model`)
	if err != nil {
		return nil, fmt.Errorf("billing: prices: %w", err)
	}
	defer rows.Close()
	var out []billing.Price
	for rows.Next() {
		var p billing.Price
		var in, ci, o, pc, im int64
		if err := rows.Scan(&p.Model, &in, &ci, &o, &pc, &im); err != nil {
			return nil, fmt.Errorf("billing: prices: %w", err)
		}
		p.Input, p.CachedInput, p.Output, p.PerCall, p.Image = billing.Micros(in), billing.Micros(ci), billing.Micros(o), billing.Micros(pc), billing.Micros(im)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutPrice implements billing.Ledger.
func (l *DB) PutPrice(ctx context.Context, p billing.Price, now time.Time) error {
	return putPrice(ctx, l.db.SQL, p, now)
}

func putPrice(ctx context.Context, q interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, p billing.Price, now time.Time) error {
	_, err := q.ExecContext(ctx, `INSERT INTO billing_prices (model, input_micros, cached_input_micros, output_micros, per_call_micros, image_micros, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (model) DO UPDATE SET input_micros = excluded.input_micros, cached_input_micros = excluded.cached_input_micros, output_micros = excluded.output_micros, per_call_micros = excluded.per_call_micros, image_micros = excluded.image_micros, updated_at = excluded.updated_at`,
		p.Model, int64(p.Input), int64(p.CachedInput), int64(p.Output), int64(p.PerCall), int64(p.Image), ms(now))
	if err != nil {
		return fmt.Errorf("billing: set price: %w", err)
	}
	return nil
}

func (t *txn) LockLimit(ctx context.Context, subject, id string) (billing.LimitRule, bool, error) {
	return limitRow(ctx, t.tx, t.forUpdate, subject, id)
}

func (t *txn) PutLimit(ctx context.Context, r billing.LimitRule) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO billing_limit_rules (subject, id, max_concurrent, rpm, daily_tokens, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject, id) DO UPDATE SET max_concurrent = excluded.max_concurrent, rpm = excluded.rpm, daily_tokens = excluded.daily_tokens, updated_at = excluded.updated_at`,
		r.Subject, r.ID, r.MaxConcurrent, r.RPM, r.DailyTokens, ms(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("billing: set limit: %w", err)
	}
	return nil
}

// Limit implements billing.Ledger.
func (l *DB) Limit(ctx context.Context, subject, id string) (billing.LimitRule, bool, error) {
	return limitRow(ctx, l.db.SQL, "", subject, id)
}

// limitRow reads the rule of (subject, id), with lock appended to the
// SELECT (the dialect's FOR UPDATE inside a transaction, "" outside).
func limitRow(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, lock, subject, id string) (billing.LimitRule, bool, error) {
	r := billing.LimitRule{Subject: subject, ID: id}
	var up int64
	err := q.QueryRowContext(ctx, `SELECT max_concurrent, rpm, daily_tokens, updated_at FROM billing_limit_rules WHERE subject = $1 AND id = $2`+lock,
		subject, id).Scan(&r.MaxConcurrent, &r.RPM, &r.DailyTokens, &up)
	if store.IsNoRows(err) {
		return billing.LimitRule{}, false, nil
	}
	if err != nil {
		return billing.LimitRule{}, false, fmt.Errorf("billing: limit: %w", err)
	}
	r.UpdatedAt = fromMS(up)
	return r, true, nil
}

// Limits implements billing.Ledger.
func (l *DB) Limits(ctx context.Context) ([]billing.LimitRule, error) {
	rows, err := l.db.SQL.QueryContext(ctx, `SELECT subject, id, max_concurrent, rpm, daily_tokens, updated_at FROM billing_limit_rules ORDER BY subject, id`)
	if err != nil {
		return nil, fmt.Errorf("billing: list limits: %w", err)
	}
	defer rows.Close()
	var out []billing.LimitRule
	for rows.Next() {
		var r billing.LimitRule
		var up int64
		if err := rows.Scan(&r.Subject, &r.ID, &r.MaxConcurrent, &r.RPM, &r.DailyTokens, &up); err != nil {
			return nil, fmt.Errorf("billing: list limits: %w", err)
		}
		r.UpdatedAt = fromMS(up)
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteLimit implements billing.Ledger.
func (l *DB) DeleteLimit(ctx context.Context, subject, id string) (bool, error) {
	res, err := l.db.SQL.ExecContext(ctx, `DELETE FROM billing_limit_rules WHERE subject = $1 AND id = $2`, subject, id)
	if err != nil {
		return false, fmt.Errorf("billing: clear limit: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("billing: clear limit: %w", err)
	}
	return n > 0, nil
}
