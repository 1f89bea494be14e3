package zhipuai

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/internal/v4auth"
)

// GenerateToken returns the tutorial's JWT for apiKey ("id.secret"):
// header {"alg":"HS256","sign_type":"SIGN","typ":"JWT"}, claims api_key,
// exp = now+ttl and timestamp = now, both in milliseconds (docs/v4.md §2). It is
// the Go form of the tutorial's generate_token(apikey, exp_seconds).
func GenerateToken(apiKey string, ttl time.Duration) (string, error) {
	return generateToken(apiKey, ttl, time.Now())
}

func generateToken(apiKey string, ttl time.Duration, now time.Time) (string, error) {
	id, sec, err := v4auth.SplitKey(apiKey)
	if err != nil {
		return "", fmt.Errorf("zhipuai: invalid API key: %w", err)
	}
	if ttl <= 0 {
		return "", errors.New("zhipuai: token ttl must be positive")
	}
	return v4auth.Sign(id, sec, now, ttl), nil
}

// tokenCache signs a JWT once and hands it out until shortly before it
// expires. The fast path is one atomic load; only a refresh takes the lock,
// so concurrent calls neither sign per request nor sign twice.
type tokenCache struct {
	id     string
	secret secret
	ttl    time.Duration
	margin time.Duration
	now    func() time.Time

	mu    sync.Mutex
	cur   atomic.Pointer[cachedToken]
	signs atomic.Int64 // how many tokens were signed (tests and benchmarks)
}

type cachedToken struct {
	token     string
	refreshAt time.Time
}

func newTokenCache(id, sec string, ttl time.Duration, now func() time.Time) *tokenCache {
	// Refresh 30 s before expiry like the Python SDK (210 s token, reused
	// 180 s), but never wait past half the lifetime of a short token.
	margin := 30 * time.Second
	if margin > ttl/2 {
		margin = ttl / 2
	}
	return &tokenCache{id: id, secret: newSecret(sec), ttl: ttl, margin: margin, now: now}
}

// token returns a valid JWT, signing a new one when needed.
func (t *tokenCache) token() string {
	now := t.now()
	if c := t.cur.Load(); c != nil && now.Before(c.refreshAt) {
		return c.token
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now = t.now()
	if c := t.cur.Load(); c != nil && now.Before(c.refreshAt) {
		return c.token // another goroutine refreshed it meanwhile
	}
	tok := v4auth.Sign(t.id, t.secret.reveal(), now, t.ttl)
	t.signs.Add(1)
	t.cur.Store(&cachedToken{token: tok, refreshAt: now.Add(t.ttl - t.margin)})
	return tok
}

// invalidate drops the cached token (after the server said it expired).
func (t *tokenCache) invalidate(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.cur.Load(); c != nil && c.token == tok {
		t.cur.Store(nil)
	}
}

// authorization returns the Authorization header value: "Bearer <jwt>" by
// default (Python with token cache, Java), "Bearer id.secret" with
// WithRawKey (docs/v4.md §2 table).
func (c *Client) authorization() string {
	if c.rawKey {
		return "Bearer " + c.keyID + "." + c.secret.reveal()
	}
	return "Bearer " + c.tokens.token()
}
