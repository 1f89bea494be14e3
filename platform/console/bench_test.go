package console_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/pgtest"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// BenchmarkUsagePage renders /console/usage?days=30 (charts, per-model and
// per-key tables, the newest page of requests) for an account with
// GLMKIT_CONSOLE_BENCH_ROWS request-log rows (default 20,000) spread over
// the last 30 days, on SQLite and (with GLMKIT_TEST_PG_DSN) PostgreSQL:
// "page" is a render as users see it (the days that are over come from
// the console's cache), "cold" the database's part of a first render (every
// day added up by store.RequestDays). docs/console.md §5.
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
			// One render first fills the cache of the days that are over, as
			// the first visit after a start does; "cold" measures that part.
			if resp, _ := br.do("GET", "/console/usage?days=30", nil); resp.StatusCode != http.StatusOK {
				b.Fatalf("got %d, want 200", resp.StatusCode)
			}
			b.Run("page", func(b *testing.B) {
				for b.Loop() {
					resp, _ := br.do("GET", "/console/usage?days=30", nil)
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("got %d, want 200", resp.StatusCode)
					}
				}
			})
			b.Run("cold", func(b *testing.B) {
				to := time.Now().In(billing.BillingZone).AddDate(0, 0, 1).Format(time.DateOnly)
				from := time.Now().In(billing.BillingZone).AddDate(0, 0, -29).Format(time.DateOnly)
				for b.Loop() {
					days, err := st.RequestDays(context.Background(), "acme", from, to)
					if err != nil || len(days) == 0 {
						b.Fatalf("got %d days, %v", len(days), err)
					}
				}
			})
		})
	}
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
