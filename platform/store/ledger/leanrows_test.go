package ledger_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// A usage chunk whose rows all leave the rarely-set columns at zero
// writes them as literals (the package tokens too when every row is paid
// in cash); a chunk with one row that sets any of them binds every
// column. Every row reads back exactly as written either way,
// on both engines, and a retried batch (ids stored) stores nothing twice.
func TestLeanUsageRowsReadBackAsWritten(t *testing.T) {
	storetest.EachEngine(t, "leanusage", func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := open(t, dsn)
		row := func(i int) *billing.UsageRecord {
			cash := billing.Part{Source: billing.PartCash, LeaseID: "ls_cash", Micros: billing.Micros(10 + i)}
			return &billing.UsageRecord{RequestID: fmt.Sprintf("r%03d", i), AccountID: "acct", KeyID: "key", Model: "glm-4",
				PromptTokens: int64(i), CompletionTokens: 2, Outcome: "ok", ReservedAt: t0, CreatedAt: t0.Add(time.Duration(i) * time.Millisecond),
				Class: billing.ClassStandard, Rate: billing.Price{Model: "glm-4", Input: 5, CachedInput: 2, Output: 7},
				Charge: billing.Charge{Amount: billing.Micros(10 + i), Cash: billing.Micros(10 + i), Parts: []billing.Part{cash}}}
		}
		sets := []func(*billing.UsageRecord){
			func(r *billing.UsageRecord) { r.Images = 1 },
			func(r *billing.UsageRecord) { r.Discount = 3 },
			func(r *billing.UsageRecord) { r.Shortfall = 4 },
			func(r *billing.UsageRecord) { r.Estimated = true },
			func(r *billing.UsageRecord) { r.CachedTokens = 1 },
			func(r *billing.UsageRecord) { r.ReasoningTokens = 1 },
			func(r *billing.UsageRecord) { r.Calls = 2; r.Rate.PerCall = 9 },
			func(r *billing.UsageRecord) { r.Rate.Image = 11 },
		}
		// Batches of 4: the first all lean, then one per rare column.
		var all []*billing.UsageRecord
		for b := 0; b <= len(sets); b++ {
			var batch []*billing.UsageRecord
			for j := 0; j < 4; j++ {
				r := row(4*b + j)
				if b > 0 && j == 2 {
					sets[b-1](r)
				}
				batch = append(batch, r)
			}
			err := l.Tx(ctx, func(tx billing.LedgerTx) error {
				ids, err := tx.InsertUsage(ctx, batch)
				if len(ids) != len(batch) {
					t.Errorf("batch %d: got %d rows inserted, want %d", b, len(ids), len(batch))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, batch...)
		}
		// Paid by a package (the shorter tail), and a batch mixing a
		// package row with cash rows (the shorter tail for all four).
		pkgRow := func(i int) *billing.UsageRecord {
			r := row(i)
			p := billing.Part{Source: "pkg_1", LeaseID: "ls_pkg", Tokens: int64(20 + i), Micros: billing.Micros(10 + i)}
			r.PackageTokens, r.Cash, r.Parts = int64(20+i), 0, []billing.Part{p}
			return r
		}
		n := len(all)
		for _, batch := range [][]*billing.UsageRecord{
			{pkgRow(n), pkgRow(n + 1), pkgRow(n + 2), pkgRow(n + 3)},
			{row(n + 4), pkgRow(n + 5), row(n + 6), row(n + 7)},
		} {
			err := l.Tx(ctx, func(tx billing.LedgerTx) error {
				_, err := tx.InsertUsage(ctx, batch)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, batch...)
		}
		err := l.Tx(ctx, func(tx billing.LedgerTx) error {
			ids, err := tx.InsertUsage(ctx, all)
			if len(ids) != 0 {
				t.Errorf("retried batch: got %d rows inserted, want 0", len(ids))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Usage(ctx, billing.UsageFilter{AccountID: "acct", WithParts: true})
		if err != nil {
			t.Fatal(err)
		}
		want := make([]billing.UsageRecord, len(all))
		for i, r := range all {
			want[i] = *r
		}
		if d := cmp.Diff(want, got, cmp.AllowUnexported(billing.UsageRecord{})); d != "" {
			t.Fatalf("rows read back (-want +got):\n%s", d)
		}
	})
}
