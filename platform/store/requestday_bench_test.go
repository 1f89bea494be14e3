package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/benchcpu"
	"github.com/glmkit/glmkit/internal/pgtest"
	"github.com/glmkit/glmkit/platform"
)

// BenchmarkInsertRequestLogs is the request-log batcher's write: one
// transaction of 200 new rows over 3 keys and 4 models, on SQLite and
// (with GLMKIT_TEST_PG_DSN) PostgreSQL — the hot path the per-day roll-up
// rides on (docs/design.md §3 "Request-log days"). Its rows are an
// unmetered server's: no charge, no error.
func BenchmarkInsertRequestLogs(b *testing.B) {
	const batch = 200
	models := []string{"glm-4", "glm-4v", "glm-3-turbo", "embedding-2"}
	for _, eng := range []string{"sqlite", "postgres"} {
		b.Run(eng, func(b *testing.B) {
			dsn := filepath.Join(b.TempDir(), "glm.db")
			if eng == "postgres" {
				dsn = pgtest.Schema(b, "insertbench")
			}
			s, err := Open(context.Background(), dsn, Options{MasterKey: testMaster})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			rows := make([]platform.RequestLog, batch)
			b.ReportAllocs()
			n := 0
			cpu0 := benchcpu.Now(b)
			for b.Loop() {
				for i := range rows {
					// Server-made ids (a client sent no request id): where
					// they sort decides which index pages a batch dirties.
					id := platform.NewID(time.Now())
					rows[i] = platform.RequestLog{ID: id, RequestID: id, CreatedAt: now, AccountID: "acme",
						KeyID: fmt.Sprintf("key%d", n%3), Model: models[n%len(models)], Endpoint: platform.EndpointChat,
						HTTPStatus: 200, LatencyMS: 40, Usage: platform.Usage{PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120},
					}
					n++
				}
				if err := s.InsertRequestLogs(context.Background(), rows); err != nil {
					b.Fatal(err)
				}
			}
			// The process's CPU per row (its share of the batch): what a
			// loaded machine's wall clock does not say.
			benchcpu.Report(b, cpu0, b.N*batch, "cpu-µs/row")
		})
	}
}
