package zhipuai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

type sleepFunc = func(ctx context.Context, d time.Duration) error

// Backoff between retries: 0.5 s · 2^n capped at 8 s, times a jitter in
// (0.75, 1] — the Python SDK's schedule (docs/v4.md §6) — unless the server says
// otherwise with Retry-After.
const (
	initialRetryDelay = 500 * time.Millisecond
	maxRetryDelay     = 8 * time.Second
	// maxRetryAfter caps a server's Retry-After; a longer wait is not
	// honoured (the normal backoff is used) so one header cannot park a call
	// for hours.
	maxRetryAfter = 60 * time.Second
	// maxResponseBody bounds a non-stream reply (64 embeddings of 2048
	// floats are ~3 MB of JSON).
	maxResponseBody = 64 << 20
)

var userAgent = "glmkit-zhipuai-go/" + Version

// call describes one API call.
type call struct {
	method string
	path   string // relative to the base, with a leading slash
	body   []byte // encoded once so every attempt sends identical bytes
	stream bool
	// contentType is the body's type when it is not JSON (a multipart
	// upload, docs/v4.md §12).
	contentType string
}

// newCall encodes in (nil for a GET) into a call.
func newCall(method, path string, in any) (call, error) {
	c := call{method: method, path: path}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return c, fmt.Errorf("zhipuai: encode request: %w", err)
		}
		c.body = b
	}
	return c, nil
}

// do runs a call and decodes a 2xx JSON reply into out.
func (c *Client) do(ctx context.Context, cl call, out any, opts []RequestOption) error {
	resp, done, err := c.send(ctx, cl, opts)
	if err != nil {
		return err
	}
	defer done()
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("zhipuai: %s %s: %w", cl.method, cl.path, ctx.Err())
		}
		return fmt.Errorf("zhipuai: %s %s: read response: %w", cl.method, cl.path, err)
	}
	if len(body) > maxResponseBody {
		return fmt.Errorf("zhipuai: %s %s: response larger than %d bytes", cl.method, cl.path, maxResponseBody)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("zhipuai: %s %s: decode response (%s): %w", cl.method, cl.path, truncateText(body, 80), err)
	}
	return nil
}

// send runs the attempts of a call until one gets a 2xx response, retrying
// what may be retried (docs/v4.md §6; openai-go's rules). It returns the open
// response and a func to call once its body is consumed. For a stream the
// response is returned as soon as its headers arrive: from then on nothing
// is retried, whatever happens to the body (docs/design.md §3).
func (c *Client) send(ctx context.Context, cl call, opts []RequestOption) (*http.Response, func(), error) {
	rc := requestConfig{header: http.Header{}, maxRetries: c.maxRetries, timeout: c.timeout}
	for _, o := range opts {
		if o != nil {
			o(&rc)
		}
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("zhipuai: %s %s: %w", cl.method, cl.path, err)
		}
		auth := c.authorization()
		resp, done, err := c.attempt(ctx, cl, &rc, auth)
		var (
			lastErr   error
			retryable bool
			header    http.Header
		)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("zhipuai: %s %s: %w", cl.method, cl.path, ctx.Err())
			}
			// Connection errors and per-attempt timeouts are retried, as in
			// the Python SDK. The error names the path, never the key.
			lastErr = fmt.Errorf("zhipuai: %s %s: %w", cl.method, cl.path, err)
			retryable = true
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			if rc.response != nil {
				*rc.response = resp
			}
			return resp, done, nil
		default:
			body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			resp.Body.Close()
			done()
			if rc.response != nil {
				*rc.response = resp
			}
			apiErr := newAPIError(resp.StatusCode, resp.Header, body)
			lastErr, header = apiErr, resp.Header
			retryable = shouldRetry(resp) && !hopeless(resp, apiErr.Code)
			if resp.StatusCode == http.StatusUnauthorized && apiErr.Code == "1003" && !c.rawKey &&
				resp.Header.Get("X-Should-Retry") != "false" {
				// The server thinks our cached token expired (clock skew):
				// sign a fresh one and try again.
				c.tokens.invalidate(strings.TrimPrefix(auth, "Bearer "))
				retryable = true
			}
		}
		if !retryable || attempt >= rc.maxRetries {
			return nil, nil, lastErr
		}
		delay := c.retryDelay(attempt, header)
		status := 0
		var apiErr *APIError
		if errors.As(lastErr, &apiErr) {
			status = apiErr.StatusCode
		}
		c.logger.DebugContext(ctx, "zhipuai: retrying", "method", cl.method, "path", cl.path,
			"attempt", attempt+1, "status", status, "delay", delay)
		if err := c.sleep(ctx, delay); err != nil {
			return nil, nil, fmt.Errorf("zhipuai: %s %s: %w (while waiting to retry after: %v)", cl.method, cl.path, err, lastErr)
		}
	}
}

// attempt sends one HTTP request. The per-attempt timeout covers the whole
// exchange for ordinary calls and only the wait for headers for streams.
func (c *Client) attempt(ctx context.Context, cl call, rc *requestConfig, auth string) (*http.Response, func(), error) {
	actx, cancel := context.WithCancel(ctx)
	var timer *time.Timer
	timedOut := make(chan struct{})
	if rc.timeout > 0 {
		timer = time.AfterFunc(rc.timeout, func() { close(timedOut); cancel() })
	}
	stop := func() {
		if timer != nil {
			timer.Stop()
		}
		cancel()
	}

	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, c.baseURL+cl.path, body)
	if err != nil {
		stop()
		return nil, nil, err
	}
	if cl.body != nil {
		b := cl.body
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		ct := cl.contentType
		if ct == "" {
			ct = "application/json; charset=UTF-8"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range c.header {
		req.Header[k] = append([]string(nil), v...)
	}
	for k, v := range rc.header {
		req.Header[k] = append([]string(nil), v...)
	}
	if req.Header.Get("Accept") == "" {
		if cl.stream {
			req.Header.Set("Accept", "text/event-stream")
		} else {
			req.Header.Set("Accept", "application/json")
		}
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	req.Header.Set("Authorization", auth)

	resp, err := c.httpClient.Do(req)
	if err != nil {
		stop()
		select {
		case <-timedOut:
			return nil, nil, fmt.Errorf("timed out after %v: %w", rc.timeout, context.DeadlineExceeded)
		default:
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // its text repeats the URL; the caller names the path
		}
		return nil, nil, err
	}
	if cl.stream && timer != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Headers are in: from here the stream runs as long as ctx allows —
		// unless the timer already fired, which has cancelled the body.
		if !timer.Stop() {
			resp.Body.Close()
			cancel()
			return nil, nil, fmt.Errorf("timed out after %v: %w", rc.timeout, context.DeadlineExceeded)
		}
	}
	return resp, stop, nil
}

// shouldRetry applies x-should-retry (true forces, false forbids —
// docs/v4.md §6) and otherwise retries 408, 409, 429 and 5xx.
func shouldRetry(resp *http.Response) bool {
	switch strings.ToLower(resp.Header.Get("X-Should-Retry")) {
	case "true":
		return true
	case "false":
		return false
	}
	s := resp.StatusCode
	return s == http.StatusRequestTimeout || s == http.StatusConflict ||
		s == http.StatusTooManyRequests || s >= 500
}

// hopeless reports a 429 whose V4 code says waiting cannot help: account
// state 1110–1121 (1113 = no balance) and spent quotas 1304/1308/1309
// (docs/v4.md §6). The Python SDK retries them anyway, costing the caller ~7 s
// for nothing; an explicit x-should-retry: true still wins.
func hopeless(resp *http.Response, code string) bool {
	if resp.StatusCode != http.StatusTooManyRequests || strings.EqualFold(resp.Header.Get("X-Should-Retry"), "true") {
		return false
	}
	switch code {
	case "1110", "1111", "1112", "1113", "1120", "1121", "1304", "1308", "1309":
		return true
	}
	return false
}

// retryDelay honours Retry-After-Ms / Retry-After (seconds or HTTP date)
// up to maxRetryAfter, else backs off exponentially with jitter.
func (c *Client) retryDelay(attempt int, h http.Header) time.Duration {
	if d, ok := retryAfter(h, c.now()); ok {
		return d
	}
	d := initialRetryDelay << min(attempt, 10)
	if d > maxRetryDelay {
		d = maxRetryDelay
	}
	jitter := 1 - 0.25*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

// retryAfter reads the server's wish. Values outside (0, maxRetryAfter]
// are ignored.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	if h == nil {
		return 0, false
	}
	var d time.Duration
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && finite(ms) {
			d = time.Duration(ms * float64(time.Millisecond))
		}
	} else if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && finite(s) {
			d = time.Duration(s * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	if d <= 0 || d > maxRetryAfter {
		return 0, false
	}
	return d, true
}

// finite rejects NaN, ±Inf and values whose conversion to a Duration would
// overflow.
func finite(f float64) bool { return f == f && f > -1e9 && f < 1e9 }
