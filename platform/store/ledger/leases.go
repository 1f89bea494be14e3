package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// Leases: credit a process holds in memory, moved out of a wallet or
// package and back.

func (t *txn) InsertLease(ctx context.Context, l billing.LeaseRow) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO billing_leases (id, holder, account_id, source, granted, spent, uncollected, state, created_at, expires_at, closed_at, returned, close_note) VALUES ($1, $2, $3, $4, $5, 0, 0, 'active', $6, $7, 0, 0, '')`,
		l.ID, l.Holder, l.AccountID, l.Source, l.Granted, ms(l.CreatedAt), ms(l.ExpiresAt))
	if err != nil {
		return fmt.Errorf("billing: insert lease: %w", err)
	}
	return nil
}

func (t *txn) LockLease(ctx context.Context, id string) (billing.LeaseRow, bool, error) {
	l := billing.LeaseRow{ID: id}
	var exp int64
	err := t.tx.QueryRowContext(ctx, `SELECT source, granted, spent, state, expires_at FROM billing_leases WHERE id = $1`+t.forUpdate, id).Scan(&l.Source, &l.Granted, &l.Spent, &l.State, &exp)
	if store.IsNoRows(err) {
		return billing.LeaseRow{}, false, nil
	}
	if err != nil {
		return billing.LeaseRow{}, false, fmt.Errorf("billing: read lease: %w", err)
	}
	l.ExpiresAt = fromMS(exp)
	return l, true, nil
}

func (t *txn) LeaseSource(ctx context.Context, id string) (account, source string, err error) {
	if err := t.tx.QueryRowContext(ctx, `SELECT account_id, source FROM billing_leases WHERE id = $1`, id).Scan(&account, &source); err != nil {
		return "", "", fmt.Errorf("billing: orphan lease %s: %w", id, err)
	}
	return account, source, nil
}

func (t *txn) CloseLease(ctx context.Context, id string, returned int64, note string, now time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE billing_leases SET state = 'closed', closed_at = $1, returned = $2, close_note = $3 WHERE id = $4`, ms(now), returned, note, id); err != nil {
		return fmt.Errorf("billing: close lease: %w", err)
	}
	return nil
}

// LockHolderLeases locks in id order, the order the flush and the lease
// closing lock leases in: a bare multi-row UPDATE locks in scan order and
// deadlocked with a concurrent flush on PostgreSQL.
func (t *txn) LockHolderLeases(ctx context.Context, holder string) ([]string, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id FROM billing_leases WHERE holder = $1 AND state = 'active' ORDER BY id`+t.forUpdate, holder)
	if err != nil {
		return nil, fmt.Errorf("billing: renew leases: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("billing: renew leases: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: renew leases: %w", err)
	}
	return ids, nil
}

// extendChunk bounds the ids of one UPDATE, well under either engine's
// limit on bound parameters.
const extendChunk = 200

func (t *txn) ExtendLeases(ctx context.Context, ids []string, until time.Time) error {
	for i := 0; i < len(ids); i += extendChunk {
		part := ids[i:min(i+extendChunk, len(ids))]
		args := make([]any, 0, len(part)+1)
		args = append(args, ms(until))
		for _, id := range part {
			args = append(args, id)
		}
		q := `UPDATE billing_leases SET expires_at = $1 WHERE state = 'active' AND id IN (` + t.dialect.Placeholders(2, len(part)) + `)`
		if _, err := t.tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("billing: renew leases: %w", err)
		}
	}
	return nil
}

func (t *txn) AddLeaseSpent(ctx context.Context, id string, n int64) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE billing_leases SET spent = spent + $1 WHERE id = $2 AND state = 'active'`, n, id)
	if err != nil {
		return false, fmt.Errorf("billing: lease spent: %w", err)
	}
	k, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("billing: lease spent: %w", err)
	}
	return k > 0, nil
}

func (t *txn) ChargeOrphan(ctx context.Context, id string, spent, uncollected int64) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE billing_leases SET spent = spent + $1, uncollected = uncollected + $2 WHERE id = $3`, spent, uncollected, id); err != nil {
		return fmt.Errorf("billing: orphan lease: %w", err)
	}
	return nil
}

// Outstanding implements billing.Ledger.
func (l *DB) Outstanding(ctx context.Context, account string) (map[string]int64, error) {
	return l.outstanding(ctx, account, "")
}

// LeasedElsewhere implements billing.Ledger.
func (l *DB) LeasedElsewhere(ctx context.Context, account, holder string) (map[string]int64, error) {
	return l.outstanding(ctx, account, holder)
}

// outstanding sums granted − spent of active leases per source, of one
// account (or all: ""), leaving out the leases of notHolder (none: "").
func (l *DB) outstanding(ctx context.Context, account, notHolder string) (map[string]int64, error) {
	var args []any
	q := `SELECT source, SUM(granted - spent) FROM billing_leases WHERE state = 'active'`
	if account != "" {
		q += ` AND account_id = ` + store.Arg(&args, account)
	}
	if notHolder != "" {
		q += ` AND holder <> ` + store.Arg(&args, notHolder)
	}
	q += ` GROUP BY source`
	rows, err := l.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: leases: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var src string
		var n int64
		if err := rows.Scan(&src, &n); err != nil {
			return nil, fmt.Errorf("billing: leases: %w", err)
		}
		out[src] = n
	}
	return out, rows.Err()
}

// ExpiredLeases implements billing.Ledger.
func (l *DB) ExpiredLeases(ctx context.Context, at time.Time) ([]billing.LeaseRow, error) {
	rows, err := l.db.SQL.QueryContext(ctx, `SELECT account_id, id FROM billing_leases WHERE state = 'active' AND expires_at <= $1 ORDER BY account_id, id`, ms(at))
	if err != nil {
		return nil, fmt.Errorf("billing: reconcile: %w", err)
	}
	defer rows.Close()
	var out []billing.LeaseRow
	for rows.Next() {
		var r billing.LeaseRow
		if err := rows.Scan(&r.AccountID, &r.ID); err != nil {
			return nil, fmt.Errorf("billing: reconcile: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: reconcile: %w", err)
	}
	return out, nil
}
