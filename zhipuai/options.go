package zhipuai

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Option configures a Client in NewClient.
type Option func(*config) error

// config is what the options build; NewClient turns it into a Client.
type config struct {
	apiKey     *string
	baseURL    *string
	httpClient *http.Client
	timeout    time.Duration
	maxRetries int
	header     http.Header
	rawKey     bool
	tokenTTL   time.Duration
	now        func() time.Time
	sleep      func(ctx context.Context, d time.Duration) error
	logger     *slog.Logger
}

// WithAPIKey sets the "id.secret" API key. Without it NewClient reads
// ZHIPUAI_API_KEY, like the Python SDK.
func WithAPIKey(key string) Option {
	return func(c *config) error { c.apiKey = &key; return nil }
}

// WithBaseURL sets the API base, e.g. "http://127.0.0.1:8080/api/paas/v4".
// A trailing slash is tolerated. Without it NewClient reads ZHIPUAI_BASE_URL
// and falls back to DefaultBaseURL.
func WithBaseURL(u string) Option {
	return func(c *config) error { c.baseURL = &u; return nil }
}

// WithHTTPClient sets the http.Client used for every call (proxies, custom
// transports). Its own Timeout, if any, also applies.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) error {
		if hc == nil {
			return errors.New("zhipuai: WithHTTPClient: nil client")
		}
		c.httpClient = hc
		return nil
	}
}

// WithTimeout bounds each attempt: for ordinary calls the whole exchange,
// for streams the wait for the response headers (a long stream is bounded by
// the caller's ctx only). Default DefaultTimeout, as the Python SDK (docs/v4.md §6).
// Zero disables it.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("zhipuai: WithTimeout: negative duration")
		}
		c.timeout = d
		return nil
	}
}

// WithMaxRetries sets how many times a failed call is retried (default 2,
// like openai-go; 0 disables retries).
func WithMaxRetries(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return errors.New("zhipuai: WithMaxRetries: negative count")
		}
		c.maxRetries = n
		return nil
	}
}

// WithHeader adds a header to every request. Authorization cannot be set
// this way: the client owns it.
func WithHeader(key, value string) Option {
	return func(c *config) error {
		if http.CanonicalHeaderKey(key) == "Authorization" {
			return errors.New("zhipuai: WithHeader: Authorization is set by the client; use WithAPIKey")
		}
		c.header.Add(key, value)
		return nil
	}
}

// WithRawKey sends "Authorization: Bearer id.secret" instead of a JWT, as
// the Python SDK does by default since v2.1 and the OpenAI SDKs always do
// (docs/v4.md §2).
func WithRawKey() Option {
	return func(c *config) error { c.rawKey = true; return nil }
}

// WithTokenTTL sets the lifetime of the JWTs the client signs (default
// DefaultTokenTTL). A token is reused until shortly before it expires.
func WithTokenTTL(ttl time.Duration) Option {
	return func(c *config) error {
		if ttl < 2*time.Second {
			return fmt.Errorf("zhipuai: WithTokenTTL: %v is too short (minimum 2s)", ttl)
		}
		c.tokenTTL = ttl
		return nil
	}
}

// WithClock replaces time.Now for token signing and expiry (for tests).
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("zhipuai: WithClock: nil func")
		}
		c.now = now
		return nil
	}
}

// WithSleep replaces the wait between retries and between async polls (for
// tests, so no real time passes). The function must return ctx.Err() when
// ctx ends first.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *config) error {
		if sleep == nil {
			return errors.New("zhipuai: WithSleep: nil func")
		}
		c.sleep = sleep
		return nil
	}
}

// WithLogger logs retries at debug level (method, path, attempt, status,
// delay — never headers or bodies, so never the key).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.logger = l; return nil }
}

// RequestOption adjusts one call, on top of the client's options:
//
//	client.Chat.Completions.Create(ctx, req, zhipuai.WithRequestHeader("X-Trace", id))
type RequestOption func(*requestConfig)

type requestConfig struct {
	header     http.Header
	maxRetries int
	timeout    time.Duration
	response   **http.Response
}

// WithRequestHeader adds a header to this call only.
func WithRequestHeader(key, value string) RequestOption {
	return func(r *requestConfig) {
		if http.CanonicalHeaderKey(key) == "Authorization" {
			return // owned by the client, see WithHeader
		}
		r.header.Add(key, value)
	}
}

// WithRequestMaxRetries overrides the retry count for this call.
func WithRequestMaxRetries(n int) RequestOption {
	return func(r *requestConfig) {
		if n >= 0 {
			r.maxRetries = n
		}
	}
}

// WithRequestTimeout overrides the per-attempt timeout for this call
// (see WithTimeout).
func WithRequestTimeout(d time.Duration) RequestOption {
	return func(r *requestConfig) {
		if d >= 0 {
			r.timeout = d
		}
	}
}

// WithResponseInto stores the final HTTP response of this call (status and
// headers; its body is already consumed or owned by the Stream).
func WithResponseInto(dst **http.Response) RequestOption {
	return func(r *requestConfig) { r.response = dst }
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
