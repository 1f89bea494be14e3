// Package admin owns the operator's two doors: the admin HTTP API
// (api*.go, a handler cmd/glm mounts beside the V4 API or on its own
// listener) and what the `glm accounts|keys|packages|usage` commands
// (cmd/glm) share with it. It holds the JSON views of keys, packages and
// usage rows and the small operations both perform (a new account id, a
// new key), so the CLI's --json output and the API's answers come from one
// definition.
//
// Input validation is here too (validate.go, limits.go): grants, top-ups,
// prices and limit rules are checked by one validator, so the API (which
// answers its 1213/1214 errors) and the commands (which print their
// message) accept exactly the same input.
package admin

import (
	"context"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
)

// NewAccountID is the id given to an account created without one.
func NewAccountID() string { return platform.RandomID("acct_", 8) }

// CreateKey makes a fresh key for accountID and stores it. The caller has
// checked the account; the returned key is the only time its full form
// (Key.Full) is available.
func CreateKey(ctx context.Context, ks platform.KeyStore, accountID, name string, now time.Time) (platform.Key, error) {
	k, err := platform.NewKey(accountID, name, now)
	if err != nil {
		return platform.Key{}, err
	}
	if err := ks.CreateKey(ctx, k); err != nil {
		return platform.Key{}, err
	}
	return k, nil
}

// Key is the JSON form of an API key.
type Key struct {
	ID         string     `json:"id"`
	Key        string     `json:"key,omitempty"` // only when the key is created
	Masked     string     `json:"masked"`
	Name       string     `json:"name"`
	AccountID  string     `json:"account_id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// KeyView is k as JSON; full includes the whole key (at creation only).
func KeyView(k platform.Key, full bool) Key {
	out := Key{ID: k.ID, Masked: k.Masked(), Name: k.Name, AccountID: k.AccountID, CreatedAt: k.CreatedAt}
	if full {
		out.Key = k.Full()
	}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt
		out.LastUsedAt = &t
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		out.RevokedAt = &t
	}
	return out
}

// KeyViews is a key list as JSON, masked; never nil (an empty list is []).
func KeyViews(keys []platform.Key) []Key {
	return views(keys, func(k platform.Key) Key { return KeyView(k, false) })
}

// views maps a list to its JSON form; never nil, so that an empty list is
// [] and not null.
func views[T, V any](in []T, view func(T) V) []V {
	out := make([]V, 0, len(in))
	for _, v := range in {
		out = append(out, view(v))
	}
	return out
}

// Package is the JSON form of a resource package; Status is derived at now.
type Package struct {
	ID              string    `json:"id"`
	AccountID       string    `json:"account_id"`
	Name            string    `json:"name"`
	Type            string    `json:"type"`
	Status          string    `json:"status"`
	Models          []string  `json:"models"`
	TokensGranted   int64     `json:"tokens_granted"`
	TokensRemaining int64     `json:"tokens_remaining"`
	PurchasedAt     time.Time `json:"purchased_at"`
	EffectiveAt     time.Time `json:"effective_at"`
	ExpiresAt       time.Time `json:"expires_at"`
}

// PackageView is p as JSON at now; an all-models scope is [].
func PackageView(p billing.Package, now time.Time) Package {
	m := p.Models
	if m == nil {
		m = []string{}
	}
	return Package{ID: p.ID, AccountID: p.AccountID, Name: p.Name, Type: p.Kind, Status: p.Status(now), Models: m,
		TokensGranted: p.TokensGranted, TokensRemaining: p.TokensRemaining,
		PurchasedAt: p.PurchasedAt, EffectiveAt: p.EffectiveAt, ExpiresAt: p.ExpiresAt}
}

// PackageViews is a package list as JSON at now; never nil.
func PackageViews(ps []billing.Package, now time.Time) []Package {
	return views(ps, func(p billing.Package) Package { return PackageView(p, now) })
}

// Usage is the JSON form of a usage row: amounts in micros, with the parts
// that paid when the row was loaded with them.
type Usage struct {
	RequestID        string         `json:"request_id"`
	AccountID        string         `json:"account_id"`
	KeyID            string         `json:"key_id"`
	Model            string         `json:"model"`
	PromptTokens     int64          `json:"prompt_tokens"`
	CompletionTokens int64          `json:"completion_tokens"`
	Images           int64          `json:"images"`
	CachedTokens     int64          `json:"cached_tokens"`    // part of prompt_tokens
	ReasoningTokens  int64          `json:"reasoning_tokens"` // part of completion_tokens
	Calls            int64          `json:"calls"`
	Outcome          string         `json:"outcome"`
	Estimated        bool           `json:"estimated"`
	CreatedAt        time.Time      `json:"created_at"`
	Charge           billing.Charge `json:"charge"`
	// PriceClass, Rate and Tiers explain the charge (docs/design.md §7):
	// the prices it was charged at and the list price by tier in nanos;
	// "" for rows charged before tiers, which have no rate.
	PriceClass string           `json:"price_class"`
	Rate       *Price           `json:"rate,omitempty"`
	Tiers      billing.TierCost `json:"tiers"`
}

// UsageViews is usage rows as JSON; never nil. Parts are passed as loaded
// (nil stays null).
func UsageViews(rows []billing.UsageRecord) []Usage {
	return views(rows, func(u billing.UsageRecord) Usage {
		v := Usage{RequestID: u.RequestID, AccountID: u.AccountID, KeyID: u.KeyID, Model: u.Model,
			PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, Images: u.Images, Outcome: u.Outcome,
			CachedTokens: u.CachedTokens, ReasoningTokens: u.ReasoningTokens, Calls: u.Calls,
			Estimated: u.Estimated, CreatedAt: u.CreatedAt, Charge: u.Charge, PriceClass: u.Class, Tiers: u.Tiers()}
		if u.Class != "" {
			r := PriceView(u.Rate)
			v.Rate = &r
		}
		return v
	})
}
