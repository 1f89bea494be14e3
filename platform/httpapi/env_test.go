package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/batch"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/tasks"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// env is a whole glm serve API on loopback: real SQLite file, real auth,
// real request-log batcher and task pool, the real backend router, and the
// scripted Zhipu cloud (zhipuaitest) as the only stand-in.
type env struct {
	t      *testing.T
	up     *zhipuaitest.Server
	store  *store.SQL
	auth   *auth.Authenticator
	log    *requestlog.Batcher
	pool   *tasks.Pool
	runner *batch.Runner
	api    *Server
	root   *mux.Mux // what e.http serves: the API, and whatever a test mounts beside it
	http   *httptest.Server
	key    platform.Key
	client *http.Client
}

// proxyConfig is the backends config of an env; taskOptions the parts
// behind the API: the task pool and the metered call service.
type (
	proxyConfig = router.Config
	taskOptions struct {
		tasks.Options
		Calls metered.Options
		// Batches serves the Files and Batch APIs with their workers
		// (batches_test.go).
		Batches bool
	}
)

type envOpt func(*proxyConfig, *Options, *taskOptions)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, up: zhipuaitest.NewServer()}
	t.Cleanup(e.up.Close)
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "glm.db"), store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
	if err := s.CreateAccount(ctx, platform.Account{ID: "acct-1", Name: "default", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.key, _ = platform.NewKey("acct-1", "test", time.Now())
	if err := s.CreateKey(ctx, e.key); err != nil {
		t.Fatal(err)
	}
	cfg := router.Config{Backends: []router.BackendConfig{{Name: "cloud", Type: router.TypeZhipu, BaseURL: e.up.URL(), APIKey: e.up.APIKey}}}
	apiOpts := Options{}
	taskOpts := taskOptions{Options: tasks.Options{Workers: 2, Poll: 20 * time.Millisecond, Lease: 5 * time.Second}}
	for _, o := range opts {
		o(&cfg, &apiOpts, &taskOpts)
	}
	backends, err := router.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.auth = auth.New(s, auth.Options{})
	if apiOpts.Metrics == nil {
		apiOpts.Metrics = NewMetrics()
	}
	e.log = requestlog.New(s, requestlog.Options{Interval: 10 * time.Millisecond, OnCut: apiOpts.Metrics.InputCut})
	co := &taskOpts.Calls
	co.Backend, co.Catalogue, co.Log, co.Metrics, co.Trace = backends, backends, e.log, apiOpts.Metrics, trace
	calls := metered.New(*co)
	taskOpts.Store = s
	taskOpts.Options.Calls = calls
	e.pool = tasks.New(taskOpts.Options)
	e.pool.Start()
	apiOpts.Catalogue, apiOpts.Auth, apiOpts.Tasks, apiOpts.Calls = backends, e.auth, e.pool, calls
	if taskOpts.Batches {
		e.withBatches(&apiOpts, calls)
	}
	e.api = New(apiOpts)
	e.root = mux.New(apiOpts.Now)
	e.root.Mount(e.api)
	e.http = httptest.NewServer(e.root)
	e.client = e.http.Client()
	t.Cleanup(func() {
		e.http.Close()
		_ = e.pool.Shutdown(context.Background())
		if e.runner != nil {
			_ = e.runner.Shutdown(context.Background())
		}
		_ = e.log.Close(context.Background())
		s.Close()
	})
	return e
}

// trace reports the backend that served a call (router.WithTrace).
func trace(ctx context.Context) (context.Context, func() string) {
	ctx, tr := router.WithTrace(ctx)
	return ctx, func() string { return tr.Backend }
}

func (e *env) url(path string) string { return e.http.URL + DefaultPrefix + path }

// do sends a request with the env's key (raw, Bearer) unless auth is given.
func (e *env) do(method, path, body string, authz ...string) *http.Response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url(path), rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if len(authz) > 0 {
		if authz[0] != "" {
			req.Header.Set("Authorization", authz[0])
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+e.key.Full())
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// read returns the body, closing it.
func read(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantError checks status, media type and the V4 envelope's code.
func wantError(t *testing.T, resp *http.Response, status int, code string) zhipuai.ErrorEnvelope {
	t.Helper()
	b := read(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != contentJSON {
		t.Fatalf("Content-Type %q", ct)
	}
	var env zhipuai.ErrorEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	if string(env.Error.Code) != code || env.Error.Message == "" || env.RequestID == "" {
		t.Fatalf("envelope %s, want code %s with a message and request_id", b, code)
	}
	return env
}

// logs flushes the batcher and returns every request-log row.
func (e *env) logs() []platform.RequestLog {
	e.t.Helper()
	if err := e.log.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	rows, err := e.store.ListRequestLogs(context.Background(), platform.RequestLogFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// waitFor polls cond until it holds; the deadline only guards against a
// hang and is not an assertion on speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var _ = bytes.NewReader
