package billing

import (
	"context"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/glmkit/glmkit/platform"

	"github.com/glmkit/glmkit/platform/store"
)

// BenchmarkReserveSettle measures metered requests per second in process
// on SQLite (target ≥ 5,000/s on a 2-core machine, so metering is never
// the bottleneck of a small deployment), next to the hot path's no-op
// meter. The timed part includes writing every usage row to the database
// (the final Flush), so the figure is what the database sustains, not just
// the in-memory part.
func BenchmarkReserveSettle(b *testing.B) {
	ctx := context.Background()
	b.Run("noop", func(b *testing.B) {
		var m platform.Meter = platform.NopMeter{}
		var n atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := strconv.FormatInt(n.Add(1), 10)
				res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: id, AccountID: "acct", Model: "glm-4", PromptTokens: 200, MaxTokens: 800})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := res.Settle(ctx, platform.Settlement{Usage: platform.Usage{PromptTokens: 200, CompletionTokens: 300}, Outcome: platform.OutcomeOK}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	for _, accounts := range []int{1, 64} {
		b.Run("sqlite/accounts="+strconv.Itoa(accounts), func(b *testing.B) {
			db, err := store.OpenDB(ctx, filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			st := NewStore(LedgerOn(db), nil)
			for a := 0; a < accounts; a++ {
				acct := "acct" + strconv.Itoa(a)
				if _, err := st.TopUp(ctx, acct, 1_000_000*MicrosPerCNY, "bench"); err != nil {
					b.Fatal(err)
				}
			}
			e, err := NewEngine(ctx, LedgerOn(db), Config{})
			if err != nil {
				b.Fatal(err)
			}
			m := Meter{Engine: e}
			var n atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					id := strconv.FormatInt(i, 10)
					acct := "acct" + strconv.Itoa(int(i)%accounts)
					res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: id, AccountID: acct, Model: "glm-4", PromptTokens: 200, MaxTokens: 800})
					if err != nil {
						b.Fatal(err)
					}
					if _, err := res.Settle(ctx, platform.Settlement{Usage: platform.Usage{PromptTokens: 200, CompletionTokens: 300}, Outcome: platform.OutcomeOK}); err != nil {
						b.Fatal(err)
					}
				}
			})
			if err := e.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			b.StopTimer()
			if err := e.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
