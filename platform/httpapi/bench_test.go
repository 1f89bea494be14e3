package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/v4auth"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/tasks"
	"github.com/glmkit/glmkit/zhipuai"
)

// instantUpstream answers every chat at once with canned bytes: the
// benchmark then measures glm serve's own hot path (auth, decode,
// validate, limits, reserve, settle, request log), not a model.
type instantUpstream struct{ body []byte }

func (instantUpstream) Name() string { return "instant" }

var instantReply = &zhipuai.ChatCompletion{ID: "1", Created: 1, Model: "glm-4",
	Choices: []zhipuai.Choice{{FinishReason: "stop", Message: zhipuai.CompletionMessage{Role: "assistant", Content: "hi"}}},
	Usage:   zhipuai.Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}}

func (u instantUpstream) Chat(context.Context, platform.ChatRequest) (*zhipuai.ChatCompletion, []byte, error) {
	return instantReply, u.body, nil
}
func (instantUpstream) ChatStream(context.Context, platform.ChatRequest) (platform.Stream, error) {
	return nil, platform.Errorf(platform.CodeUnsupportedMode, "no streams")
}
func (instantUpstream) Model(name string) (platform.ModelInfo, bool) {
	return platform.LookupZhipuModel(name)
}
func (instantUpstream) Models() []platform.ModelInfo { return platform.ZhipuModels() }

// benchRouter is what a benchmark serves from: chat and the catalogue.
type benchRouter interface {
	platform.ChatBackend
	platform.Catalogue
}

func benchServer(b *testing.B, meter platform.Meter) (*Server, platform.Key) {
	body, _ := json.Marshal(instantReply)
	return benchServerWith(b, instantUpstream{body}, meter)
}

// benchKeyStore is a SQLite store in the benchmark's temp directory with
// account "a" and one key of it.
func benchKeyStore(b *testing.B) (*store.SQL, platform.Key) {
	b.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, filepath.Join(b.TempDir(), "glm.db"), store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	s.CreateAccount(ctx, platform.Account{ID: "a", CreatedAt: time.Now()})
	k, _ := platform.NewKey("a", "", time.Now())
	s.CreateKey(ctx, k)
	return s, k
}

// benchServerWith is an API on a fresh SQLite file with one account "a"
// and one key, the request log on and every call going to router,
// metered by meter (nil: the no-op meter).
func benchServerWith(b *testing.B, router benchRouter, meter platform.Meter) (*Server, platform.Key) {
	b.Helper()
	ctx := context.Background()
	s, k := benchKeyStore(b)
	log := requestlog.New(s, requestlog.Options{})
	b.Cleanup(func() { log.Close(ctx) })
	metrics := NewMetrics()
	calls := metered.New(metered.Options{Backend: router, Catalogue: router, Meter: meter, Log: log, Metrics: metrics})
	pool := tasks.New(tasks.Options{Store: s, Calls: calls})
	api := New(Options{Catalogue: router, Auth: auth.New(s, auth.Options{}), Tasks: pool, Calls: calls, Metrics: metrics})
	return api, k
}

const benchBody = `{"model":"glm-4","temperature":0.9,"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"你好，介绍一下你自己。"}]}`

// BenchmarkSyncChatHandler drives the handler in-process (no sockets):
// the cost of glm serve's own work per request.
func BenchmarkSyncChatHandler(b *testing.B) {
	for _, form := range []string{"raw", "jwt"} {
		b.Run(form, func(b *testing.B) {
			api, k := benchServer(b, nil)
			authz := "Bearer " + k.Full()
			if form == "jwt" {
				authz = v4auth.Sign(k.ID, k.Secret, time.Now(), time.Hour)
			}
			b.ReportAllocs()
			b.ResetTimer()
			benchHandler(b, api, authz)
		})
	}
}

// benchHandler posts benchBody to api in-process (no sockets) from
// parallel goroutines; every reply must be 200.
func benchHandler(b *testing.B, api *Server, authz string) {
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", DefaultPrefix+"/chat/completions", strings.NewReader(benchBody))
			req.Header.Set("Authorization", authz)
			w := httptest.NewRecorder()
			api.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// BenchmarkSyncChatHTTP is the same over real loopback HTTP with
// keep-alive connections: req/s as a client sees it.
func BenchmarkSyncChatHTTP(b *testing.B) {
	api, k := benchServer(b, nil)
	b.ReportAllocs()
	start := time.Now()
	benchHTTP(b, api, "Bearer "+k.Full())
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// benchHTTP is benchHandler over real loopback HTTP with keep-alive
// connections. The timer is reset once the server is up.
func benchHTTP(b *testing.B, api *Server, authz string) {
	srv := httptest.NewServer(api)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := srv.URL + DefaultPrefix + "/chat/completions"
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(benchBody))
			req.Header.Set("Authorization", authz)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
