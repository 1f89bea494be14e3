package billing

import (
	"context"
	"testing"

	"github.com/glmkit/glmkit/platform/store"
)

// Limit rules on both engines: set merges the given fields, list, get,
// clear; a second Open (another replica) sees the same rows.
func TestLimitRules(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		db, err := store.OpenDB(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		st := NewStore(LedgerOn(db), nil)
		n := func(v int64) *int64 { return &v }
		r, err := st.SetLimit(ctx, LimitKey, "k1", LimitPatch{RPM: n(2)})
		if err != nil || r.RPM != 2 || r.MaxConcurrent != 0 || r.DailyTokens != 0 {
			t.Fatalf("%+v %v", r, err)
		}
		r, err = st.SetLimit(ctx, LimitKey, "k1", LimitPatch{MaxConcurrent: n(1)})
		if err != nil || r.RPM != 2 || r.MaxConcurrent != 1 {
			t.Fatalf("merge: %+v %v", r, err)
		}
		if _, err := st.SetLimit(ctx, LimitAccount, "acme", LimitPatch{DailyTokens: n(1000)}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.SetLimit(ctx, LimitAccount, "acme", LimitPatch{RPM: n(-1)}); err == nil {
			t.Fatal("negative accepted")
		}
		if _, err := st.SetLimit(ctx, "widget", "x", LimitPatch{RPM: n(1)}); err == nil {
			t.Fatal("bad subject accepted")
		}
		db2, err := store.OpenDB(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db2.Close()
		all, err := NewStore(LedgerOn(db2), nil).ListLimits(ctx)
		if err != nil || len(all) != 2 || all[0].Subject != LimitAccount || all[0].DailyTokens != 1000 || all[1].ID != "k1" || all[1].RPM != 2 || all[1].MaxConcurrent != 1 {
			t.Fatalf("list %+v %v", all, err)
		}
		if g, ok, err := st.GetLimit(ctx, LimitKey, "k1"); err != nil || !ok || g.RPM != 2 || g.UpdatedAt.IsZero() {
			t.Fatalf("get %+v %v %v", g, ok, err)
		}
		if found, err := st.ClearLimit(ctx, LimitKey, "k1"); err != nil || !found {
			t.Fatalf("clear %v %v", found, err)
		}
		if found, err := st.ClearLimit(ctx, LimitKey, "k1"); err != nil || found {
			t.Fatalf("second clear %v %v", found, err)
		}
		if _, ok, _ := st.GetLimit(ctx, LimitKey, "k1"); ok {
			t.Fatal("rule still there")
		}
	})
}

// The price rows the store's migration seeds are the shipped table.
func TestSeedMatchesDefaultPrices(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		got, err := r.store.Prices(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := DefaultPrices()
		if len(got) != len(want) {
			t.Fatalf("got %d seeded prices, want %d (DefaultPrices)", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("price %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}
