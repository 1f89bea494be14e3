package billing

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
)

// The ledger invariant (notes/metering.md "Ledger audit"). Every money
// transaction of the engine keeps it, so it holds at every committed state
// of the database — with engines running, after a crash, after Close:
//
//	for each package P:   granted(P) − remaining(P) = charged(P) − uncollected(P) + leased(P)
//	for each wallet W:    top-ups(W) − cash(W)      = charged(W) − uncollected(W) + leased(W)
//
// where charged is what usage parts say the source paid (tokens for a
// package, micros for cash), uncollected is what late rows of reclaimed
// leases could not take (orphanDebit), and leased is granted − spent of the
// source's active leases. Lease take (remaining −, lease +), flush (rows +,
// spent +, in one transaction), return (remaining +, lease closed) and
// orphan debit (remaining −, spent +, uncollected +) each move both sides by
// the same amount. Audit recomputes both sides from the tables, so a
// discrepancy means money was lost or counted twice — never a timing effect.

// SourceAudit is one payer's side of the ledger: a package (tokens) or an
// account's cash (micros).
type SourceAudit struct {
	Account string
	Source  string // package id, or "cash"
	// Granted is the package's tokens_granted, or the sum of the account's
	// top-ups.
	Granted int64
	// Remaining is what the database holds unleased.
	Remaining int64
	// Charged is what the usage parts say this source paid.
	Charged int64
	// Uncollected is what late rows of reclaimed leases could not take.
	Uncollected int64
	// Leased is granted − spent of the source's active leases.
	Leased int64
}

// Balanced reports whether the source's ledger holds.
func (s SourceAudit) Balanced() bool {
	return s.Granted-s.Remaining == s.Charged-s.Uncollected+s.Leased
}

// Audit is the result of Store.Audit.
type Audit struct {
	Sources []SourceAudit
	// OpenLeases counts active leases (0 once every engine has closed).
	OpenLeases int
	// Problems lists every broken rule, human-readable; empty = exact.
	Problems []string
}

// Err returns the problems as an error, or nil when the ledger is exact.
func (a *Audit) Err() error {
	if len(a.Problems) == 0 {
		return nil
	}
	return fmt.Errorf("billing: ledger audit: %d problem(s): %v", len(a.Problems), a.Problems)
}

// Leased is the credit all active leases hold and have not spent.
func (a *Audit) Leased() int64 {
	var n int64
	for _, s := range a.Sources {
		n += s.Leased
	}
	return n
}

func (a *Audit) fail(format string, args ...any) {
	a.Problems = append(a.Problems, fmt.Sprintf(format, args...))
}

// Audit checks the ledger invariant for account (every account when "")
// from one consistent snapshot of the database, plus the rules that tie it
// together: every usage row's amount = discount + cash + shortfall and its
// parts sum to it; every lease's spent = the sum of the parts that name it;
// no balance or lease is negative; a closed lease returned at most what it
// was granted. It reads only; engines may run meanwhile.
func (s *Store) Audit(ctx context.Context, account string) (*Audit, error) {
	db := s.db
	// One snapshot of every table (see store.Dialect.Snapshot).
	tx, err := db.SQL.BeginTx(ctx, db.Dialect.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("billing: audit: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	a := &Audit{}
	where, args := "", []any{}
	if account != "" {
		where, args = " WHERE account_id = $1", []any{account}
	}
	type key struct{ acct, src string }
	srcs := map[key]*SourceAudit{}
	get := func(acct, src string) *SourceAudit {
		k := key{acct, src}
		if srcs[k] == nil {
			srcs[k] = &SourceAudit{Account: acct, Source: src}
		}
		return srcs[k]
	}
	// query runs q and scans each row with scan.
	query := func(what, q string, qargs []any, scan func(*sql.Rows) error) error {
		rows, err := tx.QueryContext(ctx, q, qargs...)
		if err != nil {
			return fmt.Errorf("billing: audit %s: %w", what, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return fmt.Errorf("billing: audit %s: %w", what, err)
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("billing: audit %s: %w", what, err)
		}
		return nil
	}
	pkgAcct := map[string]string{}
	err = query("packages", `SELECT id, account_id, tokens_granted, tokens_remaining FROM billing_packages`+where, args, func(r *sql.Rows) error {
		var id, acct string
		var g, rem int64
		if err := r.Scan(&id, &acct, &g, &rem); err != nil {
			return err
		}
		pkgAcct[id] = acct
		sa := get(acct, id)
		sa.Granted, sa.Remaining = g, rem
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = query("wallets", `SELECT account_id, cash_micros FROM billing_wallets`+where, args, func(r *sql.Rows) error {
		var acct string
		var c int64
		if err := r.Scan(&acct, &c); err != nil {
			return err
		}
		get(acct, PartCash).Remaining = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = query("top-ups", `SELECT account_id, COALESCE(SUM(micros), 0) FROM billing_credits`+andWhere(where, "kind = 'topup'")+` GROUP BY account_id`, args, func(r *sql.Rows) error {
		var acct string
		var m int64
		if err := r.Scan(&acct, &m); err != nil {
			return err
		}
		get(acct, PartCash).Granted = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Leases: per source, and spent per lease to compare with the parts.
	type leaseRow struct {
		acct, src, state                   string
		granted, spent, uncollected, retnd int64
	}
	leases := map[string]*leaseRow{}
	err = query("leases", `SELECT id, account_id, source, granted, spent, uncollected, state, returned FROM billing_leases`+where, args, func(r *sql.Rows) error {
		l := &leaseRow{}
		var id string
		if err := r.Scan(&id, &l.acct, &l.src, &l.granted, &l.spent, &l.uncollected, &l.state, &l.retnd); err != nil {
			return err
		}
		leases[id] = l
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, l := range leases {
		src := l.src
		if src == cashSource(l.acct) {
			src = PartCash
		}
		sa := get(l.acct, src)
		sa.Uncollected += l.uncollected
		if l.granted < 0 || l.spent < 0 || l.uncollected < 0 || l.uncollected > l.spent {
			a.fail("lease %s: granted %d spent %d uncollected %d", id, l.granted, l.spent, l.uncollected)
		}
		switch l.state {
		case "active":
			a.OpenLeases++
			sa.Leased += l.granted - l.spent
			if l.spent > l.granted {
				a.fail("lease %s: active with spent %d > granted %d", id, l.spent, l.granted)
			}
		case "closed":
			if l.retnd < 0 || l.retnd > l.granted {
				a.fail("lease %s: closed returning %d of %d granted", id, l.retnd, l.granted)
			}
		default:
			a.fail("lease %s: unknown state %q", id, l.state)
		}
	}
	// Usage rows and their parts.
	type rowSum struct {
		acct                               string
		amount, disc, cash, short, pkgToks int64
		pCash, pDisc, pToks                int64
	}
	usage := map[string]*rowSum{}
	err = query("usage", `SELECT request_id, account_id, amount_micros, discount_micros, cash_micros, shortfall_micros, package_tokens FROM billing_usage`+where, args, func(r *sql.Rows) error {
		var id string
		u := &rowSum{}
		if err := r.Scan(&id, &u.acct, &u.amount, &u.disc, &u.cash, &u.short, &u.pkgToks); err != nil {
			return err
		}
		usage[id] = u
		return nil
	})
	if err != nil {
		return nil, err
	}
	spentByLease := map[string]int64{}
	pq := `SELECT p.request_id, p.source, p.lease_id, p.tokens, p.micros FROM billing_usage_parts p JOIN billing_usage u ON u.request_id = p.request_id`
	if account != "" {
		pq += ` WHERE u.account_id = $1`
	}
	err = query("usage parts", pq, args, func(r *sql.Rows) error {
		var id, src, lid string
		var toks, mic int64
		if err := r.Scan(&id, &src, &lid, &toks, &mic); err != nil {
			return err
		}
		u := usage[id]
		if u == nil {
			return nil // cannot happen: joined
		}
		if src == PartCash {
			u.pCash += mic
			spentByLease[lid] += mic
			get(u.acct, PartCash).Charged += mic
		} else {
			u.pDisc += mic
			u.pToks += toks
			spentByLease[lid] += toks
			get(u.acct, src).Charged += toks
			if pa, ok := pkgAcct[src]; ok && pa != u.acct {
				a.fail("usage %s of account %s paid by package %s of account %s", id, u.acct, src, pa)
			}
		}
		if l := leases[lid]; l == nil {
			a.fail("usage %s: part names lease %s, which does not exist", id, lid)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, u := range usage {
		if u.amount != u.disc+u.cash+u.short {
			a.fail("usage %s: amount %d != discount %d + cash %d + shortfall %d", id, u.amount, u.disc, u.cash, u.short)
		}
		if u.pCash != u.cash || u.pDisc != u.disc || u.pToks != u.pkgToks {
			a.fail("usage %s: parts cash %d discount %d tokens %d != row %d %d %d", id, u.pCash, u.pDisc, u.pToks, u.cash, u.disc, u.pkgToks)
		}
		if u.amount < 0 || u.disc < 0 || u.cash < 0 || u.short < 0 {
			a.fail("usage %s: negative figure", id)
		}
	}
	for id, l := range leases {
		if spentByLease[id] != l.spent {
			a.fail("lease %s: spent %d but its usage parts sum to %d", id, l.spent, spentByLease[id])
		}
	}
	for _, sa := range srcs {
		if sa.Remaining < 0 {
			a.fail("%s/%s: negative balance %d", sa.Account, sa.Source, sa.Remaining)
		}
		if !sa.Balanced() {
			a.fail("%s/%s: granted %d − remaining %d = %d, but charged %d − uncollected %d + leased %d = %d",
				sa.Account, sa.Source, sa.Granted, sa.Remaining, sa.Granted-sa.Remaining,
				sa.Charged, sa.Uncollected, sa.Leased, sa.Charged-sa.Uncollected+sa.Leased)
		}
		a.Sources = append(a.Sources, *sa)
	}
	sort.Slice(a.Sources, func(i, j int) bool {
		x, y := a.Sources[i], a.Sources[j]
		if x.Account != y.Account {
			return x.Account < y.Account
		}
		return x.Source < y.Source
	})
	sort.Strings(a.Problems)
	return a, nil
}

func andWhere(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}
