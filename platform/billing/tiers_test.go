package billing

import (
	"context"
	"sync"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// tieredPrice is a 2026-style row: 2 CNY/M input, 0.4 cached, 8 output,
// 0.01 CNY per web search.
var tieredPrice = Price{Model: "glm-4.7", Input: 2000, CachedInput: 400, Output: 8000, PerCall: 10_000}

// tierCase is one request and the charge its tiers add up to, worked out
// by hand from tieredPrice (batch lines at 50%: 1000 / 200 / 4000 / 5000).
type tierCase struct {
	id    string
	batch bool
	u     Usage
	want  Micros
}

var tierCases = []tierCase{
	// 1,000 of 1,200 prompt tokens cached: 200×2000 + 1000×400 + 300×8000
	// = 3,200,000 nanos = 3,200 µ¥ (at the input price it would be 4,800).
	{"cached", false, Usage{PromptTokens: 1200, CachedTokens: 1000, CompletionTokens: 300, ReasoningTokens: 200}, 3200},
	// Reasoning tokens are inside completion_tokens, billed once as output.
	{"reasoning", false, Usage{PromptTokens: 10, CompletionTokens: 500, ReasoningTokens: 450}, 4020},
	// One web search: 7×2000 + 3×8000 = 38,000 nanos = 38 µ¥, + 10,000.
	{"search", false, Usage{PromptTokens: 7, CompletionTokens: 3, Calls: 1}, 10_038},
	// Rounded up once per request: 1×400 nanos → 1 µ¥.
	{"round", false, Usage{PromptTokens: 1, CachedTokens: 1}, 1},
	// A batch line at half price: 200×1000 + 1000×200 + 300×4000 = 1,600 µ¥.
	{"batch", true, Usage{PromptTokens: 1200, CachedTokens: 1000, CompletionTokens: 300, ReasoningTokens: 200}, 1600},
	// More cached than prompt (a wrong upstream): clamped, never billed twice.
	{"overcached", false, Usage{PromptTokens: 100, CachedTokens: 500}, 40},
}

// runTierCases reserves (as the meter does: the prompt estimate at the
// input price, no cache known) and settles each case on the engines in
// turn, and returns the charges by id.
func runTierCases(t *testing.T, es []*Engine, acct string) map[string]Charge {
	t.Helper()
	ctx := context.Background()
	out := map[string]Charge{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range tierCases {
		e := es[i%len(es)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.Reserve(ctx, ReserveRequest{RequestID: acct + "-" + c.id, AccountID: acct, Model: tieredPrice.Model,
				PromptTokens: c.u.PromptTokens, MaxTokens: c.u.CompletionTokens + 10, Calls: c.u.Calls, Batch: c.batch})
			if err != nil {
				t.Errorf("%s: reserve: %v", c.id, err)
				return
			}
			// The reservation is a safe upper bound: every prompt token at
			// the input price, the whole cap at the output price.
			if held := res.Price.Cost(res.Estimate); held < c.want {
				t.Errorf("%s: got reservation worth %d µ¥, want at least the charge %d", c.id, held, c.want)
			}
			ch, err := e.Settle(ctx, res, c.u, "ok", false)
			if err != nil {
				t.Errorf("%s: settle: %v", c.id, err)
				return
			}
			mu.Lock()
			out[c.id] = ch
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// checkTierRows recomputes every charge from its usage row alone (tokens
// by tier, the prices the row kept, its price class) and checks the bill
// splits the month by tier to the nano.
func checkTierRows(t *testing.T, r *rig, acct string, charges map[string]Charge) {
	t.Helper()
	rows := r.usage(acct)
	if len(rows) != len(tierCases) {
		t.Fatalf("got %d usage rows, want %d", len(rows), len(tierCases))
	}
	byID := map[string]UsageRecord{}
	for _, u := range rows {
		byID[u.RequestID] = u
	}
	var tiers TierCost
	for _, c := range tierCases {
		u, ok := byID[acct+"-"+c.id]
		if !ok {
			t.Fatalf("%s: no usage row", c.id)
		}
		if u.Amount != c.want || charges[c.id].Amount != c.want {
			t.Errorf("%s: got amount %d (charge %d), want %d", c.id, u.Amount, charges[c.id].Amount, c.want)
		}
		if got := u.Rate.Cost(u.Usage()); got != u.Amount {
			t.Errorf("%s: recomputed from the row %d, row says %d", c.id, got, u.Amount)
		}
		wantClass := ClassStandard
		if c.batch {
			wantClass = ClassBatch
		}
		if u.Class != wantClass {
			t.Errorf("%s: got class %q, want %q", c.id, u.Class, wantClass)
		}
		if u.CachedTokens != min(c.u.CachedTokens, c.u.PromptTokens) || u.ReasoningTokens != c.u.ReasoningTokens || u.Calls != c.u.Calls {
			t.Errorf("%s: got cached %d reasoning %d calls %d, want %d %d %d", c.id, u.CachedTokens, u.ReasoningTokens, u.Calls,
				min(c.u.CachedTokens, c.u.PromptTokens), c.u.ReasoningTokens, c.u.Calls)
		}
		tiers.add(u.Tiers())
	}
	bill, err := r.store.MonthlyBill(context.Background(), acct, "2024-02")
	if err != nil {
		t.Fatal(err)
	}
	if bill.Totals.Tiers != tiers {
		t.Errorf("bill tiers: got %+v, want %+v", bill.Totals.Tiers, tiers)
	}
	// cached: 200 input ×2000, 1000 cached ×400; batch the same at 1000/200.
	if bill.Totals.Tiers.CachedInput != 1000*400+1000*200+1*400+100*400 {
		t.Errorf("bill cached tier: got %d nanos, want %d", bill.Totals.Tiers.CachedInput, 1000*400+1000*200+1*400+100*400)
	}
	if bill.Totals.BatchRequests != 1 || bill.Totals.CachedTokens != 2101 || bill.Totals.ReasoningTokens != 850 || bill.Totals.Calls != 1 {
		t.Errorf("bill counts: got batch %d cached %d reasoning %d calls %d, want 1 2101 850 1", bill.Totals.BatchRequests,
			bill.Totals.CachedTokens, bill.Totals.ReasoningTokens, bill.Totals.Calls)
	}
	if rd := bill.Totals.Rounding(); rd < 0 || rd >= Nanos(1000*len(tierCases)) {
		t.Errorf("bill rounding: got %d nanos, want in [0, %d)", rd, 1000*len(tierCases))
	}
}

// Each tier on SQLite and PostgreSQL, paid in cash: the charge of every
// row is recomputed from the row, and money is conserved.
func TestTiersCash(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		if err := r.store.SetPrice(context.Background(), tieredPrice); err != nil {
			t.Fatal(err)
		}
		r.topup("acct", "10")
		e := r.engine(Config{})
		charges := runTierCases(t, []*Engine{e}, "acct")
		closeAll(t, e)
		checkTierRows(t, r, "acct", charges)
		r.checkLedger("acct", nil, mustCNY("10"))
	})
}

// The same through a package (one package token per token whatever its
// tier; the discount is the list price of what it covered) and cash for
// the rest.
func TestTiersPackageThenCash(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		if err := r.store.SetPrice(context.Background(), tieredPrice); err != nil {
			t.Fatal(err)
		}
		pkg := r.grant(Grant{AccountID: "acct", Tokens: 1500, Models: []string{tieredPrice.Model}})
		r.topup("acct", "10")
		e := r.engine(Config{})
		charges := runTierCases(t, []*Engine{e}, "acct")
		closeAll(t, e)
		checkTierRows(t, r, "acct", charges)
		r.checkLedger("acct", map[string]int64{pkg.ID: 1500}, mustCNY("10"))
	})
}

// Two replicas on one PostgreSQL share the account: same charges, same
// rows, money conserved (Store.Audit lease by lease).
func TestTiersTwoReplicas(t *testing.T) {
	onlyPG(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		if err := r.store.SetPrice(context.Background(), tieredPrice); err != nil {
			t.Fatal(err)
		}
		pkg := r.grant(Grant{AccountID: "acct", Tokens: 1500, Models: []string{tieredPrice.Model}})
		r.topup("acct", "10")
		es := []*Engine{r.engine(Config{}), r.engine(Config{})}
		charges := runTierCases(t, es, "acct")
		closeAll(t, es...)
		checkTierRows(t, r, "acct", charges)
		r.checkLedger("acct", map[string]int64{pkg.ID: 1500}, mustCNY("10"))
	})
}

// The batch percentage is configurable; a batch line's prices round up to
// the micro, never below the percentage of the list.
func TestBatchPercent(t *testing.T) {
	p := Price{Input: 333, CachedInput: 1, Output: 1000, PerCall: 7, Image: 250_000}
	got := p.Scaled(30)
	want := Price{Input: 100, CachedInput: 1, Output: 300, PerCall: 3, Image: 75_000}
	if got != want {
		t.Errorf("Scaled(30): got %+v, want %+v", got, want)
	}
	if got := p.Scaled(100); got != p {
		t.Errorf("Scaled(100): got %+v, want the list %+v", got, p)
	}
	if got := (Price{Input: 5}).Scaled(50).Cached(); got != 3 {
		t.Errorf("unset cached price at 50%%: got %d, want the scaled input 3", got)
	}
}

// The hot path's seam: a batch line marked on platform.ReserveRequest is
// charged at the batch price from platform.Usage's tiers, a web search
// reserved with it, and its row says batch.
func TestMeterBatchLineWithTiers(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		if err := r.store.SetPrice(ctx, tieredPrice); err != nil {
			t.Fatal(err)
		}
		r.topup("acct", "1")
		e := r.engine(Config{BatchPercent: 40})
		m := Meter{Engine: e}
		res, err := m.Reserve(ctx, platform.ReserveRequest{RequestLogID: "line-1", AccountID: "acct", Model: tieredPrice.Model,
			PromptTokens: 1200, MaxTokens: 300, Calls: 1, Batch: true})
		if err != nil {
			t.Fatal(err)
		}
		c, err := res.Settle(ctx, platform.Settlement{Outcome: platform.OutcomeOK, Usage: platform.Usage{
			PromptTokens: 1200, CompletionTokens: 300, CachedTokens: 1000, ReasoningTokens: 200, ToolCalls: 1}})
		if err != nil {
			t.Fatal(err)
		}
		// At 40%: 800 / 160 / 3200 per 1K, 4000 per call:
		// 200×800 + 1000×160 + 300×3200 = 1,280,000 nanos = 1280 µ¥, + 4000.
		if c.Amount != 5280 {
			t.Errorf("got charge %d µ¥, want 5280", c.Amount)
		}
		closeAll(t, e)
		rows := r.usage("acct")
		if len(rows) != 1 || rows[0].Class != ClassBatch || rows[0].Amount != 5280 || rows[0].Calls != 1 ||
			rows[0].Rate != (Price{Model: tieredPrice.Model, Input: 800, CachedInput: 160, Output: 3200, PerCall: 4000}) {
			t.Fatalf("got rows %+v, want one batch row at 5280 µ¥ with the 40%% prices", rows)
		}
		r.checkLedger("acct", nil, mustCNY("1"))
	})
}
