package ledger_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// BenchmarkInsertUsage writes usage batches the way the billing flush
// does (rows and their parts in one transaction), per row, on SQLite: the
// database's share of a metered request's CPU.
func BenchmarkInsertUsage(b *testing.B) {
	for _, batch := range []int{37, 500} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			ctx := context.Background()
			db, err := store.OpenDB(ctx, filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			l := ledger.New(db)
			recs := make([]*billing.UsageRecord, batch)
			parts := make([]billing.UsagePart, batch)
			n := 0
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				for i := range recs {
					n++
					id := "req_" + strconv.Itoa(n)
					recs[i] = &billing.UsageRecord{RequestID: id, AccountID: "acct", KeyID: "key", Model: "glm-4",
						PromptTokens: 200, CompletionTokens: 300, Outcome: "ok", ReservedAt: t0, CreatedAt: t0}
					parts[i] = billing.UsagePart{RequestID: id, Part: billing.Part{Source: billing.PartCash, LeaseID: "lease_1", Tokens: 500, Micros: 50}}
				}
				err := l.Tx(ctx, func(tx billing.LedgerTx) error {
					if _, err := tx.InsertUsage(ctx, recs); err != nil {
						return err
					}
					return tx.InsertUsageParts(ctx, parts)
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
