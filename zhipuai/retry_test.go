package zhipuai

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests in this file drive the retry loop through a scripted
// http.RoundTripper (the one stand-in the house rules allow for retry and
// cancel timing) and an injected sleep, so no real time passes.

const testKey = "0123456789abcdef0123456789abcdef.S3cretS3cretS3cr"

// fakeRT answers each attempt with the next scripted function.
type fakeRT struct {
	mu     sync.Mutex
	steps  []func(*http.Request) (*http.Response, error)
	bodies [][]byte
	reqs   []*http.Request
}

func (f *fakeRT) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	f.bodies = append(f.bodies, body)
	f.reqs = append(f.reqs, r)
	n := len(f.reqs)
	if n > len(f.steps) {
		f.mu.Unlock()
		return nil, fmt.Errorf("fakeRT: unexpected attempt %d", n)
	}
	step := f.steps[n-1]
	f.mu.Unlock()
	return step(r)
}

func (f *fakeRT) attempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func respond(status int, body string, header ...string) func(*http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		h := http.Header{"Content-Type": {"application/json; charset=UTF-8"}}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
}

func connErr(err error) func(*http.Request) (*http.Response, error) {
	return func(*http.Request) (*http.Response, error) { return nil, err }
}

const okChat = `{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`

func errBody(code, msg string) string {
	return `{"error":{"code":"` + code + `","message":"` + msg + `"}}`
}

// sleeps records the waits the client asked for.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func newTestClient(t *testing.T, rt http.RoundTripper, sl *sleeps, opts ...Option) *Client {
	t.Helper()
	base := []Option{
		WithAPIKey(testKey),
		WithBaseURL("http://upstream.test/api/paas/v4"),
		WithHTTPClient(&http.Client{Transport: rt}),
		WithSleep(sl.sleep),
	}
	c, err := NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func chatReq() *ChatCompletionRequest {
	return &ChatCompletionRequest{Model: "glm-4", Messages: []Message{UserMessage("tell me a joke")}}
}

func TestRetryStatuses(t *testing.T) {
	for _, tc := range []struct {
		status int
		retry  bool
	}{
		{408, true}, {409, true}, {429, true}, {500, true}, {502, true}, {503, true},
		{400, false}, {401, false}, {403, false}, {404, false}, {422, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
				respond(tc.status, errBody("1302", "busy")),
				respond(tc.status, errBody("1302", "busy")),
				respond(tc.status, errBody("1302", "busy")),
			}}
			sl := &sleeps{}
			c := newTestClient(t, rt, sl)
			_, err := c.Chat.Completions.Create(context.Background(), chatReq())
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Code != "1302" {
				t.Fatalf("err = %v, want APIError %d 1302", err, tc.status)
			}
			want := 1
			if tc.retry {
				want = 1 + DefaultMaxRetries
			}
			if rt.attempts() != want {
				t.Fatalf("attempts = %d, want %d", rt.attempts(), want)
			}
			if len(sl.d) != want-1 {
				t.Fatalf("sleeps = %v, want %d", sl.d, want-1)
			}
		})
	}
}

func TestRetryThenSuccessAndBackoffGrows(t *testing.T) {
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		respond(500, errBody("500", "internal")),
		respond(503, "upstream unavailable"),
		respond(429, errBody("1302", "busy")),
		respond(200, okChat),
	}}
	sl := &sleeps{}
	c := newTestClient(t, rt, sl, WithMaxRetries(3))
	resp, err := c.Chat.Completions.Create(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "hi" {
		t.Fatalf("content = %q", resp.Choices[0].Message.Content)
	}
	if len(sl.d) != 3 {
		t.Fatalf("sleeps = %v", sl.d)
	}
	// 0.5 s, 1 s, 2 s with jitter in (0.75, 1].
	for i, base := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second} {
		if d := sl.d[i]; d <= base*3/4 || d > base {
			t.Errorf("sleep %d = %v, want in (%v, %v]", i, d, base*3/4, base)
		}
	}
}

func TestBackoffCapped(t *testing.T) {
	c := &Client{now: time.Now}
	for attempt := 0; attempt < 70; attempt++ {
		if d := c.retryDelay(attempt, nil); d <= 0 || d > maxRetryDelay {
			t.Fatalf("attempt %d: delay %v out of (0, %v]", attempt, d, maxRetryDelay)
		}
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	now := time.Date(2024, 2, 3, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		header []string
		want   time.Duration // 0: normal backoff
	}{
		{"seconds", []string{"Retry-After", "3"}, 3 * time.Second},
		{"fraction", []string{"Retry-After", "1.5"}, 1500 * time.Millisecond},
		{"date", []string{"Retry-After", now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{"ms", []string{"Retry-After-Ms", "250"}, 250 * time.Millisecond},
		{"too long", []string{"Retry-After", "3600"}, 0},
		{"past date", []string{"Retry-After", now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"garbage", []string{"Retry-After", "soon"}, 0},
		{"nan", []string{"Retry-After", "NaN"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
				respond(429, errBody("1302", "busy"), tc.header...),
				respond(200, okChat),
			}}
			sl := &sleeps{}
			c := newTestClient(t, rt, sl, WithClock(func() time.Time { return now }))
			if _, err := c.Chat.Completions.Create(context.Background(), chatReq()); err != nil {
				t.Fatal(err)
			}
			if len(sl.d) != 1 {
				t.Fatalf("sleeps = %v", sl.d)
			}
			got := sl.d[0]
			if tc.want != 0 && got != tc.want {
				t.Fatalf("slept %v, want %v", got, tc.want)
			}
			if tc.want == 0 && (got <= 375*time.Millisecond || got > 500*time.Millisecond) {
				t.Fatalf("slept %v, want the normal first backoff", got)
			}
		})
	}
}

func TestShouldRetryHeader(t *testing.T) {
	t.Run("true forces", func(t *testing.T) {
		rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
			respond(400, errBody("1214", "bad"), "X-Should-Retry", "true"),
			respond(200, okChat),
		}}
		c := newTestClient(t, rt, &sleeps{})
		if _, err := c.Chat.Completions.Create(context.Background(), chatReq()); err != nil {
			t.Fatal(err)
		}
		if rt.attempts() != 2 {
			t.Fatalf("attempts = %d, want 2", rt.attempts())
		}
	})
	t.Run("false forbids", func(t *testing.T) {
		rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
			respond(503, errBody("500", "down"), "x-should-retry", "false"),
			respond(200, okChat),
		}}
		c := newTestClient(t, rt, &sleeps{})
		_, err := c.Chat.Completions.Create(context.Background(), chatReq())
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
			t.Fatalf("err = %v", err)
		}
		if rt.attempts() != 1 {
			t.Fatalf("attempts = %d, want 1", rt.attempts())
		}
	})
}

func TestRequestMaxRetriesOverride(t *testing.T) {
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		respond(500, errBody("500", "x")), respond(500, errBody("500", "x")),
		respond(500, errBody("500", "x")), respond(500, errBody("500", "x")),
	}}
	c := newTestClient(t, rt, &sleeps{})
	_, err := c.Chat.Completions.Create(context.Background(), chatReq(), WithRequestMaxRetries(0))
	if err == nil || rt.attempts() != 1 {
		t.Fatalf("err = %v, attempts = %d, want 1 attempt", err, rt.attempts())
	}
	_, _ = c.Chat.Completions.Create(context.Background(), chatReq(), WithRequestMaxRetries(2))
	if rt.attempts() != 4 {
		t.Fatalf("attempts = %d, want 1+3", rt.attempts())
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		respond(503, errBody("500", "down")),
		respond(200, okChat),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var slept int
	c := newTestClient(t, rt, &sleeps{}, WithSleep(func(ctx context.Context, d time.Duration) error {
		slept++
		cancel() // the caller gives up while the client waits
		<-ctx.Done()
		return ctx.Err()
	}))
	_, err := c.Chat.Completions.Create(ctx, chatReq())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if rt.attempts() != 1 || slept != 1 {
		t.Fatalf("attempts = %d, sleeps = %d; want 1, 1", rt.attempts(), slept)
	}
	// The error still says what failed before.
	if !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want it to mention the 503", err)
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	rt := &fakeRT{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := newTestClient(t, rt, &sleeps{})
	_, err := c.Chat.Completions.Create(ctx, chatReq())
	if !errors.Is(err, context.Canceled) || rt.attempts() != 0 {
		t.Fatalf("err = %v, attempts = %d", err, rt.attempts())
	}
}

func TestBodyResentIdentically(t *testing.T) {
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		connErr(errors.New("connection reset by peer")),
		respond(502, "<html>bad gateway</html>"),
		respond(200, okChat),
	}}
	c := newTestClient(t, rt, &sleeps{})
	req := chatReq()
	req.Temperature = Ptr(0.9)
	if _, err := c.Chat.Completions.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if len(rt.bodies) != 3 {
		t.Fatalf("bodies = %d", len(rt.bodies))
	}
	if len(rt.bodies[0]) == 0 {
		t.Fatal("empty body")
	}
	for i := 1; i < 3; i++ {
		if !bytes.Equal(rt.bodies[i], rt.bodies[0]) {
			t.Fatalf("attempt %d sent %s, first sent %s", i+1, rt.bodies[i], rt.bodies[0])
		}
	}
	for _, r := range rt.reqs {
		if r.GetBody == nil {
			t.Fatal("request without GetBody cannot be replayed by net/http")
		}
	}
}

func TestConnectionErrorWrappedWithoutKey(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){connErr(cause), connErr(cause), connErr(cause)}}
	c := newTestClient(t, rt, &sleeps{})
	_, err := c.Chat.Completions.Create(context.Background(), chatReq())
	if !errors.Is(err, cause) {
		t.Fatalf("err = %v, want it to wrap the cause", err)
	}
	if rt.attempts() != 3 {
		t.Fatalf("attempts = %d, want 3", rt.attempts())
	}
	assertNoSecret(t, err.Error())
	assertNoSecret(t, fmt.Sprintf("%+v %#v", err, err))
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	_, sec, _ := strings.Cut(testKey, ".")
	if strings.Contains(s, testKey) || strings.Contains(s, sec) {
		t.Fatalf("output leaks the API key: %s", s)
	}
}

// A stream whose body fails after the 200 is never retried.
func TestNoRetryAfterStreamStart(t *testing.T) {
	streamCut := func(r *http.Request) (*http.Response, error) {
		body := io.MultiReader(
			strings.NewReader(`data: {"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"土"}}]}`+"\n\n"),
			errReader{errors.New("connection reset by peer")},
		)
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}},
			Body: io.NopCloser(body), Request: r}, nil
	}
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){streamCut, respond(200, okChat)}}
	c := newTestClient(t, rt, &sleeps{})
	s, err := c.Chat.Completions.Stream(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got string
	for s.Next() {
		got += s.Current().Choices[0].Delta.Content
	}
	if got != "土" || s.Err() == nil || !strings.Contains(s.Err().Error(), "connection reset") {
		t.Fatalf("got %q, err %v", got, s.Err())
	}
	if rt.attempts() != 1 {
		t.Fatalf("attempts = %d, want 1 (no retry after the stream started)", rt.attempts())
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// A stream that fails before its 200 is retried like any call.
func TestStreamRetriedBeforeStart(t *testing.T) {
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		respond(429, errBody("1302", "busy"), "Retry-After", "1"),
		respond(200, "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"finish_reason\":\"stop\",\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n"),
	}}
	sl := &sleeps{}
	c := newTestClient(t, rt, sl)
	s, err := c.Chat.Completions.Stream(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := 0
	for s.Next() {
		n++
	}
	if s.Err() != nil || n != 1 || rt.attempts() != 2 || len(sl.d) != 1 || sl.d[0] != time.Second {
		t.Fatalf("err %v, chunks %d, attempts %d, sleeps %v", s.Err(), n, rt.attempts(), sl.d)
	}
	if got := rt.reqs[1].Header.Get("Accept"); got != "text/event-stream" {
		t.Fatalf("Accept = %q", got)
	}
	if !bytes.Contains(rt.bodies[1], []byte(`"stream":true`)) {
		t.Fatalf("body %s lacks stream:true", rt.bodies[1])
	}
}

// A 401 1003 (token expired on the server's clock) re-signs and retries.
func TestExpiredTokenResigned(t *testing.T) {
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		respond(401, errBody("1003", "Authorization Token已经过期")),
		respond(200, okChat),
	}}
	clock := time.Unix(1_700_000_000, 0)
	c := newTestClient(t, rt, &sleeps{}, WithClock(func() time.Time { return clock }))
	c.tokens.now = func() time.Time { clock = clock.Add(time.Millisecond); return clock }
	if _, err := c.Chat.Completions.Create(context.Background(), chatReq()); err != nil {
		t.Fatal(err)
	}
	a1, a2 := rt.reqs[0].Header.Get("Authorization"), rt.reqs[1].Header.Get("Authorization")
	if a1 == a2 || c.tokens.signs.Load() != 2 {
		t.Fatalf("token not re-signed: signs = %d", c.tokens.signs.Load())
	}
}

func TestPerAttemptTimeoutRetried(t *testing.T) {
	hang := func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done() // an upstream that never answers
		return nil, r.Context().Err()
	}
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){hang, respond(200, okChat)}}
	c := newTestClient(t, rt, &sleeps{}, WithTimeout(time.Millisecond))
	if _, err := c.Chat.Completions.Create(context.Background(), chatReq()); err != nil {
		t.Fatal(err)
	}
	if rt.attempts() != 2 {
		t.Fatalf("attempts = %d", rt.attempts())
	}
}

func TestRequestHeadersAndResponseInto(t *testing.T) {
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){respond(200, okChat, "X-Request-Id", "r1")}}
	c := newTestClient(t, rt, &sleeps{}, WithHeader("X-Client", "a"))
	var resp *http.Response
	_, err := c.Chat.Completions.Create(context.Background(), chatReq(),
		WithRequestHeader("X-Trace", "t1"), WithRequestHeader("Authorization", "stolen"), WithResponseInto(&resp))
	if err != nil {
		t.Fatal(err)
	}
	h := rt.reqs[0].Header
	if h.Get("X-Client") != "a" || h.Get("X-Trace") != "t1" || !strings.HasPrefix(h.Get("Authorization"), "Bearer ey") {
		t.Fatalf("headers = %v", h)
	}
	if h.Get("Content-Type") != "application/json; charset=UTF-8" || h.Get("Accept") != "application/json" {
		t.Fatalf("headers = %v", h)
	}
	if resp == nil || resp.Header.Get("X-Request-Id") != "r1" {
		t.Fatal("WithResponseInto did not store the response")
	}
	if got := rt.reqs[0].URL.String(); got != "http://upstream.test/api/paas/v4/chat/completions" {
		t.Fatalf("url = %s", got)
	}
}

func TestRequestTimeoutOverride(t *testing.T) {
	hang := func(r *http.Request) (*http.Response, error) {
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){hang, respond(200, okChat)}}
	c := newTestClient(t, rt, &sleeps{}, WithTimeout(0)) // no client-wide timeout
	if _, err := c.Chat.Completions.Create(context.Background(), chatReq(), WithRequestTimeout(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if rt.attempts() != 2 {
		t.Fatalf("attempts = %d, want the timed-out attempt retried", rt.attempts())
	}
}

func TestRetriesLoggedWithoutKey(t *testing.T) {
	var logs bytes.Buffer
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		respond(503, errBody("500", "down")), respond(200, okChat),
	}}
	c := newTestClient(t, rt, &sleeps{}, WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if _, err := c.Chat.Completions.Create(context.Background(), chatReq()); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "retrying") || !strings.Contains(out, "status=503") || !strings.Contains(out, "path=/chat/completions") {
		t.Fatalf("log = %s", out)
	}
	assertNoSecret(t, out)
}

// The per-attempt timeout covers a stream's wait for headers only: a
// stream that outlives it keeps flowing.
func TestStreamOutlivesAttemptTimeout(t *testing.T) {
	pr, pw := io.Pipe()
	rt := &fakeRT{steps: []func(*http.Request) (*http.Response, error){
		func(r *http.Request) (*http.Response, error) {
			// Like net/http, the body dies with the request's context.
			context.AfterFunc(r.Context(), func() { pr.CloseWithError(r.Context().Err()) })
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: pr, Request: r}, nil
		},
	}}
	// The attempt timeout is generous so that getting the headers never
	// exceeds it, even on a loaded machine; the write comes well after it.
	c := newTestClient(t, rt, &sleeps{}, WithTimeout(50*time.Millisecond))
	s, err := c.Chat.Completions.Stream(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		// Well past the attempt timeout (a wait, not an assertion on time: a
		// bug shows as a failed read).
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(pw, "data: {\"id\":\"1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\ndata: [DONE]\n\n")
		pw.Close()
	}()
	var got string
	for s.Next() {
		got += s.Current().Choices[0].Delta.Content
	}
	if got != "late" || s.Err() != nil {
		t.Fatalf("got %q, err %v", got, s.Err())
	}
}
