package billing

import (
	"context"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Package order with leased credit: packages whose scope matches the model
// pay first, earliest expiry first, so credit about to expire is not
// wasted while later credit is spent.
//
// An engine spends package leases in expiry order, but a lease taken
// earlier can outlive the moment another package starts to rank before
// it: a package granted later with an earlier expiry, or one that has
// just become effective. So when leases alone would pay and the account's
// packages were last looked at more than Config.PackageRecheck ago (5 s),
// Reserve looks again and leases from any eligible package that expires
// before the first package lease the plan uses. Tolerance (stated in
// notes/metering.md): such a package starts paying within PackageRecheck
// on every replica; the money is exact either way.

// orderStale reports whether the package order should be re-checked for
// model. Called with a.mu held.
func (e *Engine) orderStale(a *account, now time.Time, model string) bool {
	t, ok := a.pkgLook[model]
	return !ok || now.Sub(t) >= e.cfg.PackageRecheck || now.Before(t)
}

// refreshOrder leases, in one transaction, from the eligible packages that
// expire before the first package lease pl uses, as much as pl takes from
// package leases plus the usual headroom. Called with a.mu held.
func (e *Engine) refreshOrder(ctx context.Context, a *account, model string, price Price, now time.Time, pl plan) error {
	a.pkgLook[model] = now
	var first *lease
	for _, h := range pl.takes {
		if h.l.pkg != nil {
			first = h.l
			break
		}
	}
	if first == nil || !tokenPriced(price) {
		return nil
	}
	ctx, cancel := leaseCtx(ctx) // see acquire
	defer cancel()
	db := e.db
	var newLeases []*lease
	err := db.Tx(ctx, func(tx LedgerTx) error {
		newLeases = newLeases[:0]
		// Same lock order as acquire: wallet row, then packages.
		if _, err := tx.LockWallet(ctx, a.id); err != nil {
			return err
		}
		pkgs, err := eligiblePackages(ctx, tx, a.id, model, now)
		if err != nil {
			return err
		}
		left := pl.covered
		room := e.cfg.TokenBlock
		exp := now.Add(e.cfg.LeaseTTL)
		for _, p := range pkgs {
			if !p.scope.expires.Before(first.pkg.expires) {
				break // sorted by expiry: the rest rank after the leases
			}
			take := min(p.remaining, left)
			left -= take
			x := min(room, (p.remaining-take)/e.cfg.ShareDivisor)
			take += x
			room -= x
			if take <= 0 {
				continue
			}
			l, err := e.leasePackage(ctx, tx, a.id, p, take, now, exp)
			if err != nil {
				return err
			}
			newLeases = append(newLeases, l)
		}
		return nil
	})
	if err != nil {
		return err
	}
	e.keepLeases(a, newLeases, now)
	return nil
}

// PackagesChanged tells the engine an account's packages changed (a grant
// through this process's admin API), so its next reservation looks at the
// database at once instead of trusting the "no package" answer or the
// lease order for up to PackageRecheck.
func (e *Engine) PackagesChanged(accountID string) {
	a := e.account(accountID)
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.noPkg)
	clear(a.pkgLook)
}

// PackageRevoked stops this engine paying from a package an operator
// revoked: its leases here are treated as expired from now, so no new
// reservation uses them, reservations already holding them settle as
// reserved, and they go back to the database when nothing holds them.
// Other engines stop at their next lease renewal (renew reads the
// package's expiry).
func (e *Engine) PackageRevoked(accountID, packageID string) {
	now := e.cfg.Now()
	a := e.account(accountID)
	a.mu.Lock()
	for _, l := range a.leases {
		if l.pkg != nil && l.pkg.id == packageID && now.Before(l.pkg.expires) {
			l.pkg.expires = now
		}
	}
	clear(a.noPkg)
	clear(a.pkgLook)
	a.mu.Unlock()
	platform.Wake(e.giveBack)
}
