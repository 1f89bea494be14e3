package billing

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// audit runs Store.Audit and fails the test on any broken rule; with
// closed, it also requires that no lease is open (every engine closed, or
// reconciled).
func (r *rig) audit(account string, closed bool) *Audit {
	r.t.Helper()
	a, err := r.store.Audit(context.Background(), account)
	if err != nil {
		r.t.Fatalf("audit: %v", err)
	}
	for _, p := range a.Problems {
		r.t.Errorf("ledger: %s", p)
	}
	if closed && (a.OpenLeases != 0 || a.Leased() != 0) {
		r.t.Errorf("ledger: %d leases still open holding %d after every engine closed", a.OpenLeases, a.Leased())
	}
	return a
}

// TestAuditDetectsLoss proves the audit is not vacuous: it passes on an
// exact ledger and names the source when credit vanishes or appears.
func TestAuditDetectsLoss(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		r.topup("acct", "1")
		p := r.grant(Grant{AccountID: "acct", Tokens: 10_000, Models: []string{"glm-4"}})
		e := r.engine(Config{})
		res, err := reserve(t, e, "a1", "glm-4", 100, 100)
		if err != nil {
			t.Fatal(err)
		}
		settle(t, e, res, 100, 100)
		if err := e.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		a := r.audit("acct", false)
		if a.OpenLeases == 0 || a.Leased() == 0 {
			t.Fatalf("audit saw no open lease while the engine holds one: %+v", a)
		}
		closeAll(t, e)
		r.audit("acct", true)
		ctx := context.Background()
		// 126 tokens gone from the package with no row: the audit must say so.
		if _, err := r.db.SQL.ExecContext(ctx, `UPDATE billing_packages SET tokens_remaining = tokens_remaining - 126 WHERE id = $1`, p.ID); err != nil {
			t.Fatal(err)
		}
		a, err = r.store.Audit(ctx, "acct")
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Problems) != 1 || a.Err() == nil {
			t.Fatalf("audit of a package missing 126 tokens: %v", a.Problems)
		}
		// And cash counted twice (a lease's spent raised without a row).
		if _, err := r.db.SQL.ExecContext(ctx, `UPDATE billing_wallets SET cash_micros = cash_micros + 7 WHERE account_id = $1`, "acct"); err != nil {
			t.Fatal(err)
		}
		a, _ = r.store.Audit(ctx, "acct")
		if len(a.Problems) != 2 {
			t.Fatalf("audit after cash appeared: %v", a.Problems)
		}
	})
}

// stressOutcome is what the workers saw, to compare with the rows.
type stressOutcome struct {
	mu       sync.Mutex
	charged  map[string]Charge // Settle succeeded
	rejected map[string]bool   // 1113
}

// TestLedgerStressReplicas hammers several engines — each on its own pool,
// as replicas — with reserves and settles on many accounts and packages:
// usage below, at and above the reservation, reservations left open, settles
// repeated; meanwhile the injected clock moves so leases go idle and are
// returned, packages expire, the package order is re-checked
// (PackageRecheck) and new earlier-expiring packages are granted (refreshOrder
// takes leases from them), and writers flush concurrently. The ledger audit
// must be exact at every point it looks mid-run, and after every engine
// closed no credit may be left in a lease: for every package granted −
// remaining = tokens its usage parts paid, for cash top-ups − cash = what the
// parts paid. Each settled request has exactly one row with the charge Settle
// returned; each 1113 has its zero row.
func TestLedgerStressReplicas(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		seed := uint64(time.Now().UnixNano())
		t.Logf("seed %d", seed)
		ledgerStress(t, dsn, seed)
	})
}

func ledgerStress(t *testing.T, dsn string, seed uint64) {
	r := newRig(t, dsn)
	ctx := context.Background()
	const (
		nEngines  = 3
		nAccounts = 4
		workers   = 3 // per engine
		ops       = 60
	)
	accounts := make([]string, nAccounts)
	for i := range accounts {
		a := fmt.Sprintf("acct%d", i)
		accounts[i] = a
		// Small, odd amounts so leases shrink to per-request size and
		// accounts run dry mid-run (1113, exhaustion mid-stream).
		r.topup(a, fmt.Sprintf("0.%03d7", 40+i*13))
		r.grant(Grant{AccountID: a, Tokens: 5_003 + int64(i)*977, Models: []string{"glm-4"}, ExpiresAt: t0.Add(40 * time.Second)})
		r.grant(Grant{AccountID: a, Tokens: 7_919, ExpiresAt: t0.Add(24 * time.Hour)})
		r.grant(Grant{AccountID: a, Tokens: 3_331, Models: []string{"glm-4", "glm-4-air"}, ExpiresAt: t0.Add(48 * time.Hour)})
	}
	engines := make([]*Engine, nEngines)
	for i := range engines {
		engines[i] = r.engine(Config{
			TokenBlock: 2_000, CashBlock: 3_000, ShareDivisor: 4,
			IdleReturn: 3 * time.Second, PackageRecheck: 2 * time.Second,
			LeaseTTL: 8 * time.Second, FlushBatch: 7, Logger: quietLogger(),
		})
	}
	// partitioned cuts engine 0 off for a while: it neither renews nor
	// flushes, so the others reconcile its leases and its rows arrive late
	// (orphan debit, notes/metering.md "Crash story").
	var partitioned, workersDone atomic.Bool
	var cutAt time.Time
	cut, reclaimed := false, 0
	rejoined := make(chan struct{})
	out := &stressOutcome{charged: map[string]Charge{}, rejected: map[string]bool{}}
	var seq atomic.Int64
	var bg sync.WaitGroup
	stop := make(chan struct{})
	// Background: per engine a writer and a maintainer (the loops Manual
	// turns off), the clock, grants that must pay first, and mid-run audits.
	for ei, e := range engines {
		cut := func() bool { return ei == 0 && partitioned.Load() }
		bg.Add(2)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if cut() {
					time.Sleep(time.Millisecond)
					continue
				}
				if err := e.Flush(ctx); err != nil {
					t.Errorf("flush: %v", err)
					return
				}
				time.Sleep(time.Millisecond)
			}
		}()
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(3 * time.Millisecond):
				}
				if cut() {
					continue
				}
				if err := e.Maintain(ctx); err != nil {
					t.Errorf("maintain: %v", err)
					return
				}
			}
		}()
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		rng := rand.New(rand.NewPCG(seed, 1))
		grants := 0
		for tick := 0; ; tick++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			r.clk.Add(time.Duration(50+rng.IntN(400)) * time.Millisecond)
			if !cut && tick >= 5 {
				// Cut engine 0 off once it holds credit (reservations left
				// open keep some leased until Close, so this comes).
				var n int
				if err := r.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM billing_leases WHERE holder = $1 AND state = 'active'`, engines[0].Holder()).Scan(&n); err != nil {
					t.Errorf("leases: %v", err)
				}
				switch {
				case n > 0:
					cut, cutAt = true, r.clk.Now()
					partitioned.Store(true)
				case workersDone.Load():
					cut = true
					t.Errorf("engine 0 never held a lease to lose")
					close(rejoined)
				}
			}
			if partitioned.Load() && tick%5 == 0 {
				// While engine 0 is cut off, the others reclaim its leases
				// once they expire; it rejoins after two TTLs of clock.
				if n, err := engines[1].Reconcile(ctx); err != nil {
					t.Errorf("reconcile: %v", err)
				} else {
					reclaimed += n
				}
				if r.clk.Now().Sub(cutAt) >= 16*time.Second {
					partitioned.Store(false)
					close(rejoined)
				}
			}
			if rng.IntN(40) == 0 && grants < 8 {
				// A package that expires before the others: it must start
				// paying first (order.go).
				grants++
				a := accounts[rng.IntN(nAccounts)]
				now := r.clk.Now()
				if _, err := r.store.GrantPackage(ctx, Grant{AccountID: a, Tokens: 1_500 + int64(rng.IntN(900)), Models: []string{"glm-4"}, EffectiveAt: now, ExpiresAt: now.Add(20 * time.Second)}); err != nil {
					t.Errorf("grant: %v", err)
					return
				}
				engines[rng.IntN(nEngines)].PackagesChanged(a)
			}
			if rng.IntN(25) == 0 {
				if a, err := r.store.Audit(ctx, ""); err != nil {
					t.Errorf("audit: %v", err)
				} else if a.Err() != nil {
					t.Errorf("mid-run %v", a.Err())
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for ei, e := range engines {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(ei*100+w+2)))
				for i := 0; i < ops; i++ {
					stressOne(t, e, rng, accounts, out, &seq)
				}
			}()
		}
	}
	wg.Wait()
	workersDone.Store(true)
	<-rejoined // the partition happens whatever the speed of the workers
	close(stop)
	bg.Wait()
	// Every engine closes at once (SIGTERM to all replicas).
	var cw sync.WaitGroup
	for _, e := range engines {
		cw.Add(1)
		go func() {
			defer cw.Done()
			if err := e.Close(ctx); err != nil {
				t.Errorf("close: %v", err)
			}
		}()
	}
	cw.Wait()
	if t.Failed() {
		return
	}
	a := r.audit("", true)
	stressRows(t, r, accounts, out)
	// The partition must have done what it is there for.
	var late int
	if err := r.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM billing_leases WHERE holder = $1 AND close_note LIKE 'expired%'`, engines[0].Holder()).Scan(&late); err != nil {
		t.Fatal(err)
	}
	var uncollected int64
	for _, src := range a.Sources {
		uncollected += src.Uncollected
	}
	t.Logf("%d settled, %d refused, %d of the cut-off engine's leases reclaimed (%d by the explicit Reconcile), %d uncollected, %d sources audited",
		len(out.charged), len(out.rejected), late, reclaimed, uncollected, len(a.Sources))
	if late == 0 {
		t.Errorf("no lease was reclaimed while engine 0 was cut off")
	}
}

// stressOne makes one request on e: reserve, then usually settle with
// usage below, at or above the reservation; sometimes settle twice;
// sometimes leave the reservation open (released at Close).
func stressOne(t *testing.T, e *Engine, rng *rand.Rand, accounts []string, out *stressOutcome, seq *atomic.Int64) {
	ctx := context.Background()
	id := fmt.Sprintf("r%06d", seq.Add(1))
	models := []string{"glm-4", "glm-4", "glm-4", "glm-4-air", "glm-4-flash", "embedding-2"}
	model := models[rng.IntN(len(models))]
	prompt, maxTok := int64(1+rng.IntN(300)), int64(rng.IntN(400))
	res, err := e.Reserve(ctx, ReserveRequest{RequestID: id, AccountID: accounts[rng.IntN(len(accounts))], KeyID: "k", Model: model, PromptTokens: prompt, MaxTokens: maxTok})
	if err != nil {
		if !is1113(err) {
			t.Errorf("reserve %s: %v", id, err)
			return
		}
		out.mu.Lock()
		out.rejected[id] = true
		out.mu.Unlock()
		return
	}
	if rng.IntN(20) == 0 {
		return // left open: released uncharged at Close
	}
	u := Usage{PromptTokens: prompt, CompletionTokens: maxTok}
	switch rng.IntN(4) {
	case 0: // less than reserved
		u.CompletionTokens = int64(rng.IntN(int(maxTok) + 1))
	case 1: // more: estimate too low / exhaustion mid-stream
		u.PromptTokens += int64(rng.IntN(200))
		u.CompletionTokens += int64(rng.IntN(300))
	}
	c, err := e.Settle(ctx, res, u, string(platform.OutcomeOK), false)
	if err != nil {
		t.Errorf("settle %s: %v", id, err)
		return
	}
	if rng.IntN(10) == 0 {
		again, err := e.Settle(ctx, res, u, string(platform.OutcomeOK), false)
		if err != nil || again.Amount != c.Amount || again.Cash != c.Cash {
			t.Errorf("second settle of %s: %+v %v, first %+v", id, again, err, c)
		}
	}
	out.mu.Lock()
	out.charged[id] = c
	out.mu.Unlock()
}

// stressRows: one row per settled or refused request with what Settle
// returned; none for reservations left open.
func stressRows(t *testing.T, r *rig, accounts []string, out *stressOutcome) {
	t.Helper()
	seen := map[string]bool{}
	for _, a := range accounts {
		for _, u := range r.usage(a) {
			if seen[u.RequestID] {
				t.Errorf("request %s has two rows", u.RequestID)
			}
			seen[u.RequestID] = true
			if c, ok := out.charged[u.RequestID]; ok {
				if c.Amount != u.Amount || c.Cash != u.Cash || c.Discount != u.Discount || c.Shortfall != u.Shortfall || c.PackageTokens != u.PackageTokens {
					t.Errorf("request %s: row %+v, Settle said %+v", u.RequestID, u.Charge, c)
				}
			} else if !out.rejected[u.RequestID] {
				t.Errorf("request %s has a row but was neither settled nor refused", u.RequestID)
			} else if u.Amount != 0 || u.Outcome != OutcomeRejected {
				t.Errorf("refused request %s: row %+v", u.RequestID, u)
			}
		}
	}
	for id := range out.charged {
		if !seen[id] {
			t.Errorf("settled request %s has no row", id)
		}
	}
	for id := range out.rejected {
		if !seen[id] {
			t.Errorf("refused request %s has no row", id)
		}
	}
	if len(out.charged) == 0 || len(out.rejected) == 0 {
		t.Errorf("stress ran %d settled and %d refused requests: it must see both", len(out.charged), len(out.rejected))
	}
}

// quietLogger drops the engines' background warnings (order refresh under
// contention), which the stress provokes on purpose.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestReserveRacingClose: reservations still arriving while Close runs
// (a caller that did not drain first) must not lease credit after Close
// marked the leases for return: once Close returned, no lease is open and
// the ledger is exact. Every Reserve either succeeds before Close took the
// account or reports ErrClosed.
func TestReserveRacingClose(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		accts := []string{"a0", "a1", "a2"}
		for _, a := range accts {
			r.topup(a, "50")
		}
		// Tiny blocks: most reservations take a new lease.
		e := r.engine(Config{CashBlock: 1, ShareDivisor: 1 << 40, Logger: quietLogger()})
		var wg sync.WaitGroup
		var n, closedErrs atomic.Int64
		started := make(chan struct{})
		var once sync.Once
		for g := 0; g < 12; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					id := fmt.Sprintf("g%d-%d", g, i)
					res, err := e.Reserve(ctx, ReserveRequest{RequestID: id, AccountID: accts[(g+i)%len(accts)], Model: "glm-4", PromptTokens: 10, MaxTokens: 10})
					if errors.Is(err, ErrClosed) {
						closedErrs.Add(1)
						return
					}
					if err != nil {
						t.Errorf("reserve: %v", err)
						return
					}
					if n.Add(1) == 50 {
						once.Do(func() { close(started) })
					}
					if _, err := e.Settle(ctx, res, Usage{PromptTokens: 10, CompletionTokens: 10}, string(platform.OutcomeOK), false); err != nil && !errors.Is(err, ErrClosed) {
						t.Errorf("settle: %v", err)
						return
					}
				}
			}()
		}
		<-started
		if err := e.Close(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if closedErrs.Load() != 12 {
			t.Fatalf("%d of 12 callers saw ErrClosed", closedErrs.Load())
		}
		r.audit("", true)
	})
}
