package httpapi

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/benchcpu"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// BenchmarkMeteredSyncChat: the same in-process handler
// and instant upstream as BenchmarkSyncChatHandler, request log on, with
// the no-op meter ("off") next to the real billing engine on the same
// SQLite file ("on": reserve + settle on leased credit, usage rows
// batched). "http" runs both over loopback HTTP as a client sees it.
func BenchmarkMeteredSyncChat(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		for _, via := range []string{"handler", "http"} {
			b.Run(mode+"/"+via, func(b *testing.B) {
				var meter platform.Meter
				if mode == "on" {
					ctx := context.Background()
					db, err := store.OpenDB(ctx, filepath.Join(b.TempDir(), "glm.db"))
					if err != nil {
						b.Fatal(err)
					}
					eng, err := billing.NewEngine(ctx, ledger.New(db), billing.Config{})
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { eng.Close(ctx); db.Close() })
					// Plenty of cash: glm-4 at ¥0.1/1K, every request paid.
					if _, err := billing.NewStore(ledger.New(db), nil).TopUp(ctx, "a", 1_000_000*billing.MicrosPerCNY, "bench"); err != nil {
						b.Fatal(err)
					}
					meter = billing.Meter{Engine: eng}
				}
				api, key := benchServer(b, meter)
				authz := "Bearer " + key.Full()
				b.ReportAllocs()
				start := time.Now()
				cpu0 := benchcpu.Now(b)
				b.ResetTimer()
				if via == "handler" {
					benchHandler(b, api, authz)
				} else {
					benchHTTP(b, api, authz)
				}
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				// CPU of the whole process (the flushers writing rows in
				// the background included) per request: what metering
				// costs, and the figure a loaded machine moves least.
				benchcpu.Report(b, cpu0, b.N, "cpu-µs/op")
			})
		}
	}
}

var _ platform.Meter = billing.Meter{}
