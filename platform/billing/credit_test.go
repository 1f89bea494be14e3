package billing

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
)

// liveEngine opens an engine with its background loops running (flush,
// lease maintenance, the return of scarce leases), as glm serve runs it,
// on its own connection pool: a replica.
func (r *rig) liveEngine(cfg Config) *Engine {
	r.t.Helper()
	ctx := context.Background()
	db, err := store.OpenDB(ctx, r.dsn)
	if err != nil {
		r.t.Fatalf("open: %v", err)
	}
	r.t.Cleanup(func() { db.Close() })
	if cfg.Now == nil {
		cfg.Now = r.clk.Now
	}
	cfg.Logger = quietLogger()
	e, err := NewEngine(ctx, LedgerOn(db), cfg)
	if err != nil {
		r.t.Fatalf("engine: %v", err)
	}
	r.t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// burstResult is what a burst of requests on one small package did.
type burstResult struct {
	admitted, refused, bounded int
	// lastAdmit and firstRefusal order admissions and refusals: every
	// admission came before the first refusal when lastAdmit < firstRefusal.
	lastAdmit, firstRefusal int64
	spent                   int64 // package tokens charged
}

// burst sends n concurrent chats without max_tokens (the model's maximum
// output, 8192 for glm-4) with a prompt of 8 tokens, admitted with at least
// platform.MinUsefulOutput. The scripted answer is 30 completion tokens,
// or max_tokens when the reservation bounded it lower (the upstream stops
// there with finish_reason "length").
func burst(t *testing.T, engines []*Engine, n int) burstResult {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var seq atomic.Int64
	out := burstResult{firstRefusal: 1 << 62}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			e := engines[i%len(engines)]
			res, err := e.Reserve(ctx, ReserveRequest{RequestID: fmt.Sprintf("burst-%03d", i), AccountID: "acct", KeyID: "k1",
				Model: "glm-4", PromptTokens: 8, MaxTokens: 8192, MinOutput: platform.MinUsefulOutput})
			at := seq.Add(1)
			if err != nil {
				if !is1113(err) {
					t.Errorf("reserve %d: got %v, want admission or 1113", i, err)
				}
				mu.Lock()
				out.refused++
				out.firstRefusal = min(out.firstRefusal, at)
				mu.Unlock()
				return
			}
			used := Usage{PromptTokens: 8, CompletionTokens: min(30, res.Estimate.CompletionTokens)}
			c, err := e.Settle(ctx, res, used, string(platform.OutcomeOK), false)
			if err != nil {
				t.Errorf("settle %d: %v", i, err)
			}
			if c.Shortfall != 0 {
				t.Errorf("request %d: got shortfall %d, want 0 (output bounded to what the credit pays)", i, c.Shortfall)
			}
			mu.Lock()
			out.admitted++
			out.spent += c.PackageTokens
			if res.Bounded {
				out.bounded++
			}
			out.lastAdmit = max(out.lastAdmit, at)
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// checkBurst holds a burst on a 400-token package to the credit policy
// (docs/design.md §7): at least 95 % of the package spent before the first
// 1113, no admission after it, nothing overspent, the ledger exact.
func checkBurst(t *testing.T, r *rig, pkg Package, got burstResult, engines ...*Engine) {
	t.Helper()
	share := float64(got.spent) / float64(pkg.TokensGranted)
	t.Logf("admitted %d (bounded %d), refused %d; spent %d of %d tokens (%.1f %%) before the first 1113",
		got.admitted, got.bounded, got.refused, got.spent, pkg.TokensGranted, 100*share)
	if got.refused == 0 || got.admitted+got.refused != 64 {
		t.Errorf("got %d admitted + %d refused, want 64 with some refused", got.admitted, got.refused)
	}
	if got.lastAdmit > got.firstRefusal {
		t.Errorf("got an admission (#%d) after the first 1113 (#%d), want none", got.lastAdmit, got.firstRefusal)
	}
	if share < 0.95 {
		t.Errorf("got %.1f %% of the package spent before the first 1113, want ≥ 95 %%", 100*share)
	}
	closeAll(t, engines...)
	r.checkLedger("acct", map[string]int64{pkg.ID: pkg.TokensGranted}, 0)
	_, left := r.funds("acct")
	if left[pkg.ID] != pkg.TokensGranted-got.spent || left[pkg.ID] < 0 {
		t.Errorf("package left %d, want %d − %d spent", left[pkg.ID], pkg.TokensGranted, got.spent)
	}
	// What is left cannot pay for the prompt and the minimum output.
	if left[pkg.ID] >= 8+platform.MinUsefulOutput {
		t.Errorf("package left %d tokens, enough for one more request: it was refused while credit lasted", left[pkg.ID])
	}
}

// A 64-way burst of requests without max_tokens on a 400-token package:
// the old rule reserved the model's maximum output and refused almost
// every request while most of the package was unspent.
func TestCreditBurstOneEngine(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		pkg := r.grant(Grant{AccountID: "acct", Tokens: 400, Models: []string{"glm-4"}})
		e := r.liveEngine(Config{})
		checkBurst(t, r, pkg, burst(t, []*Engine{e}, 64), e)
	})
}

// The same burst spread over three replicas on one database: credit one
// replica holds comes back to the database as soon as no request of its
// own needs it, and the others wait for it instead of refusing.
func TestCreditBurstThreeReplicas(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		pkg := r.grant(Grant{AccountID: "acct", Tokens: 400, Models: []string{"glm-4"}})
		es := []*Engine{r.liveEngine(Config{}), r.liveEngine(Config{}), r.liveEngine(Config{})}
		checkBurst(t, r, pkg, burst(t, es, 64), es...)
	})
}

// A 1,000-token package serves a request without max_tokens: it is
// admitted with its output bounded to what the package pays for after the
// prompt, and charged no more than the package holds.
func TestCreditBoundsOutputToBalance(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		pkg := r.grant(Grant{AccountID: "acct", Tokens: 1000, Models: []string{"glm-4"}})
		e := r.engine(Config{})
		ctx := context.Background()
		res, err := e.Reserve(ctx, ReserveRequest{RequestID: "one", AccountID: "acct", Model: "glm-4",
			PromptTokens: 20, MaxTokens: 8192, MinOutput: platform.MinUsefulOutput})
		if err != nil {
			t.Fatalf("reserve: got %v, want admission", err)
		}
		if !res.Bounded || res.Estimate.CompletionTokens != 980 {
			t.Errorf("got output %d bounded %v, want 980 bounded", res.Estimate.CompletionTokens, res.Bounded)
		}
		c, err := e.Settle(ctx, res, Usage{PromptTokens: 20, CompletionTokens: 980}, "ok", false)
		if err != nil || c.Shortfall != 0 || c.PackageTokens != 1000 {
			t.Errorf("settle: got %+v, %v; want 1000 package tokens, no shortfall", c, err)
		}
		// Nothing left: the next request is refused with 1113.
		_, err = e.Reserve(ctx, ReserveRequest{RequestID: "two", AccountID: "acct", Model: "glm-4",
			PromptTokens: 20, MaxTokens: 8192, MinOutput: platform.MinUsefulOutput})
		if !is1113(err) {
			t.Errorf("second reserve: got %v, want 1113", err)
		}
		closeAll(t, e)
		r.checkLedger("acct", map[string]int64{pkg.ID: 1000}, 0)
	})
}

// A request whose credit is held by another request in flight waits for
// it; when the holder does not settle within CreditWait the answer is 1302
// (too much concurrency for the balance), not 1113.
func TestCreditWaitEndsIn1302(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		r.grant(Grant{AccountID: "acct", Tokens: 100, Models: []string{"glm-4"}})
		e := r.engine(Config{CreditWait: 50 * 1e6})
		ctx := context.Background()
		held, err := e.Reserve(ctx, ReserveRequest{RequestID: "holder", AccountID: "acct", Model: "glm-4",
			PromptTokens: 8, MaxTokens: 8192, MinOutput: platform.MinUsefulOutput})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.Reserve(ctx, ReserveRequest{RequestID: "waiter", AccountID: "acct", Model: "glm-4",
			PromptTokens: 8, MaxTokens: 8192, MinOutput: platform.MinUsefulOutput})
		if pe := platform.AsError(err); err == nil || pe.Code != platform.CodeConcurrency {
			t.Errorf("got %v, want 1302 after waiting", err)
		}
		if _, err := e.Settle(ctx, held, Usage{PromptTokens: 8, CompletionTokens: 10}, "ok", false); err != nil {
			t.Fatal(err)
		}
		closeAll(t, e)
		for _, u := range r.usage("acct") {
			if u.RequestID == "waiter" && u.Outcome != OutcomeBusy {
				t.Errorf("waiter's row: got outcome %q, want %q", u.Outcome, OutcomeBusy)
			}
		}
	})
}
