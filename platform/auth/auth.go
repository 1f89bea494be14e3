// Package auth turns an Authorization header into the account and key
// that sent it: the four header forms and HS256 JWTs of docs/v4.md §2 (parsed and
// verified by internal/v4auth), against keys held in an in-memory cache
// loaded from the store.
//
// Revocation bound: a revoke through Authenticator.Revoke takes effect at
// once in this process; another process (a second replica, or `glm keys
// revoke` against the same database) is seen within Recheck (default 5 s),
// because a cached key is re-read from the store when its entry is older
// than that. A disabled account's keys are refused by the same rule
// (AccountChanged applies it at once in this process).
package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/glmkit/glmkit/internal/v4auth"
	"github.com/glmkit/glmkit/platform"
)

// DefaultRecheck is how old a cached key may get before it is re-read.
const DefaultRecheck = 5 * time.Second

// negativeTTL is how long an unknown key id is remembered; short, so a key
// created by the CLI while the server runs works within a second.
const negativeTTL = time.Second

// maxNegative bounds the unknown-id cache against floods of random ids.
const maxNegative = 10_000

// Principal is who sent a request (declared in platform, so the HTTP
// layer depends on an interface, not on this package).
type Principal = platform.Principal

// DefaultMaxTokenTTL bounds how long a signed token may live: the SDKs
// sign for 3–30 minutes (docs/v4.md §2); a day leaves room for scripts
// that sign once per run, and a leaked token stops working within it.
const DefaultMaxTokenTTL = 24 * time.Hour

// Options configure an Authenticator.
type Options struct {
	// Recheck is the longest time a cached key is trusted without reading
	// the store again (default DefaultRecheck).
	Recheck time.Duration
	// MaxTokenTTL refuses a JWT whose exp lies further ahead than this
	// (1004) or whose timestamp claim is older than this (1003); default
	// DefaultMaxTokenTTL.
	MaxTokenTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Authenticator checks credentials against keys in a store.
type Authenticator struct {
	keys    platform.KeyStore
	recheck time.Duration
	maxTTL  time.Duration
	now     func() time.Time

	mu       sync.RWMutex
	cache    map[string]*entry
	negative int
	// tokens remembers JWTs already verified (clients reuse one for 2–30
	// minutes, docs/v4.md §2), so the HMAC and JSON work is done once per token.
	// The key is still looked up per request: a revoke applies at once.
	tokens map[string]tokenEntry
}

type tokenEntry struct {
	keyID string
	expMS float64
}

// maxTokens bounds the verified-token cache.
const maxTokens = 10_000

type entry struct {
	key     platform.Key // Secret is the plaintext secret
	missing bool
	checked time.Time
}

// New returns an Authenticator over keys.
func New(keys platform.KeyStore, opts Options) *Authenticator {
	if opts.Recheck <= 0 {
		opts.Recheck = DefaultRecheck
	}
	if opts.MaxTokenTTL <= 0 {
		opts.MaxTokenTTL = DefaultMaxTokenTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Authenticator{keys: keys, recheck: opts.Recheck, maxTTL: opts.MaxTokenTTL, now: opts.Now,
		cache: map[string]*entry{}, tokens: map[string]tokenEntry{}}
}

// Recheck reports the cross-process revocation bound.
func (a *Authenticator) Recheck() time.Duration { return a.recheck }

// Authenticate checks an Authorization header value. Errors are
// *platform.Error with codes 1001–1004 (HTTP 401), or 500 when the store
// fails.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (Principal, error) {
	cred, err := v4auth.ParseAuthorization(header)
	if err != nil {
		return Principal{}, authError(err)
	}
	// Every key this server issues has a 32-hex id; anything else cannot
	// match and is refused without touching the store.
	if !platform.ValidKeyID(cred.ID) {
		return Principal{}, authError(v4auth.ErrUnknownKey)
	}
	k, err := a.lookup(ctx, cred.ID)
	if err != nil {
		return Principal{}, err
	}
	if k != nil && k.AccountDisabled && !k.Revoked() {
		return Principal{}, &platform.Error{Code: platform.CodeAuthFailed,
			Message: "the account of this API key is disabled; ask the platform's operator"}
	}
	if k == nil || k.Revoked() {
		// Do the work a wrong secret costs (an HMAC, a constant-time
		// compare), so the answer's timing does not tell an unknown or
		// revoked key id from a known one.
		_ = v4auth.Verify(cred, decoySecret, a.now())
		return Principal{}, authError(v4auth.ErrUnknownKey)
	}
	now := a.now()
	if cred.IsJWT() {
		a.mu.RLock()
		te, ok := a.tokens[cred.Token]
		a.mu.RUnlock()
		if ok && te.keyID == k.ID {
			if te.expMS < float64(now.UnixMilli()) {
				return Principal{}, authError(v4auth.ErrExpired)
			}
			return Principal{AccountID: k.AccountID, KeyID: k.ID}, nil
		}
	}
	if err := v4auth.Verify(cred, k.Secret, now); err != nil {
		return Principal{}, authError(err)
	}
	if cred.IsJWT() {
		exp, issued, ok := tokenTimes(cred.Token)
		if ok {
			if err := a.checkLifetime(exp, issued, now); err != nil {
				return Principal{}, err
			}
			a.mu.Lock()
			if len(a.tokens) >= maxTokens {
				clear(a.tokens)
			}
			a.tokens[cred.Token] = tokenEntry{keyID: k.ID, expMS: exp}
			a.mu.Unlock()
		}
	}
	return Principal{AccountID: k.AccountID, KeyID: k.ID}, nil
}

// lookup returns the key (nil when unknown) from the cache, re-reading the
// store for entries older than their bound.
func (a *Authenticator) lookup(ctx context.Context, id string) (*platform.Key, error) {
	now := a.now()
	a.mu.RLock()
	e := a.cache[id]
	a.mu.RUnlock()
	if e != nil {
		ttl := a.recheck
		if e.missing {
			ttl = negativeTTL
		}
		if now.Sub(e.checked) < ttl {
			if e.missing {
				return nil, nil
			}
			return &e.key, nil
		}
	}
	k, err := a.keys.GetKey(ctx, id)
	switch {
	case errors.Is(err, platform.ErrNotFound):
		a.store(id, &entry{missing: true, checked: now})
		return nil, nil
	case err != nil:
		return nil, platform.Wrap(platform.CodeInternal, "internal error", fmt.Errorf("auth: load key: %w", err))
	}
	a.store(id, &entry{key: k, checked: now})
	return &k, nil
}

func (a *Authenticator) store(id string, e *entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.cache[id]; old != nil && old.missing {
		a.negative--
	}
	if e.missing {
		if a.negative >= maxNegative {
			for k, v := range a.cache {
				if v.missing {
					delete(a.cache, k)
				}
			}
			a.negative = 0
		}
		a.negative++
	}
	a.cache[id] = e
}

// Invalidate drops a key from the cache; the next request re-reads it.
func (a *Authenticator) Invalidate(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.cache[id]; old != nil && old.missing {
		a.negative--
	}
	delete(a.cache, id)
}

// AccountChanged drops every cached key of an account, so a disable or
// enable applies to the next request in this process; other processes see
// it within Recheck.
func (a *Authenticator) AccountChanged(accountID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, e := range a.cache {
		if !e.missing && e.key.AccountID == accountID {
			delete(a.cache, id)
		}
	}
}

// Revoke revokes a key in the store and in this process at once.
func (a *Authenticator) Revoke(ctx context.Context, id string) error {
	if err := a.keys.RevokeKey(ctx, id, a.now()); err != nil {
		return err
	}
	a.Invalidate(id)
	return nil
}

// decoySecret is what an unknown key's credential is checked against.
const decoySecret = "glmkit-decoy-secret0"

// checkLifetime refuses a verified token that lives longer than the
// server allows: exp too far ahead (1004), or issued too long ago (1003).
// The JS clients' microsecond values are normalised first (docs/v4.md §10).
func (a *Authenticator) checkLifetime(expMS, issuedMS float64, now time.Time) error {
	nowMS := float64(now.UnixMilli())
	maxMS := float64(a.maxTTL.Milliseconds())
	if expMS-nowMS > maxMS {
		return &platform.Error{Code: platform.CodeTokenVerify,
			Message: fmt.Sprintf("token lifetime is longer than this server allows (%s); sign one that expires sooner", a.maxTTL)}
	}
	if issuedMS > 0 && nowMS-issuedMS > maxMS {
		return &platform.Error{Code: platform.CodeTokenExpired,
			Message: fmt.Sprintf("token was signed more than %s ago; sign a new one", a.maxTTL)}
	}
	return nil
}

// tokenTimes reads the expiry and the issue time (the timestamp claim,
// 0 when absent), both in milliseconds, of a token that v4auth.Verify has
// just accepted.
func tokenTimes(tok string) (expMS, issuedMS float64, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return 0, 0, false
	}
	var c struct {
		Exp       json.Number `json:"exp"`
		Timestamp json.Number `json:"timestamp"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return 0, 0, false
	}
	exp, err := c.Exp.Float64()
	if err != nil {
		return 0, 0, false
	}
	ts, _ := c.Timestamp.Float64()
	if ts > 0 {
		issuedMS = v4auth.ExpiryMillis(ts) // the same unit rules as exp
	}
	return v4auth.TokenExpiryMillis(exp, ts), issuedMS, true
}

// authError maps a v4auth error to the V4 envelope's code and a message
// that never echoes the credential.
func authError(err error) *platform.Error {
	code := v4auth.Code(err)
	var msg string
	switch code {
	case platform.CodeNoAuth:
		msg = "no Authorization header; send your API key as \"Authorization: Bearer <id.secret>\" or a signed token"
	case platform.CodeTokenExpired:
		msg = "token expired; sign a new one"
	case platform.CodeTokenVerify:
		msg = "token signature verification failed"
	default:
		code = platform.CodeInvalidToken
		msg = "invalid API key or token"
	}
	return &platform.Error{Code: code, Message: msg, Err: err}
}
