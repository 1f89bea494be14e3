package billing

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

func is1113(err error) bool {
	var pe *platform.Error
	return errors.As(err, &pe) && pe.Code == platform.CodeArrears && pe.Status() == 429
}

// storm sends n concurrent requests spread over the engines; each reserves
// prompt+maxTok on glm-4 and, when admitted, settles `used`.
func storm(t *testing.T, engines []*Engine, n int, prompt, maxTok int64, used Usage) (ok, rejected int, ids []string) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			e := engines[i%len(engines)]
			id := fmt.Sprintf("req-%03d", i)
			res, err := e.Reserve(ctx, ReserveRequest{RequestID: id, AccountID: "acct", KeyID: "k1", Model: "glm-4", PromptTokens: prompt, MaxTokens: maxTok})
			mu.Lock()
			ids = append(ids, id)
			mu.Unlock()
			if err != nil {
				if !is1113(err) {
					t.Errorf("reserve %s: unexpected error %v", id, err)
				}
				mu.Lock()
				rejected++
				mu.Unlock()
				return
			}
			if _, err := e.Settle(ctx, res, used, string(platform.OutcomeOK), false); err != nil {
				t.Errorf("settle %s: %v", id, err)
			}
			mu.Lock()
			ok++
			mu.Unlock()
		}(i)
	}
	close(start)
	wg.Wait()
	return ok, rejected, ids
}

func closeAll(t *testing.T, es ...*Engine) {
	t.Helper()
	for _, e := range es {
		if err := e.Close(context.Background()); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
}

// checkOneRowEach proves every request id has exactly one usage row.
func checkOneRowEach(t *testing.T, r *rig, ids []string, wantCharged int) {
	t.Helper()
	rows := r.usage("acct")
	seen := map[string]int{}
	charged := 0
	for _, u := range rows {
		seen[u.RequestID]++
		if u.Outcome != OutcomeRejected {
			charged++
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("request %s has %d usage rows, want 1", id, seen[id])
		}
	}
	if len(rows) != len(ids) {
		t.Errorf("%d usage rows for %d requests", len(rows), len(ids))
	}
	if charged != wantCharged {
		t.Errorf("%d charged rows, want %d", charged, wantCharged)
	}
}

// The overspend race: 64 concurrent requests against an account that can
// pay for 10 (5 from a package, 5 from cash): exactly 10 pass, 54 get
// 1113, one usage row each, and the charges equal the drop in package
// tokens and cash.
func TestConcurrentReservesNoOverspend(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		pkg := r.grant(Grant{AccountID: "acct", Tokens: 5000, Models: []string{"glm-4"}})
		r.topup("acct", "0.5") // 5 × (1000 tokens × 0.1 CNY/1K)
		e := r.engine(Config{})
		ok, rejected, ids := storm(t, []*Engine{e}, 64, 200, 800, Usage{PromptTokens: 200, CompletionTokens: 800})
		if ok != 10 || rejected != 54 {
			t.Fatalf("ok %d rejected %d, want 10 and 54", ok, rejected)
		}
		closeAll(t, e)
		checkOneRowEach(t, r, ids, 10)
		r.checkLedger("acct", map[string]int64{pkg.ID: 5000}, mustCNY("0.5"))
		cash, left := r.funds("acct")
		if cash != 0 || left[pkg.ID] != 0 {
			t.Errorf("left cash %v, package %d; want both 0", cash, left[pkg.ID])
		}
		var total Micros
		for _, u := range r.usage("acct") {
			total += u.Amount
		}
		if total != mustCNY("1") {
			t.Errorf("charged %v, want 1.000000", total)
		}
	})
}

// The same storm with three engines on separate connection pools, standing
// in for three replicas: never more than 10 pass, the ledger balances,
// and once the engines have returned their leases the remaining credit is
// exactly what the rest of the 10 requests need (nothing lost, nothing
// overspent).
func TestConcurrentReservesThreeReplicas(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		pkg := r.grant(Grant{AccountID: "acct", Tokens: 5000, Models: []string{"glm-4"}})
		r.topup("acct", "0.5")
		es := []*Engine{r.engine(Config{}), r.engine(Config{}), r.engine(Config{})}
		ok, rejected, ids := storm(t, es, 64, 200, 800, Usage{PromptTokens: 200, CompletionTokens: 800})
		if ok > 10 || ok < 1 || ok+rejected != 64 {
			t.Fatalf("ok %d rejected %d: want 1..10 admitted and the rest 1113", ok, rejected)
		}
		t.Logf("three engines admitted %d of 10 during the storm", ok)
		closeAll(t, es...)
		checkOneRowEach(t, r, ids, ok)
		r.checkLedger("acct", map[string]int64{pkg.ID: 5000}, mustCNY("0.5"))
		// The rest of the credit is intact: a fresh engine serves exactly
		// 10-ok more requests and then refuses.
		e := r.engine(Config{})
		more := 0
		for i := 0; i < 20; i++ {
			res, err := e.Reserve(context.Background(), ReserveRequest{RequestID: fmt.Sprintf("after-%d", i), AccountID: "acct", Model: "glm-4", PromptTokens: 200, MaxTokens: 800})
			if err != nil {
				if !is1113(err) {
					t.Fatalf("reserve: %v", err)
				}
				break
			}
			if _, err := e.Settle(context.Background(), res, Usage{PromptTokens: 200, CompletionTokens: 800}, "ok", false); err != nil {
				t.Fatal(err)
			}
			more++
		}
		if ok+more != 10 {
			t.Errorf("storm admitted %d, afterwards %d more: want 10 in all", ok, more)
		}
		closeAll(t, e)
		r.checkLedger("acct", map[string]int64{pkg.ID: 5000}, mustCNY("0.5"))
	})
}

// Requests that use less than they reserved release the rest; with random
// usage the ledger must still balance to the micro.
func TestConcurrentPartialUsageLedger(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		p1 := r.grant(Grant{AccountID: "acct", Tokens: 7777, Models: []string{"glm-4"}})
		p2 := r.grant(Grant{AccountID: "acct", Tokens: 3333, ExpiresAt: t0.AddDate(0, 1, 0)})
		r.topup("acct", "1.234567")
		es := []*Engine{r.engine(Config{TokenBlock: 2000, CashBlock: 100_000}), r.engine(Config{TokenBlock: 2000, CashBlock: 100_000})}
		ok, _, _ := storm(t, es, 64, 123, 877, Usage{PromptTokens: 123, CompletionTokens: 301})
		if ok == 0 {
			t.Fatal("nothing admitted")
		}
		closeAll(t, es...)
		r.checkLedger("acct", map[string]int64{p1.ID: 7777, p2.ID: 3333}, mustCNY("1.234567"))
	})
}

func reserve(t *testing.T, e *Engine, id, model string, prompt, maxTok int64) (*Reservation, error) {
	t.Helper()
	return e.Reserve(context.Background(), ReserveRequest{RequestID: id, AccountID: "acct", KeyID: "k", Model: model, PromptTokens: prompt, MaxTokens: maxTok})
}

func settle(t *testing.T, e *Engine, res *Reservation, in, out int64) Charge {
	t.Helper()
	c, err := e.Settle(context.Background(), res, Usage{PromptTokens: in, CompletionTokens: out}, "ok", false)
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	return c
}

// Package order: only packages whose scope covers the
// model, earliest expiry first, then cash.
func TestPackageOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		late := r.grant(Grant{AccountID: "acct", Name: "glm-4 late", Tokens: 1000, Models: []string{"glm-4"}, ExpiresAt: t0.AddDate(0, 0, 30)})
		early := r.grant(Grant{AccountID: "acct", Name: "all early", Tokens: 1000, ExpiresAt: t0.AddDate(0, 0, 10)})
		other := r.grant(Grant{AccountID: "acct", Name: "turbo earliest", Tokens: 1000, Models: []string{"glm-3-turbo"}, ExpiresAt: t0.AddDate(0, 0, 1)})
		r.topup("acct", "1")
		e := r.engine(Config{})
		res, err := reserve(t, e, "r1", "glm-4", 1500, 1000)
		if err != nil {
			t.Fatal(err)
		}
		c := settle(t, e, res, 1500, 1000) // 2500 tokens: early 1000, late 1000, cash for 500
		want := []Part{
			{Source: early.ID, Tokens: 1000, Micros: 100_000},
			{Source: late.ID, Tokens: 1000, Micros: 100_000},
			{Source: PartCash, Tokens: 500, Micros: 50_000},
		}
		if len(c.Parts) != len(want) {
			t.Fatalf("parts %+v, want %+v", c.Parts, want)
		}
		for i := range want {
			got := c.Parts[i]
			got.LeaseID = ""
			if got != want[i] {
				t.Errorf("part %d = %+v, want %+v", i, got, want[i])
			}
		}
		if c.Amount != 250_000 || c.Discount != 200_000 || c.Cash != 50_000 || c.Shortfall != 0 {
			t.Errorf("charge %+v", c)
		}
		closeAll(t, e)
		_, left := r.funds("acct")
		if left[other.ID] != 1000 {
			t.Errorf("glm-3-turbo package used for glm-4: %d left", left[other.ID])
		}
		r.checkLedger("acct", map[string]int64{late.ID: 1000, early.ID: 1000, other.ID: 1000}, mustCNY("1"))
	})
}

// Expiry at the boundary: a package pays up to the instant before its
// expiry time and not at it.
func TestExpiryBoundary(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		exp := t0.Add(time.Hour)
		p := r.grant(Grant{AccountID: "acct", Tokens: 10_000, ExpiresAt: exp})
		e := r.engine(Config{})
		r.clk.Set(exp.Add(-time.Millisecond))
		res, err := reserve(t, e, "before", "glm-4", 10, 90)
		if err != nil {
			t.Fatalf("1 ms before expiry: %v", err)
		}
		if c := settle(t, e, res, 10, 90); c.PackageTokens != 100 || c.Cash != 0 {
			t.Errorf("before expiry: %+v", c)
		}
		r.clk.Set(exp)
		if _, err := reserve(t, e, "at", "glm-4", 10, 90); !is1113(err) {
			t.Fatalf("at the expiry instant: err %v, want 1113", err)
		}
		closeAll(t, e)
		pk, _ := r.store.ListPackages(context.Background(), "acct")
		if got := pk[0].Status(exp); got != StatusExpired {
			t.Errorf("status at expiry %q", got)
		}
		if got := pk[0].Status(exp.Add(-time.Millisecond)); got != StatusActive {
			t.Errorf("status before expiry %q", got)
		}
		r.checkLedger("acct", map[string]int64{p.ID: 10_000}, 0)
	})
}

// A package not yet effective does not pay; from its effective instant it
// does.
func TestPackageNotYetEffective(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		eff := t0.Add(24 * time.Hour)
		p := r.grant(Grant{AccountID: "acct", Tokens: 5000, EffectiveAt: eff, ExpiresAt: eff.AddDate(0, 1, 0)})
		e := r.engine(Config{PackageRecheck: time.Nanosecond})
		if _, err := reserve(t, e, "early", "glm-4", 10, 10); !is1113(err) {
			t.Fatalf("before effective: err %v, want 1113", err)
		}
		ps, _ := r.store.ListPackages(context.Background(), "acct")
		if ps[0].Status(t0) != StatusNotEffective {
			t.Errorf("status %q", ps[0].Status(t0))
		}
		r.clk.Set(eff)
		res, err := reserve(t, e, "on-time", "glm-4", 10, 10)
		if err != nil {
			t.Fatalf("at effective time: %v", err)
		}
		if c := settle(t, e, res, 10, 10); c.PackageTokens != 20 {
			t.Errorf("charge %+v", c)
		}
		closeAll(t, e)
		r.checkLedger("acct", map[string]int64{p.ID: 5000}, 0)
	})
}

// Exhaustion mid-stream: the request uses more than it reserved and more
// than the account has. Settle charges what exists (packages, then cash),
// records the rest as shortfall, and no balance goes negative.
func TestExhaustionMidStream(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		p := r.grant(Grant{AccountID: "acct", Tokens: 300})
		r.topup("acct", "0.01") // 100 glm-4 tokens
		e := r.engine(Config{})
		res, err := reserve(t, e, "long", "glm-4", 50, 50)
		if err != nil {
			t.Fatal(err)
		}
		c := settle(t, e, res, 100, 900) // 1000 tokens = 0.1 CNY; 400 payable
		if c.PackageTokens != 300 || c.Cash != 10_000 || c.Amount != 100_000 || c.Shortfall != 60_000 || c.Discount != 30_000 {
			t.Errorf("charge %+v", c)
		}
		if _, err := reserve(t, e, "next", "glm-4", 1, 1); !is1113(err) {
			t.Errorf("after exhaustion: %v, want 1113", err)
		}
		closeAll(t, e)
		cash, left := r.funds("acct")
		if cash != 0 || left[p.ID] != 0 {
			t.Errorf("left cash %v package %d", cash, left[p.ID])
		}
		r.checkLedger("acct", map[string]int64{p.ID: 300}, mustCNY("0.01"))
		ps, _ := r.store.ListPackages(context.Background(), "acct")
		if ps[0].Status(r.clk.Now()) != StatusExhausted {
			t.Errorf("status %q", ps[0].Status(r.clk.Now()))
		}
	})
}

// A crash between reserve and settle: the engine disappears without
// flushing or returning its leases. A new engine started after the lease
// TTL reconciles: the settled-and-written request stays charged once, the
// rest of the leased credit (including the open reservation) returns.
func TestCrashBetweenReserveAndSettle(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		p := r.grant(Grant{AccountID: "acct", Tokens: 100_000})
		r.topup("acct", "5")
		e := r.engine(Config{LeaseTTL: time.Minute})
		done, err := reserve(t, e, "done", "glm-4", 100, 100)
		if err != nil {
			t.Fatal(err)
		}
		settle(t, e, done, 100, 50)
		if err := e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := reserve(t, e, "open", "glm-4", 100, 5000); err != nil {
			t.Fatal(err)
		}
		lost, err := reserve(t, e, "unflushed", "glm-4", 10, 10)
		if err != nil {
			t.Fatal(err)
		}
		settle(t, e, lost, 10, 10) // settled in memory, never written
		e.abandon()                // kill -9

		// Before the TTL the lease still counts as held by the dead engine.
		_, left := r.funds("acct")
		if left[p.ID] != 100_000-150 {
			t.Fatalf("remaining incl. leases %d", left[p.ID])
		}
		r.clk.Add(time.Minute + time.Second)
		e2 := r.engine(Config{LeaseTTL: time.Minute}) // reconciles at start
		var active int
		if err := r.db.SQL.QueryRow(`SELECT COUNT(*) FROM billing_leases WHERE state = 'active'`).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if active != 0 {
			t.Errorf("%d leases still active after reconcile", active)
		}
		rows := r.usage("acct")
		if len(rows) != 1 || rows[0].RequestID != "done" || rows[0].PackageTokens != 150 {
			t.Fatalf("usage rows %+v", rows)
		}
		cash, left := r.funds("acct")
		if cash != mustCNY("5") || left[p.ID] != 100_000-150 {
			t.Errorf("after reconcile cash %v package %d", cash, left[p.ID])
		}
		// The unleased database figures are the whole balance again.
		ps, _ := r.store.ListPackages(context.Background(), "acct")
		if ps[0].Unleased != 100_000-150 {
			t.Errorf("unleased %d", ps[0].Unleased)
		}
		closeAll(t, e2)
		r.checkLedger("acct", map[string]int64{p.ID: 100_000}, mustCNY("5"))
	})
}

// Settle is idempotent and a request id is reserved once.
func TestSettleOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		r.topup("acct", "1")
		e := r.engine(Config{})
		res, err := reserve(t, e, "x", "glm-4", 10, 10)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reserve(t, e, "x", "glm-4", 10, 10); err == nil {
			t.Fatal("second reserve of an in-flight id succeeded")
		}
		c1 := settle(t, e, res, 10, 10)
		c2 := settle(t, e, res, 1000, 1000)
		if c1.Amount != 2000 || c2.Amount != c1.Amount {
			t.Errorf("charges %+v then %+v", c1, c2)
		}
		closeAll(t, e)
		// A second engine that settles the same id (a retried batch, a
		// replayed request) writes no second row and charges nothing.
		e2 := r.engine(Config{})
		res2, err := reserve(t, e2, "x", "glm-4", 10, 10)
		if err != nil {
			t.Fatal(err)
		}
		settle(t, e2, res2, 10, 10)
		closeAll(t, e2)
		rows := r.usage("acct")
		if len(rows) != 1 {
			t.Fatalf("%d rows", len(rows))
		}
		cash, _ := r.funds("acct")
		if cash != mustCNY("1")-2000 {
			t.Errorf("cash %v", cash)
		}
		r.checkLedger("acct", nil, mustCNY("1"))
	})
}

// Free models never touch packages or cash, but still get a usage row.
func TestFreeModel(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		p := r.grant(Grant{AccountID: "acct", Tokens: 100})
		e := r.engine(Config{})
		res, err := reserve(t, e, "f", "glm-4-flash", 10_000, 4000)
		if err != nil {
			t.Fatal(err)
		}
		if c := settle(t, e, res, 10_000, 4000); c.Amount != 0 || len(c.Parts) != 0 {
			t.Errorf("charge %+v", c)
		}
		closeAll(t, e)
		_, left := r.funds("acct")
		if left[p.ID] != 100 {
			t.Errorf("package drained by a free model: %d", left[p.ID])
		}
		if rows := r.usage("acct"); len(rows) != 1 || rows[0].PromptTokens != 10_000 {
			t.Errorf("rows %+v", rows)
		}
	})
}

// Embeddings are billed on input only; images per image, from cash only.
func TestEmbeddingAndImagePrices(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		p := r.grant(Grant{AccountID: "acct", Tokens: 1})
		r.topup("acct", "1")
		e := r.engine(Config{})
		res, err := e.Reserve(context.Background(), ReserveRequest{RequestID: "emb", AccountID: "acct", Model: "embedding-2", PromptTokens: 3001})
		if err != nil {
			t.Fatal(err)
		}
		// 3001 tokens × 0.0005/1K = 1.5005 µ¥; 1 token from the package
		// (0.5 µ¥ rounds the discount to 1 µ¥... see cashFor): the
		// remaining 3000 tokens cost exactly 1500 µ¥ in cash.
		c, err := e.Settle(context.Background(), res, Usage{PromptTokens: 3001, CompletionTokens: 7}, "ok", false)
		if err != nil {
			t.Fatal(err)
		}
		if c.Amount != 1501 || c.Cash != 1500 || c.Discount != 1 || c.PackageTokens != 1 {
			t.Errorf("embedding charge %+v", c)
		}
		img, err := e.Reserve(context.Background(), ReserveRequest{RequestID: "img", AccountID: "acct", Model: "cogview-3", Images: 2})
		if err != nil {
			t.Fatal(err)
		}
		c, err = e.Settle(context.Background(), img, Usage{Images: 2}, "ok", false)
		if err != nil {
			t.Fatal(err)
		}
		if c.Amount != 500_000 || c.Cash != 500_000 {
			t.Errorf("image charge %+v", c)
		}
		closeAll(t, e)
		r.checkLedger("acct", map[string]int64{p.ID: 1}, mustCNY("1"))
	})
}

// After a burst of requests in flight ends, the in-flight map is made
// again, sized for what is still open (a Go map keeps its buckets), and
// the requests still open stay in flight: a second Reserve of one is
// refused, a settled id may be reserved again.
func TestInflightShrinksAfterBurst(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "glm.db"))
	e := r.engine(Config{})
	ctx := context.Background()
	const burst, open = 4000, 10
	ress := make([]*Reservation, burst)
	for i := range ress {
		res, err := e.Reserve(ctx, ReserveRequest{RequestID: fmt.Sprintf("req_%d", i), AccountID: "acct", Model: "glm-4-flash"})
		if err != nil {
			t.Fatal(err)
		}
		ress[i] = res
	}
	e.mu.Lock()
	peak, before := e.inflightPeak, reflect.ValueOf(e.inflight).Pointer()
	e.mu.Unlock()
	if peak != burst {
		t.Fatalf("peak in flight: got %d, want %d", peak, burst)
	}
	for _, res := range ress[open:] {
		if _, err := e.Settle(ctx, res, Usage{PromptTokens: 1}, "ok", false); err != nil {
			t.Fatal(err)
		}
	}
	e.mu.Lock()
	n, peak, after := len(e.inflight), e.inflightPeak, reflect.ValueOf(e.inflight).Pointer()
	e.mu.Unlock()
	if n != open || after == before || peak > burst/8 {
		t.Errorf("after the burst: got %d in flight, peak %d, map remade %v; want %d, peak ≤ %d, remade", n, peak, after != before, open, burst/8)
	}
	_, err := e.Reserve(ctx, ReserveRequest{RequestID: "req_3", AccountID: "acct", Model: "glm-4-flash"})
	var pe *platform.Error
	if !errors.As(err, &pe) || pe.Code != platform.CodeDuplicateReq {
		t.Errorf("second Reserve of an open request: got %v, want code %s", err, platform.CodeDuplicateReq)
	}
	if _, err := e.Reserve(ctx, ReserveRequest{RequestID: "req_3999", AccountID: "acct", Model: "glm-4-flash"}); err != nil {
		t.Errorf("Reserve of a settled id: got %v, want nil", err)
	}
}

// The writer's interval starts with the first row to wait and stops once
// nothing waits (docs/design.md §6 "Idle wake-ups"): a row is written by
// the interval alone, with no full batch and no Flush, and so is the
// first row after the writer has gone quiet.
func TestIntervalWritesFirstRowAfterQuiet(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		r.topup("acct", "10")
		e, err := NewEngine(ctx, LedgerOn(r.engineDB()), Config{Now: r.clk.Now, FlushInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
		for _, id := range []string{"r1", "r2"} {
			res, err := reserve(t, e, id, "glm-4", 10, 10)
			if err != nil {
				t.Fatal(err)
			}
			settle(t, e, res, 10, 10)
			deadline := time.Now().Add(10 * time.Second)
			for {
				rows, err := r.store.ListUsage(ctx, UsageFilter{AccountID: "acct"})
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) > 0 && rows[len(rows)-1].RequestID == id {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("usage rows after settling %s: got %d, want %s written within 10 s by the interval", id, len(rows), id)
				}
				time.Sleep(5 * time.Millisecond)
			}
			// Quiet: the writer has taken everything and stopped its timer.
			time.Sleep(60 * time.Millisecond)
		}
	})
}

// gatedLedger holds the next transaction until the test lets it run.
type gatedLedger struct {
	Ledger
	armed   atomic.Bool
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedLedger) Tx(ctx context.Context, fn func(LedgerTx) error) error {
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Ledger.Tx(ctx, fn)
}

// Flush writes the rows waiting when it starts; rows settled while it
// writes wait for the next write instead of a transaction of their own
// at once (docs/design.md §6).
func TestFlushWritesWhatWaitedAtItsStart(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		r.topup("acct", "10")
		g := &gatedLedger{Ledger: LedgerOn(r.engineDB()), entered: make(chan struct{}), gate: make(chan struct{})}
		e, err := NewEngine(ctx, g, Config{Now: r.clk.Now, Manual: true})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
		settleOne := func(id string) {
			res, err := reserve(t, e, id, "glm-4", 10, 10)
			if err != nil {
				t.Fatal(err)
			}
			settle(t, e, res, 10, 10)
		}
		settleOne("a")
		settleOne("b")
		g.armed.Store(true)
		done := make(chan error, 1)
		go func() { done <- e.Flush(ctx) }()
		<-g.entered
		settleOne("c") // arrives while a and b are being written
		close(g.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := len(r.usage("acct")), 2; got != want {
			t.Errorf("usage rows after the first flush: got %d, want %d (a and b)", got, want)
		}
		if got, want := e.pendingLen(), 1; got != want {
			t.Errorf("rows waiting after the first flush: got %d, want %d (c)", got, want)
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := len(r.usage("acct")), 3; got != want {
			t.Errorf("usage rows after the second flush: got %d, want %d", got, want)
		}
	})
}
