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
// where charged is what usage parts (and the roll-ups of parts whose rows
// retention deleted) say the source paid (tokens for a package, micros for
// cash), uncollected is what late rows of reclaimed
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
// parts sum to it; every lease's spent = the sum of the parts that name it
// (rows still stored plus the roll-ups of rows retention deleted);
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
	au.rolledUp(snap.UsageDays, snap.PartsRollups)
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

// usage charges each part to its source and lease, and checks every row
// by the per-row rules (usageRowProblems).
func (au *auditor) usage(rows []UsageRecord, parts []UsagePart) {
	acct := make(map[string]string, len(rows))
	for _, r := range rows {
		acct[r.RequestID] = r.AccountID
	}
	byRow := make(map[string][]Part, len(rows))
	for _, p := range parts {
		a, ok := acct[p.RequestID]
		if !ok {
			continue // cannot happen: the ledger reads parts of listed rows only
		}
		byRow[p.RequestID] = append(byRow[p.RequestID], p.Part)
		au.charge(a, p.Source, p.LeaseID, p.Tokens, p.Micros)
	}
	exists := func(id string) bool { _, ok := au.lease[id]; return ok }
	for i := range rows {
		for _, msg := range usageRowProblems(&rows[i], byRow[rows[i].RequestID], exists, au.pkgAcct) {
			au.a.fail("%s", msg)
		}
	}
}

// charge books what a part (or a roll-up of parts) took from its lease and
// source.
func (au *auditor) charge(acct, src, lease string, tokens int64, micros Micros) {
	if src == PartCash {
		au.spentByLease[lease] += int64(micros)
		au.get(acct, PartCash).Charged += int64(micros)
		return
	}
	au.spentByLease[lease] += tokens
	au.get(acct, src).Charged += tokens
}

// usageRowProblems lists what breaks the per-row rules on one usage row
// and its parts: amount = discount + cash + shortfall, the parts sum to the
// row's cash, discount and package tokens, no figure is negative, every
// part names a lease that exists, and no package pays for another
// account's usage. The audit applies it to every row; the roll-up moves
// only rows it finds nothing on, so what it would report stays a row.
func usageRowProblems(r *UsageRecord, parts []Part, leaseExists func(string) bool, pkgAcct map[string]string) []string {
	var out []string
	id := r.RequestID
	var pCash, pDisc, pToks int64
	for _, p := range parts {
		if p.Source == PartCash {
			pCash += int64(p.Micros)
		} else {
			pDisc += int64(p.Micros)
			pToks += p.Tokens
			if pa, ok := pkgAcct[p.Source]; ok && pa != r.AccountID {
				out = append(out, fmt.Sprintf("usage %s of account %s paid by package %s of account %s", id, r.AccountID, p.Source, pa))
			}
		}
		if !leaseExists(p.LeaseID) {
			out = append(out, fmt.Sprintf("usage %s: part names lease %s, which does not exist", id, p.LeaseID))
		}
	}
	amount, disc, cash, short := int64(r.Amount), int64(r.Discount), int64(r.Cash), int64(r.Shortfall)
	if amount != disc+cash+short {
		out = append(out, fmt.Sprintf("usage %s: amount %d != discount %d + cash %d + shortfall %d", id, amount, disc, cash, short))
	}
	if pCash != cash || pDisc != disc || pToks != r.PackageTokens {
		out = append(out, fmt.Sprintf("usage %s: parts cash %d discount %d tokens %d != row %d %d %d", id, pCash, pDisc, pToks, cash, disc, r.PackageTokens))
	}
	if amount < 0 || disc < 0 || cash < 0 || short < 0 {
		out = append(out, fmt.Sprintf("usage %s: negative figure", id))
	}
	return out
}

// rolledUp books the roll-ups of deleted usage rows as the rows were
// booked, and checks them by the same rules, summed: a day's amount =
// discount + cash + shortfall with no negative figure; per account, the
// parts' roll-ups sum to the days' cash, discount and package tokens; each
// parts roll-up names a lease that exists and a package of its own
// account. (Each row was checked one by one before it was rolled up.)
func (au *auditor) rolledUp(days []UsageDay, parts []PartsRollup) {
	a := au.a
	type sums struct{ cash, disc, toks, pCash, pDisc, pToks int64 }
	byAcct := map[string]*sums{}
	get := func(acct string) *sums {
		if byAcct[acct] == nil {
			byAcct[acct] = &sums{}
		}
		return byAcct[acct]
	}
	for _, d := range days {
		if d.Amount != d.Discount+d.Cash+d.Shortfall {
			a.fail("usage of %s %s %s %s %s: amount %d != discount %d + cash %d + shortfall %d", d.Day, d.AccountID, d.KeyID, d.Model, d.Outcome,
				d.Amount, d.Discount, d.Cash, d.Shortfall)
		}
		if d.Amount < 0 || d.Discount < 0 || d.Cash < 0 || d.Shortfall < 0 || d.PackageTokens < 0 {
			a.fail("usage of %s %s %s %s %s: negative figure", d.Day, d.AccountID, d.KeyID, d.Model, d.Outcome)
		}
		s := get(d.AccountID)
		s.cash += int64(d.Cash)
		s.disc += int64(d.Discount)
		s.toks += d.PackageTokens
	}
	for _, p := range parts {
		au.charge(p.AccountID, p.Source, p.LeaseID, p.Tokens, p.Micros)
		s := get(p.AccountID)
		if p.Source == PartCash {
			s.pCash += int64(p.Micros)
		} else {
			s.pDisc += int64(p.Micros)
			s.pToks += p.Tokens
			if pa, ok := au.pkgAcct[p.Source]; ok && pa != p.AccountID {
				a.fail("rolled-up usage of account %s paid by package %s of account %s", p.AccountID, p.Source, pa)
			}
		}
		if _, ok := au.lease[p.LeaseID]; !ok {
			a.fail("rolled-up usage of account %s names lease %s, which does not exist", p.AccountID, p.LeaseID)
		}
	}
	for acct, s := range byAcct {
		if s.pCash != s.cash || s.pDisc != s.disc || s.pToks != s.toks {
			a.fail("rolled-up usage of account %s: parts cash %d discount %d tokens %d != days %d %d %d", acct,
				s.pCash, s.pDisc, s.pToks, s.cash, s.disc, s.toks)
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
