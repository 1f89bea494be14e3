package ledger_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// A usage row with one part stores it in the row (migration 0014), so it
// writes no parts row; rows with several parts keep parts rows, and every
// reader (usage listing, the audit's snapshot, retention's aged rows)
// sees each row's parts in order either way.
func TestOnePartStoredWithItsRow(t *testing.T) {
	storetest.EachEngine(t, "onepart", func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.OpenDB(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		l := ledger.New(db)
		cash := billing.Part{Source: billing.PartCash, LeaseID: "ls_cash", Tokens: 30, Micros: 3}
		pkg := billing.Part{Source: "pkg_1", LeaseID: "ls_pkg", Tokens: 70, Micros: 7}
		recs := []*billing.UsageRecord{
			{RequestID: "r1", AccountID: "acct", Model: "glm-4", Outcome: "ok", ReservedAt: t0, CreatedAt: t0,
				Charge: billing.Charge{Amount: 3, Cash: 3, Parts: []billing.Part{cash}}},
			{RequestID: "r2", AccountID: "acct", Model: "glm-4", Outcome: "ok", ReservedAt: t0, CreatedAt: t0.Add(1),
				Charge: billing.Charge{Amount: 10, Cash: 3, Parts: []billing.Part{pkg, cash}}},
			{RequestID: "r3", AccountID: "acct", Model: "glm-4-flash", Outcome: "ok", ReservedAt: t0, CreatedAt: t0.Add(2)},
		}
		err = l.Tx(ctx, func(tx billing.LedgerTx) error {
			if _, err := tx.InsertUsage(ctx, recs); err != nil {
				return err
			}
			// What the billing flush hands over: every part of every new
			// row; r1's only part is already stored with r1.
			return tx.InsertUsageParts(ctx, []billing.UsagePart{{RequestID: "r1", Seq: 0, Part: cash},
				{RequestID: "r2", Seq: 0, Part: pkg}, {RequestID: "r2", Seq: 1, Part: cash}})
		})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM billing_usage_parts`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("got %d parts rows, want 2 (r2's; r1's part is in its row)", n)
		}
		want := map[string][]billing.Part{"r1": {cash}, "r2": {pkg, cash}}

		rows, err := l.Usage(ctx, billing.UsageFilter{AccountID: "acct", WithParts: true})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]billing.Part{}
		for _, r := range rows {
			if r.Parts != nil {
				got[r.RequestID] = r.Parts
			}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Usage WithParts: parts by row (-want +got):\n%s", d)
		}

		snap, err := l.Snapshot(ctx, "acct")
		if err != nil {
			t.Fatal(err)
		}
		got = map[string][]billing.Part{}
		for _, p := range snap.Parts {
			got[p.RequestID] = append(got[p.RequestID], p.Part)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Snapshot: parts by row (-want +got):\n%s", d)
		}

		err = l.Tx(ctx, func(tx billing.LedgerTx) error {
			aged, err := tx.AgedUsage(ctx, t0.Add(1e9), billing.UsageCursor{}, 10)
			if err != nil {
				return err
			}
			got = map[string][]billing.Part{}
			for _, r := range aged.Rows {
				if r.Parts != nil {
					got[r.RequestID] = r.Parts
				}
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("AgedUsage: parts by row (-want +got):\n%s", d)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
