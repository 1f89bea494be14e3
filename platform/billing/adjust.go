package billing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Undoing an operator's money mistakes. Each correction is one
// transaction that changes the balance, writes its ledger entry (a credit
// row the money audit counts: a package's granted tokens move with its
// remaining ones, a cash adjustment counts with the top-ups) and its
// audit-log entry, so the audit balances after any of them and the log
// says who did what, when, from what to what, and why (docs/design.md §8).

// AuditEntry is one row of the operator's audit log.
type AuditEntry struct {
	ID        string    `json:"id"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	AccountID string    `json:"account"`
	Subject   string    `json:"subject"`
	Before    string    `json:"before"`
	After     string    `json:"after"`
	Reason    string    `json:"reason"`
}

// Audit-log actions.
const (
	ActionPackageAdjust  = "package.adjust"
	ActionPackageRevoke  = "package.revoke"
	ActionCashAdjust     = "cash.adjust"
	ActionPriceDelete    = "price.delete"
	ActionAccountDisable = "account.disable"
	ActionAccountEnable  = "account.enable"
	// Recorded by the console, which audits every operator action
	// (docs/console.md §7), not only corrections.
	ActionPackageGrant = "package.grant"
	ActionCashTopUp    = "cash.topup"
	ActionPriceSet     = "price.set"
)

// ErrNotFound is returned for a package that does not exist.
var ErrNotFound = errors.New("billing: not found")

// Correction says who makes a correction and why; both are required.
type Correction struct {
	Actor  string
	Reason string
}

func (c Correction) check() error {
	if strings.TrimSpace(c.Reason) == "" {
		return errors.New("billing: a reason is required")
	}
	if c.Actor == "" {
		return errors.New("billing: an actor is required")
	}
	return nil
}

// AdjustPackage shrinks (delta < 0) or grows a package's tokens. Only
// tokens no process holds can be taken away: a shrink larger than the
// unleased tokens is refused with how many there are (leased tokens come
// back when their lease is returned, within Config.IdleReturn of the
// holder's last use).
func (s *Store) AdjustPackage(ctx context.Context, id string, delta int64, c Correction) (AuditEntry, error) {
	if delta == 0 {
		return AuditEntry{}, errors.New("billing: adjust package: tokens must not be 0")
	}
	return s.changePackage(ctx, id, c, func(p Package) (int64, time.Time, string, error) {
		if p.Unleased+delta < 0 {
			return 0, time.Time{}, "", platform.Errorf(platform.CodeInvalidField,
				"package %s has %d tokens no process holds; cannot take %d (leased tokens come back when their lease is returned)", id, p.Unleased, -delta)
		}
		return delta, time.Time{}, ActionPackageAdjust, nil
	})
}

// RevokePackage ends a package now: its unleased tokens are taken away and
// it expires, so no process leases from it again. Tokens a process holds
// at that moment may still pay for the requests that reserved them; what
// their leases return stays with the expired package, unspendable.
func (s *Store) RevokePackage(ctx context.Context, id string, c Correction) (AuditEntry, error) {
	now := s.now()
	return s.changePackage(ctx, id, c, func(p Package) (int64, time.Time, string, error) {
		exp := p.ExpiresAt
		if now.Before(exp) {
			exp = now
		}
		return -p.Unleased, exp, ActionPackageRevoke, nil
	})
}

func (s *Store) changePackage(ctx context.Context, id string, c Correction, decide func(Package) (int64, time.Time, string, error)) (AuditEntry, error) {
	if err := c.check(); err != nil {
		return AuditEntry{}, err
	}
	now := s.now()
	var e AuditEntry
	err := s.db.Tx(ctx, func(tx LedgerTx) error {
		p, found, err := tx.LockPackage(ctx, id)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("billing: package %s: %w", id, ErrNotFound)
		}
		delta, exp, action, err := decide(p)
		if err != nil {
			return err
		}
		if err := tx.AdjustPackage(ctx, id, delta, exp); err != nil {
			return err
		}
		if delta != 0 {
			if err := tx.InsertCredit(ctx, Credit{ID: platform.RandomID("cr_", 10), AccountID: p.AccountID, Kind: CreditPackageAdjust,
				Tokens: delta, Ref: id, Note: c.Reason, CreatedAt: now}); err != nil {
				return err
			}
		}
		after := p
		after.TokensGranted += delta
		after.Unleased += delta
		if !exp.IsZero() {
			after.ExpiresAt = exp
		}
		e = AuditEntry{ID: platform.RandomID("au_", 10), At: now, Actor: c.Actor, Action: action, AccountID: p.AccountID,
			Subject: id, Before: PackageState(p), After: PackageState(after), Reason: c.Reason}
		return tx.InsertAudit(ctx, e)
	})
	return e, err
}

// PackageState is p as the audit log's before and after show it.
func PackageState(p Package) string {
	return fmt.Sprintf("granted %d, unleased %d, expires %s", p.TokensGranted, p.Unleased, p.ExpiresAt.In(BillingZone).Format(time.RFC3339))
}

// AdjustCash adds amount (negative: takes it away) to an account's cash.
// Only cash no process holds can be taken: a larger take is refused with
// how much there is.
func (s *Store) AdjustCash(ctx context.Context, account string, amount Micros, c Correction) (AuditEntry, error) {
	if err := c.check(); err != nil {
		return AuditEntry{}, err
	}
	if account == "" {
		return AuditEntry{}, errors.New("billing: adjust cash: account required")
	}
	if amount == 0 {
		return AuditEntry{}, errors.New("billing: adjust cash: amount must not be 0")
	}
	now := s.now()
	var e AuditEntry
	err := s.db.Tx(ctx, func(tx LedgerTx) error {
		if err := tx.EnsureWallet(ctx, account, now); err != nil {
			return err
		}
		cash, err := tx.LockWallet(ctx, account)
		if err != nil {
			return err
		}
		if amount > 0 {
			err = tx.AddCash(ctx, account, int64(amount), now)
		} else if cash+int64(amount) < 0 {
			return platform.Errorf(platform.CodeInvalidField,
				"account %s has ¥%s no process holds; cannot take ¥%s (leased cash comes back when its lease is returned)", account, Micros(cash), -amount)
		} else {
			err = tx.TakeCash(ctx, account, -int64(amount), now)
		}
		if err != nil {
			return err
		}
		if err := tx.InsertCredit(ctx, Credit{ID: platform.RandomID("cr_", 10), AccountID: account, Kind: CreditAdjust,
			Micros: int64(amount), Note: c.Reason, CreatedAt: now}); err != nil {
			return err
		}
		e = AuditEntry{ID: platform.RandomID("au_", 10), At: now, Actor: c.Actor, Action: ActionCashAdjust, AccountID: account,
			Subject: "cash", Before: "unleased " + Micros(cash).String(), After: "unleased " + Micros(cash+int64(amount)).String(), Reason: c.Reason}
		return tx.InsertAudit(ctx, e)
	})
	return e, err
}

// AuditLog lists the operator's audit log, newest first.
func (s *Store) AuditLog(ctx context.Context, account string, limit int) ([]AuditEntry, error) {
	return s.db.AuditLog(ctx, account, limit)
}

// DeletePrice removes a model's price row, so the model is charged at the
// "*" row, else free (Engine.PriceOf); found=false when it had none. The
// audit log keeps the row as it was.
func (s *Store) DeletePrice(ctx context.Context, model string, c Correction) (AuditEntry, bool, error) {
	if err := c.check(); err != nil {
		return AuditEntry{}, false, err
	}
	now := s.now()
	var e AuditEntry
	found := false
	err := s.db.Tx(ctx, func(tx LedgerTx) error {
		p, ok, err := tx.DeletePrice(ctx, model)
		if err != nil || !ok {
			found = false
			return err
		}
		found = true
		e = AuditEntry{ID: platform.RandomID("au_", 10), At: now, Actor: c.Actor, Action: ActionPriceDelete, Subject: model,
			Before: PriceState(p), After: "no row", Reason: c.Reason}
		return tx.InsertAudit(ctx, e)
	})
	return e, found, err
}

// RecordAudit adds an entry to the audit log for a correction made outside
// billing's tables (an account disabled or enabled in the platform store).
func (s *Store) RecordAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	if err := (Correction{Actor: e.Actor, Reason: e.Reason}).check(); err != nil {
		return AuditEntry{}, err
	}
	e.ID, e.At = platform.RandomID("au_", 10), s.now()
	err := s.db.Tx(ctx, func(tx LedgerTx) error { return tx.InsertAudit(ctx, e) })
	return e, err
}
