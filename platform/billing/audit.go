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
	au := newAuditor()
	au.sources(snap)
	au.leases(snap.Leases)
	au.usage(snap.Usage, snap.Parts)
	return au.finish(), nil
}

// auditor recomputes both sides of the ledger from one snapshot.
type auditor struct {
	a    *Audit
	srcs map[srcKey]*SourceAudit
	// pkgAcct is each package's account, to catch a package paying for
	// another account's usage.
	pkgAcct      map[string]string
	lease        map[string]LeaseRow
	spentByLease map[string]int64
}

type srcKey struct{ acct, src string }

func newAuditor() *auditor {
	return &auditor{
		a:            &Audit{},
		srcs:         map[srcKey]*SourceAudit{},
		pkgAcct:      map[string]string{},
		lease:        map[string]LeaseRow{},
		spentByLease: map[string]int64{},
	}
}

func (au *auditor) get(acct, src string) *SourceAudit {
	k := srcKey{acct, src}
	if au.srcs[k] == nil {
		au.srcs[k] = &SourceAudit{Account: acct, Source: src}
	}
	return au.srcs[k]
}

// sources fills what each package and wallet was given and still holds.
func (au *auditor) sources(snap *LedgerSnapshot) {
	for _, p := range snap.Packages {
		au.pkgAcct[p.ID] = p.AccountID
		sa := au.get(p.AccountID, p.ID)
		sa.Granted, sa.Remaining = p.TokensGranted, p.Unleased
	}
	for acct, c := range snap.Wallets {
		au.get(acct, PartCash).Remaining = c
	}
	for acct, m := range snap.TopUps {
		au.get(acct, PartCash).Granted = m
	}
}

// leases adds what active leases hold and what late rows could not
// collect to their sources, and checks each lease's own figures.
func (au *auditor) leases(rows []LeaseRow) {
	a := au.a
	for _, l := range rows {
		au.lease[l.ID] = l
		id := l.ID
		src := l.Source
		if src == cashSource(l.AccountID) {
			src = PartCash
		}
		sa := au.get(l.AccountID, src)
		sa.Uncollected += l.Uncollected
		if l.Granted < 0 || l.Spent < 0 || l.Uncollected < 0 || l.Uncollected > l.Spent {
			a.fail("lease %s: granted %d spent %d uncollected %d", id, l.Granted, l.Spent, l.Uncollected)
		}
		switch l.State {
		case LeaseActive:
			a.OpenLeases++
			sa.Leased += l.Granted - l.Spent
			if l.Spent > l.Granted {
				a.fail("lease %s: active with spent %d > granted %d", id, l.Spent, l.Granted)
			}
		case LeaseClosed:
			if l.Returned < 0 || l.Returned > l.Granted {
				a.fail("lease %s: closed returning %d of %d granted", id, l.Returned, l.Granted)
			}
		default:
			a.fail("lease %s: unknown state %q", id, l.State)
		}
	}
}

// rowSum is a usage row's figures beside the sums of its parts.
type rowSum struct {
	acct                               string
	amount, disc, cash, short, pkgToks int64
	pCash, pDisc, pToks                int64
}

// usage charges each part to its source and lease, and checks that every
// row adds up and matches its parts.
func (au *auditor) usage(rows []UsageRecord, parts []UsagePart) {
	a := au.a
	usage := make(map[string]*rowSum, len(rows))
	for _, r := range rows {
		usage[r.RequestID] = &rowSum{
			acct: r.AccountID, amount: int64(r.Amount), disc: int64(r.Discount), cash: int64(r.Cash),
			short: int64(r.Shortfall), pkgToks: r.PackageTokens,
		}
	}
	for _, p := range parts {
		id, src, lid, toks, mic := p.RequestID, p.Source, p.LeaseID, p.Tokens, int64(p.Micros)
		u := usage[id]
		if u == nil {
			continue // cannot happen: the ledger reads parts of listed rows only
		}
		if src == PartCash {
			u.pCash += mic
			au.spentByLease[lid] += mic
			au.get(u.acct, PartCash).Charged += mic
		} else {
			u.pDisc += mic
			u.pToks += toks
			au.spentByLease[lid] += toks
			au.get(u.acct, src).Charged += toks
			if pa, ok := au.pkgAcct[src]; ok && pa != u.acct {
				a.fail("usage %s of account %s paid by package %s of account %s", id, u.acct, src, pa)
			}
		}
		if _, ok := au.lease[lid]; !ok {
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
}

// finish compares each lease's spent total with its parts, checks every
// source's balance, and returns the audit in a stable order.
func (au *auditor) finish() *Audit {
	a := au.a
	for id, l := range au.lease {
		if au.spentByLease[id] != l.Spent {
			a.fail("lease %s: spent %d but its usage parts sum to %d", id, l.Spent, au.spentByLease[id])
		}
	}
	for _, sa := range au.srcs {
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
	return a
}
