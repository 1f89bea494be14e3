package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/pgtest"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/console"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// BenchmarkUsagePage renders /console/usage?days=30 (charts, per-model and
// per-key tables, the newest page of requests) for an account with
// GLMKIT_CONSOLE_BENCH_ROWS request-log rows (default 20,000) spread over
// the last 30 days, on SQLite and (with GLMKIT_TEST_PG_DSN) PostgreSQL.
// The rows are seeded through store.InsertRequestLogs, the batcher's
// insert, which also fills the per-day roll-up the page reads.
// "page" is a render as users see it; "filtered" the same with the model
// and key filters set; "cold" the first render of a freshly started
// console on a freshly opened store (new connections, empty caches).
// docs/console.md §5.
func BenchmarkUsagePage(b *testing.B) {
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("GLMKIT_CONSOLE_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	for _, eng := range []string{"sqlite", "postgres"} {
		b.Run(fmt.Sprintf("%s/rows=%d", eng, n), func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "glm.db")
			if eng == "postgres" {
				dsn = pgtest.Schema(b, "consolebench")
			}
			st, err := store.Open(context.Background(), dsn, store.Options{MasterKey: master})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			e := newEnv(b, st)
			seedUsage(b, st, "acme", n)
			br := e.browser()
			br.mustSignIn("owner@acme.test", "owner-pass")
			get := func(br *browser, path string) {
				resp, body := br.do("GET", path, nil)
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="chart-tokens"`) {
					b.Fatalf("got %d, want 200 and the charts", resp.StatusCode)
				}
			}
			b.Run("page", func(b *testing.B) {
				for b.Loop() {
					get(br, "/console/usage?days=30")
				}
			})
			b.Run("filtered", func(b *testing.B) {
				for b.Loop() {
					get(br, "/console/usage?days=30&model=glm-4v&key="+fmt.Sprintf("%032x", 1))
				}
			})
			b.Run("cold", func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					fresh, err := store.Open(context.Background(), dsn, store.Options{MasterKey: master})
					if err != nil {
						b.Fatal(err)
					}
					cold := &browser{e: &env{t: b, st: fresh, srv: serveConsole(b, fresh)}, c: br.c}
					b.StartTimer()
					get(cold, "/console/usage?days=30")
					b.StopTimer()
					cold.e.srv.Close()
					fresh.Close()
					b.StartTimer()
				}
			})
		})
	}
}

// serveConsole starts a console on st, as a freshly started glm serve
// would (sessions live in the database, so a browser stays signed in).
func serveConsole(tb testing.TB, st *store.SQL) *httptest.Server {
	c := console.New(console.Options{Store: st, Billing: billing.NewStore(ledger.New(st.Handle()), nil),
		Revoker: auth.New(st, auth.Options{}), KeyRecheck: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	root := mux.New(nil)
	root.Mount(c)
	return httptest.NewServer(root)
}

func seedUsage(b *testing.B, st *store.SQL, account string, n int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	models := []string{"glm-4", "glm-4v", "glm-3-turbo", "embedding-2"}
	const chunk = 5000
	for start := 0; start < n; start += chunk {
		var logs []platform.RequestLog
		for i := start; i < min(start+chunk, n); i++ {
			at := now.Add(-time.Duration(i) * (30 * 24 * time.Hour / time.Duration(n)))
			id := fmt.Sprintf("req%09d", i)
			logs = append(logs, platform.RequestLog{ID: id, RequestID: id, CreatedAt: at, AccountID: account,
				KeyID: fmt.Sprintf("%032x", i%3), Model: models[i%len(models)], Endpoint: platform.EndpointChat, HTTPStatus: 200,
				LatencyMS: 40, Usage: platform.Usage{PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120},
				Charge: platform.Charge{Amount: 12_000}})
		}
		if err := st.InsertRequestLogs(ctx, logs); err != nil {
			b.Fatal(err)
		}
	}
}
