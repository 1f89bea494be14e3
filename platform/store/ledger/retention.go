package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// Retention: old usage rows and their parts leave for their roll-ups
// (billing_usage_daily, billing_usage_parts_rollup; migration 0006).

// idChunk bounds the ids of one IN list, well under either engine's limit
// on bound parameters.
const idChunk = 200

// inList returns the placeholders of ids starting at $start, and ids as
// arguments.
func (t *txn) inList(start int, ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return t.dialect.Placeholders(start, len(ids)), args
}

// AgedUsage implements billing.LedgerTx.
func (t *txn) AgedUsage(ctx context.Context, before time.Time, after billing.UsageCursor, limit int) (billing.AgedUsage, error) {
	out := billing.AgedUsage{LeaseState: map[string]string{}, PackageAccount: map[string]string{}}
	// The cursor is written as a range on created_at plus a filter, not as
	// (created_at > c OR (created_at = c AND request_id > r)): given that
	// OR, SQLite plans two index searches and sorts the whole remaining
	// range on every batch, which made a roll-up quadratic in its rows.
	rows, err := t.tx.QueryContext(ctx, `SELECT `+usageColumns+` FROM billing_usage WHERE created_at < $1
		AND created_at >= $2 AND (created_at > $3 OR request_id > $4) ORDER BY created_at, request_id LIMIT $5`+t.forUpdate,
		ms(before), ms(after.CreatedAt), ms(after.CreatedAt), after.RequestID, limit)
	if err != nil {
		return out, fmt.Errorf("billing: aged usage: %w", err)
	}
	idx := map[string]int{}
	for rows.Next() {
		r, err := scanUsage(rows)
		if err != nil {
			rows.Close()
			return out, fmt.Errorf("billing: aged usage: %w", err)
		}
		idx[r.RequestID] = len(out.Rows)
		out.Rows = append(out.Rows, r)
	}
	if err := rows.Close(); err != nil {
		return out, fmt.Errorf("billing: aged usage: %w", err)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("billing: aged usage: %w", err)
	}
	ids := make([]string, len(out.Rows))
	for i, r := range out.Rows {
		ids[i] = r.RequestID
	}
	for i := 0; i < len(ids); i += idChunk {
		if err := t.agedParts(ctx, ids[i:min(i+idChunk, len(ids))], idx, &out); err != nil {
			return out, fmt.Errorf("billing: aged usage parts: %w", err)
		}
	}
	return out, nil
}

// agedParts adds the parts of the rows ids to out, with their leases'
// states and their packages' accounts.
func (t *txn) agedParts(ctx context.Context, ids []string, idx map[string]int, out *billing.AgedUsage) error {
	in, args := t.inList(1, ids)
	in2, args2 := t.inList(len(ids)+1, ids) // the list again: SQLite's ?s do not repeat
	args = append(args, args2...)
	// Parts rows, and the one parts stored with their rows (migration
	// 0014); a row has one or the other, never both.
	rows, err := t.tx.QueryContext(ctx, `SELECT p.request_id, p.seq, p.source, p.lease_id, p.tokens, p.micros, l.state, k.account_id
		FROM billing_usage_parts p LEFT JOIN billing_leases l ON l.id = p.lease_id LEFT JOIN billing_packages k ON k.id = p.source
		WHERE p.request_id IN (`+in+`)
		UNION ALL
		SELECT u.request_id, 0, u.part_source, u.part_lease_id, u.part_tokens, u.part_micros, l.state, k.account_id
		FROM billing_usage u LEFT JOIN billing_leases l ON l.id = u.part_lease_id LEFT JOIN billing_packages k ON k.id = u.part_source
		WHERE u.request_id IN (`+in2+`) AND u.part_source <> ''
		ORDER BY 1, 2`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var seq int
		var p billing.Part
		var m int64
		var state, pkgAcct sql.NullString
		if err := rows.Scan(&id, &seq, &p.Source, &p.LeaseID, &p.Tokens, &m, &state, &pkgAcct); err != nil {
			return err
		}
		p.Micros = billing.Micros(m)
		r := &out.Rows[idx[id]]
		r.Parts = append(r.Parts, p)
		if state.Valid {
			out.LeaseState[p.LeaseID] = state.String
		}
		if pkgAcct.Valid {
			out.PackageAccount[p.Source] = pkgAcct.String
		}
	}
	return rows.Err()
}

// RollUpUsage implements billing.LedgerTx.
func (t *txn) RollUpUsage(ctx context.Context, ids []string, days []billing.UsageDay, parts []billing.PartsRollup) error {
	var deleted int64
	for i := 0; i < len(ids); i += idChunk {
		in, args := t.inList(1, ids[i:min(i+idChunk, len(ids))])
		if _, err := t.tx.ExecContext(ctx, `DELETE FROM billing_usage_parts WHERE request_id IN (`+in+`)`, args...); err != nil {
			return fmt.Errorf("billing: roll up usage parts: %w", err)
		}
		res, err := t.tx.ExecContext(ctx, `DELETE FROM billing_usage WHERE request_id IN (`+in+`)`, args...)
		if err != nil {
			return fmt.Errorf("billing: roll up usage: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("billing: roll up usage: %w", err)
		}
		deleted += n
	}
	if deleted != int64(len(ids)) {
		return fmt.Errorf("billing: roll up usage: deleted %d of %d rows: %w", deleted, len(ids), store.ErrConflict)
	}
	if err := t.addDays(ctx, days); err != nil {
		return fmt.Errorf("billing: roll up usage: %w", err)
	}
	if err := t.addPartsRollups(ctx, parts); err != nil {
		return fmt.Errorf("billing: roll up usage parts: %w", err)
	}
	return nil
}

func (t *txn) addDays(ctx context.Context, days []billing.UsageDay) error {
	if len(days) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO billing_usage_daily (`+dayColumns+`) VALUES (`+
		t.dialect.Placeholders(1, dayCols)+`)
		ON CONFLICT (day, account_id, key_id, model, outcome) DO UPDATE SET `+addColumns("billing_usage_daily",
		"requests", "estimated", "prompt_tokens", "completion_tokens", "images", "package_tokens", "amount_micros",
		"discount_micros", "cash_micros", "shortfall_micros", "cached_tokens", "reasoning_tokens", "calls",
		"batch_requests", "input_nanos", "cached_input_nanos", "output_nanos", "per_call_nanos", "image_nanos",
		"unsplit_nanos"))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, d := range days {
		if _, err := stmt.ExecContext(ctx, d.Day, d.AccountID, d.KeyID, d.Model, d.Outcome, d.Requests, d.Estimated,
			d.PromptTokens, d.CompletionTokens, d.Images, d.PackageTokens, int64(d.Amount), int64(d.Discount),
			int64(d.Cash), int64(d.Shortfall), d.CachedTokens, d.ReasoningTokens, d.Calls, d.BatchRequests,
			int64(d.Tiers.Input), int64(d.Tiers.CachedInput), int64(d.Tiers.Output), int64(d.Tiers.PerCall),
			int64(d.Tiers.Image), int64(d.Tiers.Unsplit)); err != nil {
			return err
		}
	}
	return nil
}

func (t *txn) addPartsRollups(ctx context.Context, parts []billing.PartsRollup) error {
	if len(parts) == 0 {
		return nil
	}
	stmt, err := t.tx.PrepareContext(ctx, `INSERT INTO billing_usage_parts_rollup (lease_id, account_id, source, parts, tokens,
		micros) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (lease_id, account_id, source) DO UPDATE SET `+
		addColumns("billing_usage_parts_rollup", "parts", "tokens", "micros"))
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, p := range parts {
		if _, err := stmt.ExecContext(ctx, p.LeaseID, p.AccountID, p.Source, p.Parts, p.Tokens, int64(p.Micros)); err != nil {
			return err
		}
	}
	return nil
}

// addColumns is the SET list of an upsert that adds the new row's figures
// to the stored ones.
func addColumns(table string, cols ...string) string {
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = " + table + "." + c + " + excluded." + c
	}
	return strings.Join(set, ", ")
}

// UsageWithDays implements billing.Ledger.
func (l *DB) UsageWithDays(ctx context.Context, f billing.UsageFilter, r billing.DayRange) ([]billing.UsageRecord, []billing.UsageDay, error) {
	tx, err := l.db.SQL.BeginTx(ctx, l.db.Dialect.Snapshot)
	if err != nil {
		return nil, nil, fmt.Errorf("billing: usage: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	f.WithParts = false
	rows, err := usageRows(ctx, tx, f)
	if err != nil {
		return nil, nil, err
	}
	q := `SELECT ` + dayColumns + ` FROM billing_usage_daily WHERE 1 = 1`
	var args []any
	if f.AccountID != "" {
		q += ` AND account_id = ` + store.Arg(&args, f.AccountID)
	}
	if f.Model != "" {
		q += ` AND model = ` + store.Arg(&args, f.Model)
	}
	if r.From != "" {
		q += ` AND day >= ` + store.Arg(&args, r.From)
	}
	if r.To != "" {
		q += ` AND day < ` + store.Arg(&args, r.To)
	}
	q += ` ORDER BY day, account_id, key_id, model, outcome`
	var days []billing.UsageDay
	err = scanAll(ctx, tx, q, args, func(rs *sql.Rows) error {
		d, err := scanDay(rs)
		days = append(days, d)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("billing: usage days: %w", err)
	}
	return rows, days, nil
}

// dayColumns are the columns scanDay reads, in its order.
const dayColumns = `day, account_id, key_id, model, outcome, requests, estimated, prompt_tokens, completion_tokens, images,
	package_tokens, amount_micros, discount_micros, cash_micros, shortfall_micros, cached_tokens, reasoning_tokens, calls,
	batch_requests, input_nanos, cached_input_nanos, output_nanos, per_call_nanos, image_nanos, unsplit_nanos`

// dayCols is the number of dayColumns.
const dayCols = 25

func scanDay(rs *sql.Rows) (billing.UsageDay, error) {
	var d billing.UsageDay
	var amount, disc, cash, short int64
	t := &d.Tiers
	err := rs.Scan(&d.Day, &d.AccountID, &d.KeyID, &d.Model, &d.Outcome, &d.Requests, &d.Estimated, &d.PromptTokens,
		&d.CompletionTokens, &d.Images, &d.PackageTokens, &amount, &disc, &cash, &short, &d.CachedTokens,
		&d.ReasoningTokens, &d.Calls, &d.BatchRequests, &t.Input, &t.CachedInput, &t.Output, &t.PerCall, &t.Image, &t.Unsplit)
	d.Amount, d.Discount, d.Cash, d.Shortfall = billing.Micros(amount), billing.Micros(disc), billing.Micros(cash), billing.Micros(short)
	return d, err
}

// rollUps reads the roll-ups the audit checks, inside Snapshot's
// transaction.
func (s snapshot) rollUps(ctx context.Context, tx *sql.Tx, where string, args []any) error {
	if err := scanAll(ctx, tx, `SELECT `+dayColumns+` FROM billing_usage_daily`+where, args, func(rs *sql.Rows) error {
		d, err := scanDay(rs)
		s.UsageDays = append(s.UsageDays, d)
		return err
	}); err != nil {
		return fmt.Errorf("billing: audit usage days: %w", err)
	}
	if err := scanAll(ctx, tx, `SELECT lease_id, account_id, source, parts, tokens, micros FROM billing_usage_parts_rollup`+where, args,
		func(rs *sql.Rows) error {
			var p billing.PartsRollup
			var m int64
			err := rs.Scan(&p.LeaseID, &p.AccountID, &p.Source, &p.Parts, &p.Tokens, &m)
			p.Micros = billing.Micros(m)
			s.PartsRollups = append(s.PartsRollups, p)
			return err
		}); err != nil {
		return fmt.Errorf("billing: audit usage parts roll-ups: %w", err)
	}
	return nil
}
