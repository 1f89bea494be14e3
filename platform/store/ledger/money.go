package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// Wallets, packages and credits: where an account's money rests when no
// process holds it.

func (t *txn) EnsureWallet(ctx context.Context, account string, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO billing_wallets (account_id, cash_micros, updated_at) VALUES ($1, 0, $2) ON CONFLICT (account_id) DO NOTHING`, account, ms(now))
	if err != nil {
		return fmt.Errorf("billing: wallet: %w", err)
	}
	return nil
}

func (t *txn) LockWallet(ctx context.Context, account string) (int64, error) {
	var cash int64
	err := t.tx.QueryRowContext(ctx, `SELECT cash_micros FROM billing_wallets WHERE account_id = $1`+t.forUpdate, account).Scan(&cash)
	if err != nil && !store.IsNoRows(err) {
		return 0, fmt.Errorf("billing: lock wallet: %w", err)
	}
	return cash, nil
}

func (t *txn) AddCash(ctx context.Context, account string, amount int64, now time.Time) error {
	if _, err := t.tx.ExecContext(ctx, `INSERT INTO billing_wallets (account_id, cash_micros, updated_at) VALUES ($1, $2, $3) ON CONFLICT (account_id) DO UPDATE SET cash_micros = billing_wallets.cash_micros + excluded.cash_micros, updated_at = excluded.updated_at`,
		account, amount, ms(now)); err != nil {
		return fmt.Errorf("billing: topup: %w", err)
	}
	return nil
}

// TakeCash is a guarded UPDATE: with the CHECK (cash_micros >= 0) it makes
// overspend impossible whatever the caller computed.
func (t *txn) TakeCash(ctx context.Context, account string, n int64, now time.Time) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE billing_wallets SET cash_micros = cash_micros - $1, updated_at = $2 WHERE account_id = $3 AND cash_micros >= $4`, n, ms(now), account, n)
	if err != nil {
		return fmt.Errorf("billing: lease cash: %w", err)
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("billing: lease cash %s: %w", account, store.ErrConflict)
	}
	return nil
}

func (t *txn) ReturnCash(ctx context.Context, account string, n int64) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE billing_wallets SET cash_micros = cash_micros + $1 WHERE account_id = $2`, n, account); err != nil {
		return fmt.Errorf("billing: return lease: %w", err)
	}
	return nil
}

func (t *txn) InsertPackage(ctx context.Context, p billing.Package, now time.Time, once bool) (bool, error) {
	ins := `INSERT INTO billing_packages (id, account_id, name, kind, models, tokens_granted, tokens_remaining, purchased_at, effective_at, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	if once {
		ins += ` ON CONFLICT (id) DO NOTHING`
	}
	r, err := t.tx.ExecContext(ctx, ins,
		p.ID, p.AccountID, p.Name, p.Kind, joinModels(p.Models), p.TokensGranted, p.TokensGranted,
		ms(p.PurchasedAt), ms(p.EffectiveAt), ms(p.ExpiresAt), ms(now))
	if err != nil {
		return false, fmt.Errorf("billing: insert package: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("billing: insert package: %w", err)
	}
	return n > 0, nil
}

func (t *txn) EligiblePackages(ctx context.Context, account string, at time.Time) ([]billing.Package, error) {
	rows, err := t.tx.QueryContext(ctx, `SELECT id, models, tokens_remaining, effective_at, expires_at FROM billing_packages WHERE account_id = $1 AND tokens_remaining > 0 AND effective_at <= $2 AND expires_at > $3 ORDER BY expires_at, id`+t.forUpdate, account, ms(at), ms(at))
	if err != nil {
		return nil, fmt.Errorf("billing: packages: %w", err)
	}
	defer rows.Close()
	var out []billing.Package
	for rows.Next() {
		p := billing.Package{AccountID: account}
		var models string
		var ea, xa int64
		if err := rows.Scan(&p.ID, &models, &p.Unleased, &ea, &xa); err != nil {
			return nil, fmt.Errorf("billing: packages: %w", err)
		}
		p.Models = splitModels(models)
		p.EffectiveAt, p.ExpiresAt = fromMS(ea), fromMS(xa)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: packages: %w", err)
	}
	return out, nil
}

func (t *txn) LockPackageTokens(ctx context.Context, id string) (int64, error) {
	var have int64
	err := t.tx.QueryRowContext(ctx, `SELECT tokens_remaining FROM billing_packages WHERE id = $1`+t.forUpdate, id).Scan(&have)
	if err != nil && !store.IsNoRows(err) {
		return 0, fmt.Errorf("billing: lock package: %w", err)
	}
	return have, nil
}

// TakePackageTokens is a guarded UPDATE, as TakeCash.
func (t *txn) TakePackageTokens(ctx context.Context, id string, n int64) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE billing_packages SET tokens_remaining = tokens_remaining - $1 WHERE id = $2 AND tokens_remaining >= $3`, n, id, n)
	if err != nil {
		return fmt.Errorf("billing: lease package: %w", err)
	}
	if k, _ := res.RowsAffected(); k != 1 {
		return fmt.Errorf("billing: lease package %s: %w", id, store.ErrConflict)
	}
	return nil
}

func (t *txn) ReturnPackageTokens(ctx context.Context, id string, n int64) error {
	if _, err := t.tx.ExecContext(ctx, `UPDATE billing_packages SET tokens_remaining = tokens_remaining + $1 WHERE id = $2`, n, id); err != nil {
		return fmt.Errorf("billing: return lease: %w", err)
	}
	return nil
}

func (t *txn) InsertCredit(ctx context.Context, c billing.Credit) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO billing_credits (id, account_id, kind, micros, tokens, ref, note, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		c.ID, c.AccountID, c.Kind, c.Micros, c.Tokens, c.Ref, c.Note, ms(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("billing: credit row: %w", err)
	}
	return nil
}

// Cash implements billing.Ledger.
func (l *DB) Cash(ctx context.Context, account string) (int64, error) {
	var cash int64
	err := l.db.SQL.QueryRowContext(ctx, `SELECT cash_micros FROM billing_wallets WHERE account_id = $1`, account).Scan(&cash)
	if err != nil && !store.IsNoRows(err) {
		return 0, fmt.Errorf("billing: balance: %w", err)
	}
	return cash, nil
}

// Packages implements billing.Ledger.
func (l *DB) Packages(ctx context.Context, account string) ([]billing.Package, error) {
	q := `SELECT id, account_id, name, kind, models, tokens_granted, tokens_remaining, purchased_at, effective_at, expires_at FROM billing_packages`
	var args []any
	if account != "" {
		q += ` WHERE account_id = ` + store.Arg(&args, account)
	}
	q += ` ORDER BY account_id, expires_at, id`
	rows, err := l.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: list packages: %w", err)
	}
	defer rows.Close()
	var out []billing.Package
	for rows.Next() {
		var p billing.Package
		var models string
		var pa, ea, xa int64
		if err := rows.Scan(&p.ID, &p.AccountID, &p.Name, &p.Kind, &models, &p.TokensGranted, &p.Unleased, &pa, &ea, &xa); err != nil {
			return nil, fmt.Errorf("billing: list packages: %w", err)
		}
		p.Models = splitModels(models)
		p.PurchasedAt, p.EffectiveAt, p.ExpiresAt = fromMS(pa), fromMS(ea), fromMS(xa)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: list packages: %w", err)
	}
	return out, nil
}
