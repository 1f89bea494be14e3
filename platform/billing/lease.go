package billing

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/glmkit/glmkit/platform"
)

var errInsufficient = errors.New("billing: insufficient funds")

// acquireReq asks the database for credit beyond what the leases hold.
type acquireReq struct {
	model string
	price Price
	use   Usage // the whole request (estimate or actual)
	// floor is the least of use a strict acquire must cover (Reserve of
	// a request that may be bounded, docs/design.md §7); zero means use.
	floor Usage
	at    time.Time // package eligibility time
	// memCovered and memCash are what this engine's leases already cover.
	memCovered int64
	memCash    int64
	wantPkg    bool
	// strict: take all that is needed or nothing (Reserve); otherwise take
	// what exists (Settle).
	strict bool
}

// floorCash is the cash the database must hold for a strict acquire: what
// r.floor (else r.use) costs beyond the package tokens the leases and the
// database cover and the cash the leases hold.
func floorCash(r acquireReq, dbCovered int64) int64 {
	f := r.floor
	if f == (Usage{}) {
		f = r.use
	}
	covered := min(f.PromptTokens+f.CompletionTokens, r.memCovered+dbCovered)
	return max(cashFor(r.price, f, covered)-r.memCash, 0)
}

type dbPackage struct {
	scope     pkgScope
	remaining int64
	take      int64
}

// acquire takes leases for account a in one transaction: the tokens and
// cash the request still needs, plus headroom for the requests that follow
// (at most TokenBlock / CashBlock, and at most 1/ShareDivisor of what the
// source has left). The transaction locks the account's wallet row first
// (every money transaction of an account does, so they serialise without
// deadlocks), then its packages, and never takes more than a row holds: a
// CHECK (>= 0) and a guarded UPDATE make overspend impossible across any
// number of engines. Called with a.mu held.
func (e *Engine) acquire(ctx context.Context, a *account, r acquireReq) (err error) {
	start := time.Now()
	defer func() { e.cfg.Metrics.leased(time.Since(start), err) }()
	ctx, cancel := leaseCtx(ctx)
	defer cancel()
	db := e.db
	now := e.cfg.Now()
	var newLeases []*lease
	pkgShort := false
	err = db.Tx(ctx, func(tx LedgerTx) error {
		newLeases = newLeases[:0]
		cash, err := tx.LockWallet(ctx, a.id)
		if err != nil {
			return err
		}
		total := r.use.PromptTokens + r.use.CompletionTokens
		wantTok := int64(0)
		if r.wantPkg && tokenPriced(r.price) {
			wantTok = max(total-r.memCovered, 0)
		}
		var pkgs []*dbPackage
		if wantTok > 0 {
			pkgs, err = eligiblePackages(ctx, tx, a.id, r.model, r.at)
			if err != nil {
				return err
			}
		}
		left := wantTok
		for _, p := range pkgs {
			p.take = min(p.remaining, left)
			left -= p.take
		}
		pkgShort = left > 0
		dbCovered := wantTok - left
		cashNeed := max(cashFor(r.price, r.use, r.memCovered+dbCovered)-r.memCash, 0)
		if r.strict && cash < floorCash(r, dbCovered) {
			return errInsufficient
		}
		cashTake := min(cash, cashNeed)
		// Headroom, so the next requests are served from memory.
		if wantTok > 0 {
			room := e.cfg.TokenBlock
			for _, p := range pkgs {
				x := min(room, (p.remaining-p.take)/e.cfg.ShareDivisor)
				p.take += x
				room -= x
			}
		}
		if cashNeed > 0 {
			cashTake += min(int64(e.cfg.CashBlock), (cash-cashTake)/e.cfg.ShareDivisor)
		}
		exp := now.Add(e.cfg.LeaseTTL)
		for _, p := range pkgs {
			if p.take <= 0 {
				continue
			}
			l, err := e.leasePackage(ctx, tx, a.id, p, p.take, now, exp)
			if err != nil {
				return err
			}
			l.scarce = p.remaining-p.take < p.take
			l.small = p.take < e.cfg.TokenBlock
			newLeases = append(newLeases, l)
		}
		if cashTake > 0 {
			if err := tx.TakeCash(ctx, a.id, cashTake, now); err != nil {
				return err
			}
			l := &lease{id: platform.RandomID("ls_", 10), source: cashSource(a.id), granted: cashTake, avail: cashTake,
				scarce: cash-cashTake < cashTake, small: cashTake < int64(e.cfg.CashBlock)}
			if err := e.insertLease(ctx, tx, a.id, l, now, exp); err != nil {
				return err
			}
			newLeases = append(newLeases, l)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if r.wantPkg {
		a.pkgLook[r.model] = now
		if pkgShort {
			a.noPkg[r.model] = now
		} else {
			delete(a.noPkg, r.model)
		}
	}
	e.keepLeases(a, newLeases, now)
	return nil
}

// keepLeases adds leases committed at now to the account's leases in
// memory, in spending order. Called with a.mu held.
func (e *Engine) keepLeases(a *account, leases []*lease, now time.Time) {
	for _, l := range leases {
		l.validUntil = now.Add(e.cfg.LeaseTTL / 2)
		l.lastUsed = now
		a.leases = append(a.leases, l)
	}
	sortLeases(a.leases)
}

// leaseTxTimeout bounds a lease transaction once it is detached from its
// caller's cancellation (leaseCtx).
const leaseTxTimeout = 30 * time.Second

// leaseCtx detaches a lease-taking transaction from its caller's
// cancellation. The caller is a request; if its client hangs up while the
// COMMIT is on the wire, the driver reports the cancellation although the
// database may have committed (pgx commits with the transaction's
// context): a lease would exist that this engine does not know — renewed
// under its holder name, never spent, never returned until the process is
// gone and LeaseTTL has passed. A timeout still bounds a dead database.
func leaseCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), leaseTxTimeout)
}

// leasePackage moves take tokens from package p into a new lease held by
// this engine. The ledger never takes more than the package holds.
func (e *Engine) leasePackage(ctx context.Context, tx LedgerTx, account string, p *dbPackage, take int64, now, exp time.Time) (*lease, error) {
	if err := tx.TakePackageTokens(ctx, p.scope.id, take); err != nil {
		return nil, err
	}
	sc := p.scope
	l := &lease{id: platform.RandomID("ls_", 10), source: sc.id, pkg: &sc, granted: take, avail: take}
	if err := e.insertLease(ctx, tx, account, l, now, exp); err != nil {
		return nil, err
	}
	return l, nil
}

func (e *Engine) insertLease(ctx context.Context, tx LedgerTx, account string, l *lease, now, exp time.Time) error {
	return tx.InsertLease(ctx, LeaseRow{
		ID: l.id, Holder: e.cfg.Holder, AccountID: account, Source: l.source, Granted: l.granted,
		State: LeaseActive, CreatedAt: now, ExpiresAt: exp,
	})
}

// eligiblePackages returns, locked, the account's packages that can pay
// for model at t, earliest expiry first (ties by id).
func eligiblePackages(ctx context.Context, tx LedgerTx, account, model string, t time.Time) ([]*dbPackage, error) {
	ps, err := tx.EligiblePackages(ctx, account, t)
	if err != nil {
		return nil, err
	}
	var out []*dbPackage
	for _, p := range ps {
		if !scopeCovers(p.Models, model) {
			continue
		}
		out = append(out, &dbPackage{
			scope:     pkgScope{id: p.ID, models: p.Models, effective: p.EffectiveAt, expires: p.ExpiresAt},
			remaining: p.Unleased,
		})
	}
	return out, nil
}

// closeLeases returns what the given leases hold and have not spent
// (granted − spent, as the database has it) to their sources, and marks
// them closed. With a non-zero expiredBefore only leases whose expiry is
// at or before it are closed (reconciling another holder's leases: a
// renewal that landed meanwhile keeps the lease alive). It returns the ids
// closed.
func closeLeases(ctx context.Context, db Ledger, account string, ids []string, expiredBefore, now time.Time, note string) ([]string, error) {
	sort.Strings(ids)
	var closed []string
	err := db.Tx(ctx, func(tx LedgerTx) error {
		closed = closed[:0]
		if _, err := tx.LockWallet(ctx, account); err != nil {
			return err
		}
		for _, id := range ids {
			l, found, err := tx.LockLease(ctx, id)
			if err != nil {
				return err
			}
			// Expiries compare at the ledger's precision, the millisecond.
			if !found || l.State != LeaseActive || (!expiredBefore.IsZero() && l.ExpiresAt.UnixMilli() > expiredBefore.UnixMilli()) {
				continue
			}
			ret := max(l.Granted-l.Spent, 0)
			if ret > 0 {
				if l.Source == cashSource(account) {
					err = tx.ReturnCash(ctx, account, ret)
				} else {
					err = tx.ReturnPackageTokens(ctx, l.Source, ret)
				}
				if err != nil {
					return err
				}
			}
			if err := tx.CloseLease(ctx, id, ret, note, now); err != nil {
				return err
			}
			closed = append(closed, id)
		}
		return nil
	})
	return closed, err
}

// renew moves the expiry of this engine's active leases on by LeaseTTL
// and marks dead any the database no longer lists as ours (another
// process reconciled them while this one could not renew).
//
// It runs in one retried transaction that locks the leases in id order —
// the order the flush and closeLeases lock them in. A bare multi-row
// UPDATE locks in scan order, deadlocked with a concurrent flush on
// PostgreSQL (40P01, found by TestLedgerStressReplicas), and a failed
// renewal lets a live holder's leases expire and be reclaimed.
func (e *Engine) renew(ctx context.Context) error {
	now := e.cfg.Now()
	db := e.db
	// Only leases this engine held before the database is read can be
	// judged: one acquired meanwhile is not in the answer yet, and marking
	// it dead would strand its credit until the next idle return.
	known := map[*lease]bool{}
	pkgSet := map[string]bool{}
	for _, a := range e.allAccounts() {
		a.mu.Lock()
		for _, l := range a.leases {
			known[l] = true
			if l.pkg != nil {
				pkgSet[l.pkg.id] = true
			}
		}
		a.mu.Unlock()
	}
	pkgIDs := make([]string, 0, len(pkgSet))
	for id := range pkgSet {
		pkgIDs = append(pkgIDs, id)
	}
	sort.Strings(pkgIDs)
	alive := map[string]bool{}
	var expiries map[string]time.Time
	err := db.Tx(ctx, func(tx LedgerTx) error {
		clear(alive)
		ids, err := tx.LockHolderLeases(ctx, e.cfg.Holder)
		if err != nil {
			return err
		}
		if err := tx.ExtendLeases(ctx, ids, now.Add(e.cfg.LeaseTTL)); err != nil {
			return err
		}
		// A package revoked by another process (glm packages revoke)
		// stops paying here from this renewal on.
		if expiries, err = tx.PackageExpiries(ctx, pkgIDs); err != nil {
			return err
		}
		for _, id := range ids {
			alive[id] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	valid := now.Add(e.cfg.LeaseTTL / 2)
	for _, a := range e.allAccounts() {
		a.mu.Lock()
		for _, l := range a.leases {
			if alive[l.id] {
				l.validUntil = valid
			} else if known[l] && !l.closing {
				l.dead = true
			}
			if l.pkg != nil {
				if exp, ok := expiries[l.pkg.id]; ok && exp.Before(l.pkg.expires) {
					l.pkg.expires = exp
				}
			}
		}
		a.mu.Unlock()
	}
	return nil
}

// Reconcile returns the credit of leases whose holder stopped renewing
// them (the holder crashed, or lost the database for longer than
// LeaseTTL): what such a lease holds beyond the usage rows its holder
// wrote goes back to its package or wallet. Reservations the dead holder
// had open are thereby released uncharged — the crash rule stated in
// notes/metering.md. NewEngine calls it at startup, Maintain periodically.
func (e *Engine) Reconcile(ctx context.Context) (int, error) {
	now := e.cfg.Now()
	db := e.db
	expired, err := db.ExpiredLeases(ctx, now)
	if err != nil {
		return 0, err
	}
	byAcct := map[string][]string{}
	var order []string
	for _, l := range expired {
		if byAcct[l.AccountID] == nil {
			order = append(order, l.AccountID)
		}
		byAcct[l.AccountID] = append(byAcct[l.AccountID], l.ID)
	}
	n := 0
	for _, acct := range order {
		closed, err := closeLeases(ctx, db, acct, byAcct[acct], now, now, "expired: holder stopped renewing")
		if err != nil {
			return n, err
		}
		n += len(closed)
	}
	return n, nil
}

// returnIdle gives leases back to the database: with all set, every lease
// (Close); otherwise the ones no reservation holds that are used up, idle
// for IdleReturn, dead, or whose package expired. Usage rows are flushed
// first so the database's spent totals are complete when the unspent rest
// is returned.
func (e *Engine) returnIdle(ctx context.Context, all bool) error {
	now := e.cfg.Now()
	type batch struct {
		a   *account
		ids []string
	}
	var todo []batch
	for _, a := range e.allAccounts() {
		a.mu.Lock()
		var ids []string
		for _, l := range a.leases {
			if l.closing {
				ids = append(ids, l.id)
				continue
			}
			expired := l.pkg != nil && !now.Before(l.pkg.expires)
			// A scarce lease nobody here waits for goes back at once, so
			// another replica's request can spend it; a small one idle
			// for smallIdle goes back even with waiters here, which it
			// could not pay (two replicas each keeping a scrap for its own
			// waiters would wait for each other, docs/design.md §7).
			scarce := (l.scarce && a.waiters == 0) || (l.small && now.Sub(l.lastUsed) >= smallIdle)
			if all || (l.held == 0 && (l.avail == 0 || l.dead || expired || scarce || now.Sub(l.lastUsed) >= e.cfg.IdleReturn)) {
				l.closing = true
				ids = append(ids, l.id)
			}
		}
		a.mu.Unlock()
		if len(ids) > 0 {
			todo = append(todo, batch{a, ids})
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if err := e.Flush(ctx); err != nil {
		return err
	}
	for _, b := range todo {
		if _, err := closeLeases(ctx, e.db, b.a.id, b.ids, time.Time{}, now, "returned by holder"); err != nil {
			return err
		}
		gone := map[string]bool{}
		for _, id := range b.ids {
			gone[id] = true
		}
		b.a.mu.Lock()
		// Returned package tokens may pay again: forget "no package".
		clear(b.a.noPkg)
		kept := b.a.leases[:0]
		for _, l := range b.a.leases {
			if !gone[l.id] {
				kept = append(kept, l)
			}
		}
		for i := len(kept); i < len(b.a.leases); i++ {
			b.a.leases[i] = nil
		}
		b.a.leases = kept
		b.a.mu.Unlock()
	}
	return nil
}
