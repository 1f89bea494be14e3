package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform/store"
)

// statements is every bill and daily figure an operator can read, as
// bytes: the JSON and CSV of each month's bill for every account and for
// all accounts, the recent-months list, and the daily usage.
func statements(t *testing.T, st *Store, months []string, accounts []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, a := range append([]string{""}, accounts...) {
		for _, m := range months {
			b, err := st.MonthlyBill(ctx, a, m)
			if err != nil {
				t.Fatal(err)
			}
			j, _ := json.Marshal(b)
			var csv bytes.Buffer
			if err := b.WriteCSV(&csv); err != nil {
				t.Fatal(err)
			}
			out["bill "+a+" "+m] = string(j)
			out["csv "+a+" "+m] = csv.String()
		}
		recent, err := st.RecentBills(ctx, a, len(months)+1, time.Date(2024, 6, 1, 0, 0, 0, 0, BillingZone))
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(recent)
		out["recent "+a] = string(j)
		days, err := st.DailyUsage(ctx, UsageFilter{AccountID: a})
		if err != nil {
			t.Fatal(err)
		}
		j, _ = json.Marshal(days)
		out["daily "+a] = string(j)
	}
	return out
}

func usageCount(t *testing.T, r *rig) int {
	t.Helper()
	var n int
	if err := r.db.SQL.QueryRow(`SELECT COUNT(*) FROM billing_usage`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// traffic runs requests from `from` every step until `to` on e: two
// accounts, three keys, three models; acct2 runs out of cash and gets
// 1113 and shortfalls.
func traffic(t *testing.T, r *rig, e *Engine, from, to time.Time, step time.Duration, seq *int) {
	t.Helper()
	ctx := context.Background()
	models := []string{"glm-4", "glm-3-turbo", "embedding-2"}
	for at := from; at.Before(to); at = at.Add(step) {
		r.clk.Set(at)
		*seq++
		n := *seq
		acct := []string{"acct", "acct", "acct2"}[n%3]
		req := ReserveRequest{RequestID: fmt.Sprintf("r%05d", n), AccountID: acct, KeyID: fmt.Sprintf("key%d", n%3),
			Model: models[n%len(models)], PromptTokens: int64(50 + n%400), MaxTokens: 300, Batch: n%11 == 0}
		res, err := e.Reserve(ctx, req)
		if err != nil {
			continue // 1113: recorded as a rejected row
		}
		// Some requests use more than they reserved: shortfalls once the
		// money runs out.
		// Tiers too: cached and reasoning parts, batch lines, so the
		// roll-ups must keep the tiers for the bills to stay the same.
		u := Usage{PromptTokens: req.PromptTokens, CompletionTokens: int64(n%7) * 100, CachedTokens: int64(n%5) * 10}
		u.ReasoningTokens = u.CompletionTokens / 2
		if _, err := e.Settle(ctx, res, u, "ok", n%13 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// Bills before a roll-up = bills after, byte for byte, on both engines;
// the audit stays exact with the same figures per source; rows a lease
// still open paid for wait until it closes; a second run moves nothing.
func TestRollUpUsageKeepsBillsAndAudit(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		start := time.Date(2024, 1, 1, 0, 0, 0, 0, BillingZone)
		r.clk.Set(start)
		// A cached price below the input price, so the tiers differ.
		if err := r.store.SetPrice(ctx, Price{Model: "glm-3-turbo", Input: 5000, CachedInput: 1000, Output: 5000}); err != nil {
			t.Fatal(err)
		}
		r.grant(Grant{AccountID: "acct", Tokens: 400_000, Models: []string{"glm-4"}, ExpiresAt: start.AddDate(1, 0, 0)})
		r.topup("acct", "40")
		r.topup("acct2", "0.2")
		seq := 0
		e := r.engine(Config{})
		traffic(t, r, e, start, start.AddDate(0, 3, 0), 97*time.Minute, &seq)
		closeAll(t, e)
		// April: an engine that stays open, so its leases are active.
		e2 := r.engine(Config{})
		april := start.AddDate(0, 3, 0)
		traffic(t, r, e2, april, april.AddDate(0, 0, 20), 131*time.Minute, &seq)

		months := []string{"2023-12", "2024-01", "2024-02", "2024-03", "2024-04", "2024-05"}
		accounts := []string{"acct", "acct2"}
		before := statements(t, r.store, months, accounts)
		auditBefore := r.audit("", false)
		rowsBefore := usageCount(t, r)
		var rejected, short, disc int64
		if err := r.db.SQL.QueryRow(`SELECT COUNT(CASE WHEN outcome = $1 THEN 1 END), SUM(shortfall_micros), SUM(discount_micros) FROM billing_usage`,
			OutcomeRejected).Scan(&rejected, &short, &disc); err != nil || rejected == 0 || short == 0 || disc == 0 {
			t.Fatalf("seed: got %d rejected rows, shortfall %d, discount %d, %v; want all three", rejected, short, disc, err)
		}

		cut := april.AddDate(0, 0, 10)
		// Two replicas roll up at once.
		other := NewStore(LedgerOn(r.engineDB()), r.clk.Now)
		var wg sync.WaitGroup
		res := make([]RollUpResult, 2)
		errs := make([]error, 2)
		for i, st := range []*Store{r.store, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i], errs[i] = st.RollUpUsage(ctx, RollUpOptions{Before: cut, Batch: 37})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		moved := res[0].Rows + res[1].Rows
		rowsAfter := usageCount(t, r)
		if moved == 0 || int64(rowsBefore-rowsAfter) != moved {
			t.Fatalf("got %d rows → %d, moved %d; want the difference moved, and some", rowsBefore, rowsAfter, moved)
		}
		if res[0].Kept == 0 && res[1].Kept == 0 {
			t.Errorf("got nothing kept; want April's rows paid by open leases kept")
		}
		after := statements(t, r.store, months, accounts)
		if d := cmp.Diff(before, after); d != "" {
			t.Errorf("statements changed by the roll-up (-before +after):\n%s", d)
		}
		auditAfter := r.audit("", false)
		if d := cmp.Diff(auditBefore.Sources, auditAfter.Sources); d != "" {
			t.Errorf("audit figures changed (-before +after):\n%s", d)
		}

		// Once the open leases close, their rows go too.
		closeAll(t, e2)
		before = statements(t, r.store, months, accounts)
		again, err := r.store.RollUpUsage(ctx, RollUpOptions{Before: cut})
		if err != nil || again.Rows == 0 || again.Kept != 0 {
			t.Fatalf("after the leases closed: got %+v, %v; want rows moved and none kept", again, err)
		}
		if d := cmp.Diff(before, statements(t, r.store, months, accounts)); d != "" {
			t.Errorf("statements changed by the second roll-up (-before +after):\n%s", d)
		}
		r.audit("", true)
		if res, err := r.store.RollUpUsage(ctx, RollUpOptions{Before: cut}); err != nil || res.Rows != 0 || res.Kept != 0 {
			t.Errorf("third roll-up: got %+v, %v; want nothing to do", res, err)
		}
		var old int
		if err := r.db.SQL.QueryRow(`SELECT COUNT(*) FROM billing_usage WHERE created_at < $1`, cut.UnixMilli()).Scan(&old); err != nil || old != 0 {
			t.Errorf("got %d rows before the cut-off left, %v; want 0", old, err)
		}
		t.Logf("usage rows %d → %d; %d day rows", rowsBefore, usageCount(t, r), len(mustDaily(t, r.store)))
	})
}

func mustDaily(t *testing.T, st *Store) []UsageDay {
	t.Helper()
	d, err := st.DailyUsage(context.Background(), UsageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A row the audit finds fault with is never rolled up: it stays, and the
// audit reports exactly what it reported before.
func TestRollUpUsageKeepsFaultyRows(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		r.topup("acct", "10")
		seq := 0
		e := r.engine(Config{})
		traffic(t, r, e, t0, t0.Add(48*time.Hour), time.Hour, &seq)
		closeAll(t, e)
		// A row whose amount is not the sum of what paid for it.
		bad := &UsageRecord{RequestID: "bad", AccountID: "acct", KeyID: "k", Model: "glm-4", Outcome: "ok",
			ReservedAt: t0, CreatedAt: t0, Charge: Charge{Amount: 5, Cash: 3}}
		if err := LedgerOn(r.db).Tx(ctx, func(tx LedgerTx) error {
			_, err := tx.InsertUsage(ctx, []*UsageRecord{bad})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		a, err := r.store.Audit(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.store.RollUpUsage(ctx, RollUpOptions{Before: t0.Add(72 * time.Hour), Batch: 10})
		if err != nil || res.Kept != 1 || res.Rows == 0 {
			t.Fatalf("got %+v, %v; want every row moved but the faulty one", res, err)
		}
		b, err := r.store.Audit(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Problems) == 0 || !cmp.Equal(a.Problems, b.Problems) {
			t.Errorf("audit problems: got %q after, %q before; want the same, not none", b.Problems, a.Problems)
		}
		if n := usageCount(t, r); n != 1 {
			t.Errorf("got %d rows left, want the faulty one", n)
		}
	})
}

// engineDB opens another handle on the rig's database (another replica).
func (r *rig) engineDB() *store.DB {
	r.t.Helper()
	db, err := store.OpenDB(context.Background(), r.dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { db.Close() })
	return db
}

// The audit reads the roll-ups: a lease's rolled-up spending that no
// longer matches the lease is reported, as a changed part would be.
func TestAuditChecksRollUps(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		r.topup("acct", "10")
		r.grant(Grant{AccountID: "acct", Tokens: 5000, ExpiresAt: t0.AddDate(0, 1, 0)})
		seq := 0
		e := r.engine(Config{})
		traffic(t, r, e, t0, t0.Add(24*time.Hour), time.Hour, &seq)
		closeAll(t, e)
		if res, err := r.store.RollUpUsage(ctx, RollUpOptions{Before: t0.Add(48 * time.Hour)}); err != nil || res.Rows == 0 {
			t.Fatalf("got %+v, %v; want rows moved", res, err)
		}
		r.audit("", true)
		for _, tamper := range []string{
			`UPDATE billing_usage_parts_rollup SET micros = micros + 1 WHERE source = 'cash'`,
			`UPDATE billing_usage_parts_rollup SET tokens = tokens + 1 WHERE source <> 'cash'`,
			`UPDATE billing_usage_daily SET amount_micros = amount_micros + 1`,
		} {
			if _, err := r.db.SQL.ExecContext(ctx, tamper); err != nil {
				t.Fatal(err)
			}
			a, err := r.store.Audit(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Problems) == 0 {
				t.Errorf("%s: got a clean audit, want problems", tamper)
			}
			undo := strings.Replace(tamper, "+ 1", "- 1", 1)
			if _, err := r.db.SQL.ExecContext(ctx, undo); err != nil {
				t.Fatal(err)
			}
		}
		r.audit("", true)
	})
}
