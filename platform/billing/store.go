package billing

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Package kinds (the console's 资源包类型: 赠送 / 购买).
const (
	KindGift      = "gift"
	KindPurchased = "purchased"
)

// Package statuses (资源包状态), derived from times and remaining tokens,
// never stored, so a package cannot be "active" in the database while its
// expiry has passed.
const (
	StatusActive       = "active"
	StatusNotEffective = "not-yet-effective"
	StatusExpired      = "expired"
	StatusExhausted    = "exhausted"
)

// Package is a resource package: tokens an account may spend on the models
// of its scope between EffectiveAt (inclusive) and ExpiresAt (exclusive).
type Package struct {
	ID        string
	AccountID string
	Name      string
	Kind      string
	// Models is the scope; empty means every model.
	Models        []string
	TokensGranted int64
	// TokensRemaining is what the account still has: the unleased tokens in
	// the database plus tokens leased to a process and not yet spent.
	TokensRemaining int64
	// Unleased is the part of TokensRemaining no process holds.
	Unleased    int64
	PurchasedAt time.Time
	EffectiveAt time.Time
	ExpiresAt   time.Time
}

// ActiveAt reports whether the package may pay at t. The boundaries are
// half-open: the effective time is the first instant it pays, the expiry
// time the first instant it no longer does, so a request at the exact
// boundary has one answer on every replica.
func (p Package) ActiveAt(t time.Time) bool {
	return !t.Before(p.EffectiveAt) && t.Before(p.ExpiresAt)
}

// Covers reports whether the package's scope includes model.
func (p Package) Covers(model string) bool { return scopeCovers(p.Models, model) }

func scopeCovers(models []string, model string) bool {
	if len(models) == 0 {
		return true
	}
	for _, m := range models {
		if m == model || m == FallbackModel {
			return true
		}
	}
	return false
}

// Status is the package's status at t. Expiry wins over exhaustion so an
// old package reads "expired" whatever is left in it.
func (p Package) Status(t time.Time) string {
	switch {
	case t.Before(p.EffectiveAt):
		return StatusNotEffective
	case !t.Before(p.ExpiresAt):
		return StatusExpired
	case p.TokensRemaining <= 0:
		return StatusExhausted
	}
	return StatusActive
}

// Grant describes a new package.
type Grant struct {
	AccountID   string
	Name        string
	Kind        string
	Tokens      int64
	Models      []string
	PurchasedAt time.Time // zero = now
	EffectiveAt time.Time // zero = PurchasedAt
	ExpiresAt   time.Time // required, after EffectiveAt
	// By, when set, says who grants and why: the grant's audit-log entry
	// (ActionPackageGrant) is written in the grant's own transaction, so
	// no grant can stand without it (docs/design.md §8).
	By *Correction
}

// Store is billing's administrative side: grants, top-ups, prices, and
// the read models (packages, balances, usage, bills). The hot path uses
// Engine instead.
type Store struct {
	db  Ledger
	now func() time.Time
}

// NewStore returns a Store on the ledger. now is the clock (nil =
// time.Now).
func NewStore(db Ledger, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// GrantPackage adds a resource package to an account.
func (s *Store) GrantPackage(ctx context.Context, g Grant) (Package, error) {
	p, _, err := s.grant(ctx, platform.RandomID("pkg_", 10), g, false)
	return p, err
}

// GrantOnce adds a package under a fixed id: a second call with the same
// id grants nothing and reports granted=false. glm serve uses it for the
// default account's welcome package, so replicas starting together (or a
// restart) never give it twice.
func (s *Store) GrantOnce(ctx context.Context, id string, g Grant) (p Package, granted bool, err error) {
	if id == "" {
		return Package{}, false, errors.New("billing: grant: id required")
	}
	return s.grant(ctx, id, g, true)
}

func (s *Store) grant(ctx context.Context, id string, g Grant, once bool) (Package, bool, error) {
	now := s.now()
	if g.AccountID == "" {
		return Package{}, false, errors.New("billing: grant: account required")
	}
	if g.Tokens <= 0 {
		return Package{}, false, errors.New("billing: grant: tokens must be positive")
	}
	if g.Kind == "" {
		g.Kind = KindGift
	}
	if g.Kind != KindGift && g.Kind != KindPurchased {
		return Package{}, false, fmt.Errorf("billing: grant: kind %q is not gift or purchased", g.Kind)
	}
	if g.PurchasedAt.IsZero() {
		g.PurchasedAt = now
	}
	if g.EffectiveAt.IsZero() {
		g.EffectiveAt = g.PurchasedAt
	}
	if !g.ExpiresAt.After(g.EffectiveAt) {
		return Package{}, false, errors.New("billing: grant: expiry must be after the effective time")
	}
	models := normModels(g.Models)
	if g.Name == "" {
		g.Name = fmt.Sprintf("%d tokens", g.Tokens)
	}
	p := Package{
		ID: id, AccountID: g.AccountID, Name: g.Name, Kind: g.Kind, Models: models,
		TokensGranted: g.Tokens, TokensRemaining: g.Tokens, Unleased: g.Tokens,
		PurchasedAt: g.PurchasedAt.UTC(), EffectiveAt: g.EffectiveAt.UTC(), ExpiresAt: g.ExpiresAt.UTC(),
	}
	if g.By != nil {
		if err := g.By.check(); err != nil {
			return Package{}, false, err
		}
	}
	granted := false
	err := s.db.Tx(ctx, func(tx LedgerTx) error {
		// The wallet row exists before the package, so every money
		// transaction for the account can lock that one row first.
		if err := tx.EnsureWallet(ctx, g.AccountID, now); err != nil {
			return err
		}
		ins, err := tx.InsertPackage(ctx, p, now, once)
		if err != nil {
			return err
		}
		granted = ins
		if !ins {
			return nil // already granted under this id
		}
		if err := tx.InsertCredit(ctx, Credit{
			ID: platform.RandomID("cr_", 10), AccountID: p.AccountID, Kind: CreditPackage, Tokens: p.TokensGranted,
			Ref: p.ID, Note: p.Name, CreatedAt: now,
		}); err != nil {
			return err
		}
		if g.By == nil {
			return nil
		}
		return tx.InsertAudit(ctx, AuditEntry{ID: platform.RandomID("au_", 10), At: now, Actor: g.By.Actor,
			Action: ActionPackageGrant, AccountID: p.AccountID, Subject: p.ID, Before: "none", After: PackageState(p),
			Reason: g.By.Reason})
	})
	if err != nil {
		return Package{}, false, err
	}
	return p, granted, nil
}

func normModels(ms []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range ms {
		for _, x := range strings.Split(m, ",") {
			x = strings.TrimSpace(x)
			if x == "" || seen[x] {
				continue
			}
			if x == FallbackModel || strings.EqualFold(x, "all") {
				return nil
			}
			seen[x] = true
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}

// TopUp adds cash to an account's wallet.
func (s *Store) TopUp(ctx context.Context, account string, amount Micros, note string) (Micros, error) {
	_, cash, err := s.topUp(ctx, account, amount, note, nil)
	return cash, err
}

// TopUpBy adds cash like TopUp and writes the audit-log entry saying who
// and why (ActionCashTopUp) in the same transaction; the reason is the
// credit's note.
func (s *Store) TopUpBy(ctx context.Context, account string, amount Micros, c Correction) (AuditEntry, Micros, error) {
	if err := c.check(); err != nil {
		return AuditEntry{}, 0, err
	}
	return s.topUp(ctx, account, amount, c.Reason, &c)
}

func (s *Store) topUp(ctx context.Context, account string, amount Micros, note string, by *Correction) (AuditEntry, Micros, error) {
	if account == "" {
		return AuditEntry{}, 0, errors.New("billing: topup: account required")
	}
	if amount <= 0 {
		return AuditEntry{}, 0, errors.New("billing: topup: amount must be positive")
	}
	now := s.now()
	var e AuditEntry
	err := s.db.Tx(ctx, func(tx LedgerTx) error {
		if err := tx.EnsureWallet(ctx, account, now); err != nil {
			return err
		}
		before, err := tx.LockWallet(ctx, account)
		if err != nil {
			return err
		}
		if err := tx.AddCash(ctx, account, int64(amount), now); err != nil {
			return err
		}
		if err := tx.InsertCredit(ctx, Credit{
			ID: platform.RandomID("cr_", 10), AccountID: account, Kind: CreditTopUp, Micros: int64(amount), Note: note, CreatedAt: now,
		}); err != nil || by == nil {
			return err
		}
		e = AuditEntry{ID: platform.RandomID("au_", 10), At: now, Actor: by.Actor, Action: ActionCashTopUp, AccountID: account,
			Subject: "cash", Before: "unleased " + Micros(before).String(), After: "unleased " + Micros(before+int64(amount)).String(),
			Reason: by.Reason}
		return tx.InsertAudit(ctx, e)
	})
	if err != nil {
		return AuditEntry{}, 0, err
	}
	b, err := s.Balance(ctx, account)
	return e, b.Cash, err
}

// Balance is an account's cash.
type Balance struct {
	AccountID string
	// Cash is what the account can still spend: unleased cash plus cash
	// leased to a process and not yet spent.
	Cash Micros
	// Unleased is the part no process holds.
	Unleased Micros
}

// cashSource is the lease source of an account's cash. Package leases use
// the package id as the source.
func cashSource(account string) string { return "cash:" + account }

// Balance returns the account's cash.
func (s *Store) Balance(ctx context.Context, account string) (Balance, error) {
	b := Balance{AccountID: account}
	cash, err := s.db.Cash(ctx, account)
	if err != nil {
		return b, err
	}
	out, err := s.db.Outstanding(ctx, account)
	if err != nil {
		return b, err
	}
	b.Unleased = Micros(cash)
	b.Cash = Micros(cash + out[cashSource(account)])
	return b, nil
}

// ListPackages returns packages, earliest expiry first (the order they
// pay in); account "" lists every account's.
func (s *Store) ListPackages(ctx context.Context, account string) ([]Package, error) {
	out, err := s.db.Packages(ctx, account)
	if err != nil {
		return nil, err
	}
	leased, err := s.db.Outstanding(ctx, account)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].TokensRemaining = out[i].Unleased + leased[out[i].ID]
	}
	return out, nil
}

// Prices returns the price table, by model.
func (s *Store) Prices(ctx context.Context) ([]Price, error) { return s.db.Prices(ctx) }

// SetPrice stores a model's price. Running engines pick it up on their
// next price refresh; a reservation keeps the price it was made at.
func (s *Store) SetPrice(ctx context.Context, p Price) error {
	if err := checkPrice(p); err != nil {
		return err
	}
	return s.db.PutPrice(ctx, p, s.now())
}

// SetPriceBy stores a model's price like SetPrice and writes the audit-log
// entry (ActionPriceSet, the row before and after) in the same
// transaction.
func (s *Store) SetPriceBy(ctx context.Context, p Price, c Correction) (AuditEntry, error) {
	if err := c.check(); err != nil {
		return AuditEntry{}, err
	}
	if err := checkPrice(p); err != nil {
		return AuditEntry{}, err
	}
	now := s.now()
	var e AuditEntry
	err := s.db.Tx(ctx, func(tx LedgerTx) error {
		before, found, err := tx.ReplacePrice(ctx, p, now)
		if err != nil {
			return err
		}
		was := "no row"
		if found {
			was = PriceState(before)
		}
		e = AuditEntry{ID: platform.RandomID("au_", 10), At: now, Actor: c.Actor, Action: ActionPriceSet, Subject: p.Model,
			Before: was, After: PriceState(p), Reason: c.Reason}
		return tx.InsertAudit(ctx, e)
	})
	return e, err
}

func checkPrice(p Price) error {
	if p.Model == "" {
		return errors.New("billing: price: model required")
	}
	if p.Input < 0 || p.CachedInput < 0 || p.Output < 0 || p.PerCall < 0 || p.Image < 0 {
		return errors.New("billing: price: negative price")
	}
	return nil
}

// PriceState is a price row as the audit log's before and after show it.
func PriceState(p Price) string {
	return fmt.Sprintf("input %s, cached input %s, output %s, per call %s, image %s", p.Input, p.Cached(), p.Output, p.PerCall, p.Image)
}
