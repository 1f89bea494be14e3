package billing

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/store"
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
}

// Store is billing's administrative side: grants, top-ups, prices, and
// the read models (packages, balances, usage, bills). The hot path uses
// Engine instead.
type Store struct {
	db  ledgerDB
	now func() time.Time
}

// NewStore returns a Store on the platform's database handle. now is the
// clock (nil = time.Now).
func NewStore(db *store.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: ledgerDB{db}, now: now}
}

// DB returns the handle the store uses.
func (s *Store) DB() *store.DB { return s.db.DB }

func newID(prefix string) string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("billing: crypto/rand: %v", err))
	}
	return prefix + hex.EncodeToString(b[:])
}

// ensureWallet creates the account's wallet row (cash 0) if missing, so
// every money transaction for an account can lock that one row first.
func (db ledgerDB) ensureWallet(ctx context.Context, tx *sql.Tx, account string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO billing_wallets (account_id, cash_micros, updated_at) VALUES ($1, 0, $2) ON CONFLICT (account_id) DO NOTHING`, account, ms(now))
	if err != nil {
		return fmt.Errorf("billing: wallet: %w", err)
	}
	return nil
}

// GrantPackage adds a resource package to an account.
func (s *Store) GrantPackage(ctx context.Context, g Grant) (Package, error) {
	p, _, err := s.grant(ctx, newID("pkg_"), g, false)
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
	granted := false
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.db.ensureWallet(ctx, tx, g.AccountID, now); err != nil {
			return err
		}
		ins := `INSERT INTO billing_packages (id, account_id, name, kind, models, tokens_granted, tokens_remaining, purchased_at, effective_at, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
		if once {
			ins += ` ON CONFLICT (id) DO NOTHING`
		}
		r, err := tx.ExecContext(ctx, ins,
			p.ID, p.AccountID, p.Name, p.Kind, strings.Join(models, ","), p.TokensGranted, p.TokensGranted,
			ms(p.PurchasedAt), ms(p.EffectiveAt), ms(p.ExpiresAt), ms(now))
		if err != nil {
			return fmt.Errorf("billing: insert package: %w", err)
		}
		if n, err := r.RowsAffected(); err != nil {
			return fmt.Errorf("billing: insert package: %w", err)
		} else if n == 0 {
			granted = false
			return nil // already granted under this id
		}
		granted = true
		_, err = tx.ExecContext(ctx, `INSERT INTO billing_credits (id, account_id, kind, micros, tokens, ref, note, created_at) VALUES ($1, $2, 'package', 0, $3, $4, $5, $6)`,
			newID("cr_"), p.AccountID, p.TokensGranted, p.ID, p.Name, ms(now))
		if err != nil {
			return fmt.Errorf("billing: credit row: %w", err)
		}
		return nil
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
	if account == "" {
		return 0, errors.New("billing: topup: account required")
	}
	if amount <= 0 {
		return 0, errors.New("billing: topup: amount must be positive")
	}
	now := s.now()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO billing_wallets (account_id, cash_micros, updated_at) VALUES ($1, $2, $3) ON CONFLICT (account_id) DO UPDATE SET cash_micros = billing_wallets.cash_micros + excluded.cash_micros, updated_at = excluded.updated_at`,
			account, int64(amount), ms(now)); err != nil {
			return fmt.Errorf("billing: topup: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO billing_credits (id, account_id, kind, micros, tokens, ref, note, created_at) VALUES ($1, $2, 'topup', $3, 0, '', $4, $5)`,
			newID("cr_"), account, int64(amount), note, ms(now))
		if err != nil {
			return fmt.Errorf("billing: credit row: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	b, err := s.Balance(ctx, account)
	return b.Cash, err
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

// outstanding returns, per lease source, what active leases hold and have
// not spent (granted − spent).
func (db ledgerDB) outstanding(ctx context.Context, account string) (map[string]int64, error) {
	q := `SELECT source, SUM(granted - spent) FROM billing_leases WHERE state = 'active'`
	args := []any{}
	if account != "" {
		q += ` AND account_id = ` + arg(&args, account)
	}
	q += ` GROUP BY source`
	rows, err := db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: leases: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var src string
		var n int64
		if err := rows.Scan(&src, &n); err != nil {
			return nil, fmt.Errorf("billing: leases: %w", err)
		}
		out[src] = n
	}
	return out, rows.Err()
}

// cashSource is the lease source of an account's cash. Package leases use
// the package id as the source.
func cashSource(account string) string { return "cash:" + account }

// Balance returns the account's cash.
func (s *Store) Balance(ctx context.Context, account string) (Balance, error) {
	b := Balance{AccountID: account}
	var cash int64
	err := s.db.SQL.QueryRowContext(ctx, `SELECT cash_micros FROM billing_wallets WHERE account_id = $1`, account).Scan(&cash)
	if err != nil && !isNoRows(err) {
		return b, fmt.Errorf("billing: balance: %w", err)
	}
	out, err := s.db.outstanding(ctx, account)
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
	q := `SELECT id, account_id, name, kind, models, tokens_granted, tokens_remaining, purchased_at, effective_at, expires_at FROM billing_packages`
	var args []any
	if account != "" {
		q += ` WHERE account_id = ` + arg(&args, account)
	}
	q += ` ORDER BY account_id, expires_at, id`
	rows, err := s.db.SQL.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("billing: list packages: %w", err)
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		var p Package
		var models string
		var pa, ea, xa int64
		if err := rows.Scan(&p.ID, &p.AccountID, &p.Name, &p.Kind, &models, &p.TokensGranted, &p.Unleased, &pa, &ea, &xa); err != nil {
			return nil, fmt.Errorf("billing: list packages: %w", err)
		}
		if models != "" {
			p.Models = strings.Split(models, ",")
		}
		p.PurchasedAt, p.EffectiveAt, p.ExpiresAt = fromMS(pa), fromMS(ea), fromMS(xa)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("billing: list packages: %w", err)
	}
	leased, err := s.db.outstanding(ctx, account)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].TokensRemaining = out[i].Unleased + leased[out[i].ID]
	}
	return out, nil
}

// Prices returns the price table, by model.
func (s *Store) Prices(ctx context.Context) ([]Price, error) { return s.db.prices(ctx) }

func (db ledgerDB) prices(ctx context.Context) ([]Price, error) {
	rows, err := db.SQL.QueryContext(ctx, `SELECT model, input_micros, output_micros, image_micros FROM billing_prices ORDER BY model`)
	if err != nil {
		return nil, fmt.Errorf("billing: prices: %w", err)
	}
	defer rows.Close()
	var out []Price
	for rows.Next() {
		var p Price
		var in, o, im int64
		if err := rows.Scan(&p.Model, &in, &o, &im); err != nil {
			return nil, fmt.Errorf("billing: prices: %w", err)
		}
		p.Input, p.Output, p.Image = Micros(in), Micros(o), Micros(im)
		out = append(out, p)
	}
	return out, rows.Err()
}

// SetPrice stores a model's price. Running engines pick it up on their
// next price refresh; a reservation keeps the price it was made at.
func (s *Store) SetPrice(ctx context.Context, p Price) error {
	if p.Model == "" {
		return errors.New("billing: price: model required")
	}
	if p.Input < 0 || p.Output < 0 || p.Image < 0 {
		return errors.New("billing: price: negative price")
	}
	_, err := s.db.SQL.ExecContext(ctx, `INSERT INTO billing_prices (model, input_micros, output_micros, image_micros, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (model) DO UPDATE SET input_micros = excluded.input_micros, output_micros = excluded.output_micros, image_micros = excluded.image_micros, updated_at = excluded.updated_at`,
		p.Model, int64(p.Input), int64(p.Output), int64(p.Image), ms(s.now()))
	if err != nil {
		return fmt.Errorf("billing: set price: %w", err)
	}
	return nil
}
