package httpapi

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/benchcpu"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/conns"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/tasks"
)

// syncReply is the reply of the load tool's instant upstream (cmd/glmload):
// request_id, usage and the model asked for, so glm serve relays it as is.
const syncReply = `{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"Hello from the instant upstream.","role":"assistant"}}],"created":1764900000,"id":"glmload-1","model":"glm-4","request_id":"glmload-1","usage":{"completion_tokens":16,"prompt_tokens":12,"total_tokens":28}}`

// cannedSync answers every call with syncReply from memory, the way
// glmload's upstream does (Content-Length known, body read first).
type cannedSync struct{}

func (cannedSync) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=UTF-8")
	return &http.Response{StatusCode: 200, Header: h, ContentLength: int64(len(syncReply)),
		Body: io.NopCloser(strings.NewReader(syncReply)), Request: r}, nil
}

// syncStack is glm serve's unmetered sync path wired as cmd/glm wires it:
// auth on a SQLite key store, the metered call (no-op meter) with the
// request log and the router's trace, the backend router with one zhipu
// backend, mounted on a root mux.
func syncStack(b *testing.B, base string, client *http.Client) (http.Handler, string) {
	b.Helper()
	var opts []router.Option
	if client != nil {
		opts = append(opts, router.WithHTTPClient(client))
	}
	ctx := context.Background()
	s, k := benchKeyStore(b)
	backends, err := router.New(ctx, router.Config{Backends: []router.BackendConfig{{Name: "instant",
		Type: router.TypeZhipu, BaseURL: base, APIKey: "id.secret", Models: []router.ModelConfig{{Name: "glm-4"}}}}}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	log := requestlog.New(s, requestlog.Options{})
	b.Cleanup(func() { log.Close(ctx) })
	metrics := NewMetrics()
	calls := metered.New(metered.Options{Backend: backends, Catalogue: backends, Log: log, Metrics: metrics,
		Trace: func(ctx context.Context) (context.Context, func() string) {
			ctx, tr := router.WithTrace(ctx)
			return ctx, func() string { return tr.Backend }
		}})
	pool := tasks.New(tasks.Options{Store: s, Calls: calls})
	api := New(Options{Catalogue: backends, Auth: auth.New(s, auth.Options{}), Tasks: pool, Calls: calls, Metrics: metrics})
	root := mux.New(nil)
	root.Mount(api)
	return root, "Bearer " + k.Full()
}

// BenchmarkSyncChatServe is one unmetered sync chat through everything
// glm serve runs for it. "handler": in process, the upstream answering
// from memory (cannedSync): glm's own work per request, no sockets.
// "loopback": a real client, the conns listener and guard, the HTTP
// server, and a real loopback upstream (the process's CPU then includes
// the client's and the upstream's, as in glmload's totals). Both report
// the process's CPU per request.
func BenchmarkSyncChatServe(b *testing.B) {
	b.Run("handler", func(b *testing.B) {
		h, authz := syncStack(b, "http://upstream.invalid/api/paas/v4", &http.Client{Transport: cannedSync{}})
		b.ReportAllocs()
		cpu0 := benchcpu.Now(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req := httptest.NewRequest("POST", DefaultPrefix+"/chat/completions", strings.NewReader(benchBody))
				req.Header.Set("Authorization", authz)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 || w.Body.String() != syncReply {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
		benchcpu.Report(b, cpu0, b.N, "cpu-µs/op")
	})
	b.Run("loopback", func(b *testing.B) {
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			io.WriteString(w, syncReply)
		}))
		defer up.Close()
		h, authz := syncStack(b, up.URL+"/api/paas/v4", nil)
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ln := conns.Listen(raw, conns.Options{Name: "api"})
		srv := &http.Server{Handler: conns.NewGuard(h, conns.GuardOptions{Name: "api"}),
			ConnState: ln.ConnState, ConnContext: ln.ConnContext}
		go srv.Serve(ln)
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		url := "http://" + ln.Addr().String() + DefaultPrefix + "/chat/completions"
		b.ReportAllocs()
		cpu0 := benchcpu.Now(b)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("POST", url, strings.NewReader(benchBody))
				req.Header.Set("Authorization", authz)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Equal(got, []byte(syncReply)) {
					b.Fatalf("status %d: %s", resp.StatusCode, got)
				}
			}
		})
		benchcpu.Report(b, cpu0, b.N, "cpu-µs/op")
	})
}
