package ledger

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/glmkit/glmkit/platform/billing"
)

// Snapshot implements billing.Ledger: every table the audit checks, read
// in one read-only transaction that sees a single committed state (see
// store.Dialect.Snapshot), so engines may keep running meanwhile.
func (l *DB) Snapshot(ctx context.Context, account string) (*billing.LedgerSnapshot, error) {
	tx, err := l.db.SQL.BeginTx(ctx, l.db.Dialect.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("billing: audit: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	where, args := "", []any{}
	if account != "" {
		where, args = " WHERE account_id = $1", []any{account}
	}
	parts := `SELECT p.request_id, p.source, p.lease_id, p.tokens, p.micros FROM billing_usage_parts p JOIN billing_usage u ON u.request_id = p.request_id`
	if account != "" {
		parts += ` WHERE u.account_id = $1`
	}
	s := snapshot{&billing.LedgerSnapshot{Wallets: map[string]int64{}, TopUps: map[string]int64{}}}
	steps := []struct {
		what, q string
		scan    func(*sql.Rows) error
	}{
		{"packages", `SELECT id, account_id, tokens_granted, tokens_remaining FROM billing_packages` + where, s.pkg},
		{"wallets", `SELECT account_id, cash_micros FROM billing_wallets` + where, s.wallet},
		{"top-ups", `SELECT account_id, COALESCE(SUM(micros), 0) FROM billing_credits` + andWhere(where, "kind IN ('topup', 'adjust')") + ` GROUP BY account_id`, s.topUp},
		{"leases", `SELECT id, account_id, source, granted, spent, uncollected, state, returned FROM billing_leases` + where, s.lease},
		{"usage", `SELECT request_id, account_id, amount_micros, discount_micros, cash_micros, shortfall_micros, package_tokens FROM billing_usage` + where, s.usage},
		{"usage parts", parts, s.part},
		// A row's one part stored with the row (migration 0014).
		{"usage one parts", `SELECT request_id, ` + onePartColumns + ` FROM billing_usage` + andWhere(where, "part_source <> ''"), s.part},
	}
	for _, st := range steps {
		if err := scanAll(ctx, tx, st.q, args, st.scan); err != nil {
			return nil, fmt.Errorf("billing: audit %s: %w", st.what, err)
		}
	}
	if err := s.rollUps(ctx, tx, where, args); err != nil {
		return nil, err
	}
	return s.LedgerSnapshot, nil
}

// scanAll runs q and hands each row to scan.
func scanAll(ctx context.Context, tx *sql.Tx, q string, args []any, scan func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// snapshot collects the rows of one Snapshot, one scanner per table.
type snapshot struct{ *billing.LedgerSnapshot }

func (s snapshot) pkg(r *sql.Rows) error {
	var p billing.Package
	if err := r.Scan(&p.ID, &p.AccountID, &p.TokensGranted, &p.Unleased); err != nil {
		return err
	}
	s.Packages = append(s.Packages, p)
	return nil
}

func (s snapshot) wallet(r *sql.Rows) error {
	var acct string
	var c int64
	if err := r.Scan(&acct, &c); err != nil {
		return err
	}
	s.Wallets[acct] = c
	return nil
}

func (s snapshot) topUp(r *sql.Rows) error {
	var acct string
	var m int64
	if err := r.Scan(&acct, &m); err != nil {
		return err
	}
	s.TopUps[acct] = m
	return nil
}

func (s snapshot) lease(r *sql.Rows) error {
	var x billing.LeaseRow
	if err := r.Scan(&x.ID, &x.AccountID, &x.Source, &x.Granted, &x.Spent, &x.Uncollected, &x.State, &x.Returned); err != nil {
		return err
	}
	s.Leases = append(s.Leases, x)
	return nil
}

func (s snapshot) usage(r *sql.Rows) error {
	var u billing.UsageRecord
	var amount, disc, cash, short int64
	if err := r.Scan(&u.RequestID, &u.AccountID, &amount, &disc, &cash, &short, &u.PackageTokens); err != nil {
		return err
	}
	u.Amount, u.Discount, u.Cash, u.Shortfall = billing.Micros(amount), billing.Micros(disc), billing.Micros(cash), billing.Micros(short)
	s.Usage = append(s.Usage, u)
	return nil
}

func (s snapshot) part(r *sql.Rows) error {
	var p billing.UsagePart
	var mic int64
	if err := r.Scan(&p.RequestID, &p.Source, &p.LeaseID, &p.Tokens, &mic); err != nil {
		return err
	}
	p.Micros = billing.Micros(mic)
	s.Parts = append(s.Parts, p)
	return nil
}

func andWhere(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}
