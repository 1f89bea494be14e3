package billing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/store"
)

var errInsufficient = errors.New("billing: insufficient funds")

// acquireReq asks the database for credit beyond what the leases hold.
type acquireReq struct {
	model string
	price Price
	use   Usage     // the whole request (estimate or actual)
	at    time.Time // package eligibility time
	// memCovered and memCash are what this engine's leases already cover.
	memCovered int64
	memCash    int64
	wantPkg    bool
	// strict: take all that is needed or nothing (Reserve); otherwise take
	// what exists (Settle).
	strict bool
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
func (e *Engine) acquire(ctx context.Context, a *account, r acquireReq) error {
	ctx, cancel := leaseCtx(ctx)
	defer cancel()
	db := e.db
	now := e.cfg.Now()
	var newLeases []*lease
	pkgShort := false
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		newLeases = newLeases[:0]
		cash, err := db.lockWallet(ctx, tx, a.id)
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
			pkgs, err = e.eligiblePackages(ctx, tx, a.id, r.model, r.at)
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
		if r.strict && cash < cashNeed {
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
		exp := ms(now.Add(e.cfg.LeaseTTL))
		for _, p := range pkgs {
			if p.take <= 0 {
				continue
			}
			l, err := e.leasePackage(ctx, tx, a.id, p, p.take, now, exp)
			if err != nil {
				return err
			}
			newLeases = append(newLeases, l)
		}
		if cashTake > 0 {
			res, err := tx.ExecContext(ctx, `UPDATE billing_wallets SET cash_micros = cash_micros - $1, updated_at = $2 WHERE account_id = $3 AND cash_micros >= $4`, cashTake, ms(now), a.id, cashTake)
			if err != nil {
				return fmt.Errorf("billing: lease cash: %w", err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fmt.Errorf("billing: lease cash %s: %w", a.id, store.ErrConflict)
			}
			l := &lease{id: newID("ls_"), source: cashSource(a.id), granted: cashTake, avail: cashTake}
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

// lockWallet locks the account's wallet row, which every money transaction
// of an account takes first, and returns its cash (0 without a row).
func (db ledgerDB) lockWallet(ctx context.Context, tx *sql.Tx, account string) (int64, error) {
	var cash int64
	err := tx.QueryRowContext(ctx, `SELECT cash_micros FROM billing_wallets WHERE account_id = $1`+db.Dialect.ForUpdate, account).Scan(&cash)
	if err != nil && !isNoRows(err) {
		return 0, fmt.Errorf("billing: lock wallet: %w", err)
	}
	return cash, nil
}

// leasePackage moves take tokens from package p into a new lease held by
// this engine. The guarded UPDATE never takes more than the row holds.
func (e *Engine) leasePackage(ctx context.Context, tx *sql.Tx, account string, p *dbPackage, take int64, now time.Time, exp int64) (*lease, error) {
	res, err := tx.ExecContext(ctx, `UPDATE billing_packages SET tokens_remaining = tokens_remaining - $1 WHERE id = $2 AND tokens_remaining >= $3`, take, p.scope.id, take)
	if err != nil {
		return nil, fmt.Errorf("billing: lease package: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, fmt.Errorf("billing: lease package %s: %w", p.scope.id, store.ErrConflict)
	}
	sc := p.scope
	l := &lease{id: newID("ls_"), source: sc.id, pkg: &sc, granted: take, avail: take}
	if err := e.insertLease(ctx, tx, account, l, now, exp); err != nil {
		return nil, err
	}
	return l, nil
}

func (e *Engine) insertLease(ctx context.Context, tx *sql.Tx, account string, l *lease, now time.Time, exp int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO billing_leases (id, holder, account_id, source, granted, spent, uncollected, state, created_at, expires_at, closed_at, returned, close_note) VALUES ($1, $2, $3, $4, $5, 0, 0, 'active', $6, $7, 0, 0, '')`,
		l.id, e.cfg.Holder, account, l.source, l.granted, ms(now), exp)
	if err != nil {
		return fmt.Errorf("billing: insert lease: %w", err)
	}
	return nil
}

// eligiblePackages returns, locked, the account's packages that can pay
// for model at t, earliest expiry first (ties by id).
func (e *Engine) eligiblePackages(ctx context.Context, tx *sql.Tx, account, model string, t time.Time) ([]*dbPackage, error) {
	db := e.db
	rows, err := tx.QueryContext(ctx, `SELECT id, models, tokens_remaining, effective_at, expires_at FROM billing_packages WHERE account_id = $1 AND tokens_remaining > 0 AND effective_at <= $2 AND expires_at > $3 ORDER BY expires_at, id`+db.Dialect.ForUpdate, account, ms(t), ms(t))
	if err != nil {
		return nil, fmt.Errorf("billing: packages: %w", err)
	}
	defer rows.Close()
	var out []*dbPackage
	for rows.Next() {
		p := &dbPackage{}
		var models string
		var ea, xa int64
		if err := rows.Scan(&p.scope.id, &models, &p.remaining, &ea, &xa); err != nil {
			return nil, fmt.Errorf("billing: packages: %w", err)
		}
		if models != "" {
			p.scope.models = strings.Split(models, ",")
		}
		p.scope.effective, p.scope.expires = fromMS(ea), fromMS(xa)
		if scopeCovers(p.scope.models, model) {
			out = append(out, p)
		}
	}
	return out, rows.Err()
}

// closeLeases returns what the given leases hold and have not spent
// (granted − spent, as the database has it) to their sources, and marks
// them closed. With expiredBefore > 0 only leases whose expiry is at or
// before it are closed (reconciling another holder's leases: a renewal
// that landed meanwhile keeps the lease alive). It returns the ids closed.
func (db ledgerDB) closeLeases(ctx context.Context, account string, ids []string, expiredBefore int64, now time.Time, note string) ([]string, error) {
	sort.Strings(ids)
	var closed []string
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		closed = closed[:0]
		if _, err := db.lockWallet(ctx, tx, account); err != nil {
			return err
		}
		for _, id := range ids {
			var src, state string
			var granted, spent, exp int64
			err := tx.QueryRowContext(ctx, `SELECT source, granted, spent, state, expires_at FROM billing_leases WHERE id = $1`+db.Dialect.ForUpdate, id).Scan(&src, &granted, &spent, &state, &exp)
			if isNoRows(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("billing: read lease: %w", err)
			}
			if state != "active" || (expiredBefore > 0 && exp > expiredBefore) {
				continue
			}
			ret := max(granted-spent, 0)
			if ret > 0 {
				var q string
				if src == cashSource(account) {
					q = `UPDATE billing_wallets SET cash_micros = cash_micros + $1 WHERE account_id = $2`
					src = account
				} else {
					q = `UPDATE billing_packages SET tokens_remaining = tokens_remaining + $1 WHERE id = $2`
				}
				if _, err := tx.ExecContext(ctx, q, ret, src); err != nil {
					return fmt.Errorf("billing: return lease: %w", err)
				}
			}
			if _, err := tx.ExecContext(ctx, `UPDATE billing_leases SET state = 'closed', closed_at = $1, returned = $2, close_note = $3 WHERE id = $4`, ms(now), ret, note, id); err != nil {
				return fmt.Errorf("billing: close lease: %w", err)
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
	for _, a := range e.allAccounts() {
		a.mu.Lock()
		for _, l := range a.leases {
			known[l] = true
		}
		a.mu.Unlock()
	}
	alive := map[string]bool{}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		clear(alive)
		rows, err := tx.QueryContext(ctx, `SELECT id FROM billing_leases WHERE holder = $1 AND state = 'active' ORDER BY id`+db.Dialect.ForUpdate, e.cfg.Holder)
		if err != nil {
			return fmt.Errorf("billing: renew leases: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("billing: renew leases: %w", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("billing: renew leases: %w", err)
		}
		exp := ms(now.Add(e.cfg.LeaseTTL))
		const chunk = 200
		for i := 0; i < len(ids); i += chunk {
			part := ids[i:min(i+chunk, len(ids))]
			args := make([]any, 0, len(part)+1)
			args = append(args, exp)
			for _, id := range part {
				args = append(args, id)
			}
			q := `UPDATE billing_leases SET expires_at = $1 WHERE state = 'active' AND id IN (` + params(2, len(part)) + `)`
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return fmt.Errorf("billing: renew leases: %w", err)
			}
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
	rows, err := db.SQL.QueryContext(ctx, `SELECT account_id, id FROM billing_leases WHERE state = 'active' AND expires_at <= $1 ORDER BY account_id, id`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("billing: reconcile: %w", err)
	}
	byAcct := map[string][]string{}
	var order []string
	for rows.Next() {
		var acct, id string
		if err := rows.Scan(&acct, &id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("billing: reconcile: %w", err)
		}
		if byAcct[acct] == nil {
			order = append(order, acct)
		}
		byAcct[acct] = append(byAcct[acct], id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("billing: reconcile: %w", err)
	}
	n := 0
	for _, acct := range order {
		closed, err := db.closeLeases(ctx, acct, byAcct[acct], ms(now), now, "expired: holder stopped renewing")
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
			if all || (l.held == 0 && (l.avail == 0 || l.dead || expired || now.Sub(l.lastUsed) >= e.cfg.IdleReturn)) {
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
		if _, err := e.db.closeLeases(ctx, b.a.id, b.ids, 0, now, "returned by holder"); err != nil {
			return err
		}
		gone := map[string]bool{}
		for _, id := range b.ids {
			gone[id] = true
		}
		b.a.mu.Lock()
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
