package ledger

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// Operator corrections: a package shrunk or revoked, and the audit log
// every correction writes in its own transaction.

// AdjustPackage is a guarded UPDATE: granted and remaining move together,
// and never below zero remaining.
func (t *txn) AdjustPackage(ctx context.Context, id string, delta int64, expires time.Time) error {
	q := `UPDATE billing_packages SET tokens_granted = tokens_granted + $1, tokens_remaining = tokens_remaining + $2`
	args := []any{delta, delta}
	if !expires.IsZero() {
		q += `, expires_at = $3 WHERE id = $4 AND tokens_remaining + $5 >= 0`
		args = append(args, ms(expires), id, delta)
	} else {
		q += ` WHERE id = $3 AND tokens_remaining + $4 >= 0`
		args = append(args, id, delta)
	}
	res, err := t.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("billing: adjust package: %w", err)
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("billing: adjust package %s: %w", id, store.ErrConflict)
	}
	return nil
}

// LockPackage implements billing.LedgerTx.
func (t *txn) LockPackage(ctx context.Context, id string) (billing.Package, bool, error) {
	p := billing.Package{ID: id}
	var models string
	var eff, exp int64
	err := t.tx.QueryRowContext(ctx, `SELECT account_id, name, models, tokens_granted, tokens_remaining, effective_at, expires_at FROM billing_packages WHERE id = $1`+t.forUpdate, id).
		Scan(&p.AccountID, &p.Name, &models, &p.TokensGranted, &p.Unleased, &eff, &exp)
	if store.IsNoRows(err) {
		return billing.Package{}, false, nil
	}
	if err != nil {
		return billing.Package{}, false, fmt.Errorf("billing: lock package: %w", err)
	}
	p.Models, p.EffectiveAt, p.ExpiresAt = splitModels(models), fromMS(eff), fromMS(exp)
	return p, true, nil
}

// InsertAudit implements billing.LedgerTx.
func (t *txn) InsertAudit(ctx context.Context, e billing.AuditEntry) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO audit_log (id, created_at, actor, action, account_id, subject, before_state, after_state, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.ID, ms(e.At), e.Actor, e.Action, e.AccountID, e.Subject, e.Before, e.After, e.Reason)
	if err != nil {
		return fmt.Errorf("billing: audit log: %w", err)
	}
	return nil
}

// AuditLog implements billing.Ledger.
func (l *DB) AuditLog(ctx context.Context, account string, limit int) ([]billing.AuditEntry, error) {
	var args []any
	q := `SELECT id, created_at, actor, action, account_id, subject, before_state, after_state, reason FROM audit_log`
	if account != "" {
		q += ` WHERE account_id = ` + store.Arg(&args, account)
	}
	q += ` ORDER BY created_at DESC, id DESC`
	if limit > 0 {
		q += ` LIMIT ` + store.Arg(&args, limit)
	}
	rows, err := l.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: audit log: %w", err)
	}
	defer rows.Close()
	var out []billing.AuditEntry
	for rows.Next() {
		var e billing.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.AccountID, &e.Subject, &e.Before, &e.After, &e.Reason); err != nil {
			return nil, fmt.Errorf("billing: audit log: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// lockPrice reads and locks a model's price row; found=false without one.
func (t *txn) lockPrice(ctx context.Context, model string) (billing.Price, bool, error) {
	p := billing.Price{Model: model}
	var in, ci, o, pc, im int64
	err := t.tx.QueryRowContext(ctx, `SELECT input_micros, cached_input_micros, output_micros, per_call_micros, image_micros FROM billing_prices WHERE model = $1`+t.forUpdate, model).Scan(&in, &ci, &o, &pc, &im)
	if store.IsNoRows(err) {
		return billing.Price{}, false, nil
	}
	if err != nil {
		return billing.Price{}, false, fmt.Errorf("billing: price %s: %w", model, err)
	}
	p.Input, p.CachedInput, p.Output, p.PerCall, p.Image = billing.Micros(in), billing.Micros(ci), billing.Micros(o), billing.Micros(pc), billing.Micros(im)
	return p, true, nil
}

// DeletePrice implements billing.LedgerTx.
func (t *txn) DeletePrice(ctx context.Context, model string) (billing.Price, bool, error) {
	p, found, err := t.lockPrice(ctx, model)
	if err != nil || !found {
		return billing.Price{}, false, err
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM billing_prices WHERE model = $1`, model); err != nil {
		return billing.Price{}, false, fmt.Errorf("billing: delete price: %w", err)
	}
	return p, true, nil
}

// ReplacePrice implements billing.LedgerTx.
func (t *txn) ReplacePrice(ctx context.Context, p billing.Price, now time.Time) (billing.Price, bool, error) {
	before, found, err := t.lockPrice(ctx, p.Model)
	if err != nil {
		return billing.Price{}, false, err
	}
	return before, found, putPrice(ctx, t.tx, p, now)
}

// PackageExpiries implements billing.LedgerTx, in chunks of extendChunk
// ids.
func (t *txn) PackageExpiries(ctx context.Context, ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	for i := 0; i < len(ids); i += extendChunk {
		chunk := ids[i:min(i+extendChunk, len(ids))]
		var args []any
		ph := make([]string, len(chunk))
		for j, id := range chunk {
			ph[j] = store.Arg(&args, id)
		}
		rows, err := t.tx.QueryContext(ctx, `SELECT id, expires_at FROM billing_packages WHERE id IN (`+strings.Join(ph, ", ")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("billing: package expiries: %w", err)
		}
		for rows.Next() {
			var id string
			var exp int64
			if err := rows.Scan(&id, &exp); err != nil {
				rows.Close()
				return nil, fmt.Errorf("billing: package expiries: %w", err)
			}
			out[id] = fromMS(exp)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("billing: package expiries: %w", err)
		}
	}
	return out, nil
}
