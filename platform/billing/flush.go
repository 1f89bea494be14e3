package billing

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Flush writes every waiting usage row. Rows are written in batches, one
// transaction each, together with the spent totals of the leases that paid
// for them, so a lease's spent total in the database is always the sum of
// its usage rows. A row whose request id is already stored is skipped and
// its credit stays with the lease (returned to the pool when the lease
// closes): a request is charged exactly once.
func (e *Engine) Flush(ctx context.Context) error {
	e.flushMu.Lock()
	defer e.flushMu.Unlock()
	for {
		e.pmu.Lock()
		n := min(len(e.pending), e.cfg.FlushBatch)
		if n == 0 {
			e.pmu.Unlock()
			return nil
		}
		batch := make([]*UsageRecord, n)
		copy(batch, e.pending[:n])
		e.pmu.Unlock()
		if err := e.db.writeUsage(ctx, batch, e.cfg.Now()); err != nil {
			return err
		}
		e.pmu.Lock()
		// Only this goroutine removes rows (flushMu), and rows are only
		// appended, so the batch is still the prefix.
		rest := copy(e.pending, e.pending[n:])
		for i := rest; i < len(e.pending); i++ {
			e.pending[i] = nil
		}
		e.pending = e.pending[:rest]
		e.pmu.Unlock()
	}
}

const (
	usageCols = 16 // columns of a billing_usage row
	partCols  = 6  // columns of a billing_usage_parts row
)

func (db ledgerDB) writeUsage(ctx context.Context, recs []*UsageRecord, now time.Time) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		inserted := map[string]bool{}
		const chunk = 100
		for i := 0; i < len(recs); i += chunk {
			part := recs[i:min(i+chunk, len(recs))]
			var b strings.Builder
			b.WriteString(`INSERT INTO billing_usage (request_id, account_id, key_id, model, prompt_tokens, completion_tokens, images, package_tokens, amount_micros, discount_micros, cash_micros, shortfall_micros, outcome, estimated, reserved_at, created_at) VALUES `)
			args := make([]any, 0, len(part)*usageCols)
			for j, r := range part {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(" + params(j*usageCols+1, usageCols) + ")")
				est := 0
				if r.Estimated {
					est = 1
				}
				args = append(args, r.RequestID, r.AccountID, r.KeyID, r.Model, r.PromptTokens, r.CompletionTokens, r.Images,
					r.PackageTokens, int64(r.Amount), int64(r.Discount), int64(r.Cash), int64(r.Shortfall), r.Outcome, est,
					ms(r.ReservedAt), ms(r.CreatedAt))
			}
			b.WriteString(" ON CONFLICT (request_id) DO NOTHING RETURNING request_id")
			rows, err := tx.QueryContext(ctx, b.String(), args...)
			if err != nil {
				return fmt.Errorf("billing: insert usage: %w", err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return fmt.Errorf("billing: insert usage: %w", err)
				}
				inserted[id] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("billing: insert usage: %w", err)
			}
		}
		// Parts and lease totals, for inserted rows only.
		spent := map[string]int64{}
		var pargs []any
		nparts := 0
		flushParts := func() error {
			if nparts == 0 {
				return nil
			}
			var b strings.Builder
			b.WriteString(`INSERT INTO billing_usage_parts (request_id, seq, source, lease_id, tokens, micros) VALUES `)
			for j := 0; j < nparts; j++ {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString("(" + params(j*partCols+1, partCols) + ")")
			}
			q := b.String()
			if _, err := tx.ExecContext(ctx, q, pargs...); err != nil {
				return fmt.Errorf("billing: insert usage parts: %w", err)
			}
			pargs, nparts = pargs[:0], 0
			return nil
		}
		for _, r := range recs {
			if !inserted[r.RequestID] {
				continue
			}
			inserted[r.RequestID] = false // a duplicate inside one batch counts once
			for seq, p := range r.Parts {
				pargs = append(pargs, r.RequestID, seq, p.Source, p.LeaseID, p.Tokens, int64(p.Micros))
				nparts++
				if p.Source == PartCash {
					spent[p.LeaseID] += int64(p.Micros)
				} else {
					spent[p.LeaseID] += p.Tokens
				}
				if nparts == 150 {
					if err := flushParts(); err != nil {
						return err
					}
				}
			}
		}
		if err := flushParts(); err != nil {
			return err
		}
		ids := make([]string, 0, len(spent))
		for id := range spent {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			res, err := tx.ExecContext(ctx, `UPDATE billing_leases SET spent = spent + $1 WHERE id = $2 AND state = 'active'`, spent[id], id)
			if err != nil {
				return fmt.Errorf("billing: lease spent: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				if err := db.orphanDebit(ctx, tx, id, spent[id], now); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// orphanDebit charges usage against a lease that was already closed — its
// holder lost the database for longer than LeaseTTL, another process
// reconciled the lease and returned its credit, and then the holder's
// usage rows arrived. The amount is taken from the source directly, up to
// what the source has (never negative); what it cannot cover is recorded
// as the lease's uncollected amount for the operator.
func (db ledgerDB) orphanDebit(ctx context.Context, tx *sql.Tx, leaseID string, amount int64, now time.Time) error {
	var acct, src string
	if err := tx.QueryRowContext(ctx, `SELECT account_id, source FROM billing_leases WHERE id = $1`, leaseID).Scan(&acct, &src); err != nil {
		return fmt.Errorf("billing: orphan lease %s: %w", leaseID, err)
	}
	var have int64
	var err error
	if src == cashSource(acct) {
		err = tx.QueryRowContext(ctx, `SELECT cash_micros FROM billing_wallets WHERE account_id = $1`+db.Dialect.ForUpdate, acct).Scan(&have)
	} else {
		err = tx.QueryRowContext(ctx, `SELECT tokens_remaining FROM billing_packages WHERE id = $1`+db.Dialect.ForUpdate, src).Scan(&have)
	}
	if err != nil && !isNoRows(err) {
		return fmt.Errorf("billing: orphan source: %w", err)
	}
	take := min(have, amount)
	if take > 0 {
		if src == cashSource(acct) {
			_, err = tx.ExecContext(ctx, `UPDATE billing_wallets SET cash_micros = cash_micros - $1, updated_at = $2 WHERE account_id = $3`, take, ms(now), acct)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE billing_packages SET tokens_remaining = tokens_remaining - $1 WHERE id = $2`, take, src)
		}
		if err != nil {
			return fmt.Errorf("billing: orphan debit: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE billing_leases SET spent = spent + $1, uncollected = uncollected + $2 WHERE id = $3`, amount, amount-take, leaseID); err != nil {
		return fmt.Errorf("billing: orphan lease: %w", err)
	}
	return nil
}

// UsageFilter selects usage rows.
type UsageFilter struct {
	AccountID string
	Model     string
	Since     time.Time // inclusive
	Until     time.Time // exclusive; zero = no bound
	Limit     int       // 0 = all
	// WithParts loads each row's parts.
	WithParts bool
}

// ListUsage returns usage rows, oldest first.
func (s *Store) ListUsage(ctx context.Context, f UsageFilter) ([]UsageRecord, error) {
	db := s.db
	q := `SELECT request_id, account_id, key_id, model, prompt_tokens, completion_tokens, images, package_tokens, amount_micros, discount_micros, cash_micros, shortfall_micros, outcome, estimated, reserved_at, created_at FROM billing_usage WHERE 1 = 1`
	var args []any
	if f.AccountID != "" {
		q += ` AND account_id = ` + arg(&args, f.AccountID)
	}
	if f.Model != "" {
		q += ` AND model = ` + arg(&args, f.Model)
	}
	if !f.Since.IsZero() {
		q += ` AND created_at >= ` + arg(&args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		q += ` AND created_at < ` + arg(&args, ms(f.Until))
	}
	q += ` ORDER BY created_at, request_id`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: list usage: %w", err)
	}
	defer rows.Close()
	var out []UsageRecord
	idx := map[string]int{}
	for rows.Next() {
		var r UsageRecord
		var amount, disc, cash, short int64
		var est int
		var ra, ca int64
		if err := rows.Scan(&r.RequestID, &r.AccountID, &r.KeyID, &r.Model, &r.PromptTokens, &r.CompletionTokens, &r.Images,
			&r.PackageTokens, &amount, &disc, &cash, &short, &r.Outcome, &est, &ra, &ca); err != nil {
			return nil, fmt.Errorf("billing: list usage: %w", err)
		}
		r.Amount, r.Discount, r.Cash, r.Shortfall = Micros(amount), Micros(disc), Micros(cash), Micros(short)
		r.Estimated = est != 0
		r.ReservedAt, r.CreatedAt = fromMS(ra), fromMS(ca)
		idx[r.RequestID] = len(out)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: list usage: %w", err)
	}
	if !f.WithParts || len(out) == 0 {
		return out, nil
	}
	pq := `SELECT p.request_id, p.source, p.lease_id, p.tokens, p.micros FROM billing_usage_parts p JOIN billing_usage u ON u.request_id = p.request_id WHERE 1 = 1`
	var pargs []any
	if f.AccountID != "" {
		pq += ` AND u.account_id = ` + arg(&pargs, f.AccountID)
	}
	pq += ` ORDER BY p.request_id, p.seq`
	prow, err := db.SQL.QueryContext(ctx, pq, pargs...)
	if err != nil {
		return nil, fmt.Errorf("billing: usage parts: %w", err)
	}
	defer prow.Close()
	for prow.Next() {
		var id string
		var p Part
		var m int64
		if err := prow.Scan(&id, &p.Source, &p.LeaseID, &p.Tokens, &m); err != nil {
			return nil, fmt.Errorf("billing: usage parts: %w", err)
		}
		p.Micros = Micros(m)
		if i, ok := idx[id]; ok {
			out[i].Parts = append(out[i].Parts, p)
		}
	}
	return out, prow.Err()
}
