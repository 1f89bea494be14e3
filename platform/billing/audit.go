package billing

import (
	"context"
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
	snap, err := s.db.Snapshot(ctx, account)
	if err != nil {
		return nil, err
	}
	a := &Audit{}
	type key struct{ acct, src string }
	srcs := map[key]*SourceAudit{}
	get := func(acct, src string) *SourceAudit {
		k := key{acct, src}
		if srcs[k] == nil {
			srcs[k] = &SourceAudit{Account: acct, Source: src}
		}
		return srcs[k]
	}
	pkgAcct := map[string]string{}
	for _, p := range snap.Packages {
		pkgAcct[p.ID] = p.AccountID
		sa := get(p.AccountID, p.ID)
		sa.Granted, sa.Remaining = p.TokensGranted, p.Unleased
	}
	for acct, c := range snap.Wallets {
		get(acct, PartCash).Remaining = c
	}
	for acct, m := range snap.TopUps {
		get(acct, PartCash).Granted = m
	}
	// Leases: per source, and spent per lease to compare with the parts.
	type leaseRow struct {
		acct, src, state                   string
		granted, spent, uncollected, retnd int64
	}
	leases := make(map[string]*leaseRow, len(snap.Leases))
	for _, l := range snap.Leases {
		leases[l.ID] = &leaseRow{
			acct: l.AccountID, src: l.Source, state: l.State,
			granted: l.Granted, spent: l.Spent, uncollected: l.Uncollected, retnd: l.Returned,
		}
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
		case LeaseActive:
			a.OpenLeases++
			sa.Leased += l.granted - l.spent
			if l.spent > l.granted {
				a.fail("lease %s: active with spent %d > granted %d", id, l.spent, l.granted)
			}
		case LeaseClosed:
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
	usage := make(map[string]*rowSum, len(snap.Usage))
	for _, r := range snap.Usage {
		usage[r.RequestID] = &rowSum{
			acct: r.AccountID, amount: int64(r.Amount), disc: int64(r.Discount), cash: int64(r.Cash),
			short: int64(r.Shortfall), pkgToks: r.PackageTokens,
		}
	}
	spentByLease := map[string]int64{}
	for _, p := range snap.Parts {
		id, src, lid, toks, mic := p.RequestID, p.Source, p.LeaseID, p.Tokens, int64(p.Micros)
		u := usage[id]
		if u == nil {
			continue // cannot happen: the ledger reads parts of listed rows only
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
