package billing

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/pgtest"

	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// eachDB runs fn on both engines through the store's one helper, so
// billing's tables are held to the same databases as the store's: a fresh
// SQLite file, and a fresh PostgreSQL schema when GLMKIT_TEST_PG_DSN is
// set. fn gets a DSN; every store.OpenDB of it sees the same database, as
// replicas would.
func eachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	storetest.EachEngine(t, "billing", fn)
}

// LedgerOn is the platform's Ledger on a database handle, for this
// package's tests. The implementation (platform/store/ledger) imports
// billing, so these tests cannot import it without a cycle; the external
// test package, which can, sets it before any test runs
// (ledger_external_test.go).
var LedgerOn func(*store.DB) Ledger

// onlyPG runs fn on PostgreSQL only (skipped without the DSN).
func onlyPG(t *testing.T, fn func(t *testing.T, dsn string)) {
	fn(t, freshPG(t))
}

// freshPG makes a new schema and returns a DSN whose search_path is it,
// so tests never see each other's tables (skipped without
// GLMKIT_TEST_PG_DSN).
func freshPG(t *testing.T) string { return pgtest.Schema(t, "billing") }

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// rig is one database with a store and a clock.
type rig struct {
	t     *testing.T
	dsn   string
	db    *store.DB
	store *Store
	clk   *clock
}

var t0 = time.Date(2024, 2, 3, 10, 0, 0, 0, BillingZone)

func newRig(t *testing.T, dsn string) *rig {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenDB(ctx, dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	clk := newClock(t0)
	return &rig{t: t, dsn: dsn, db: db, store: NewStore(LedgerOn(db), clk.Now), clk: clk}
}

// engine opens an engine with its own connection pool (a replica).
func (r *rig) engine(cfg Config) *Engine {
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
	cfg.Manual = true
	e, err := NewEngine(ctx, LedgerOn(db), cfg)
	if err != nil {
		r.t.Fatalf("engine: %v", err)
	}
	r.t.Cleanup(func() { e.abandon() })
	return e
}

func (r *rig) topup(acct, cny string) {
	r.t.Helper()
	if _, err := r.store.TopUp(context.Background(), acct, mustCNY(cny), "test"); err != nil {
		r.t.Fatalf("topup: %v", err)
	}
}

func (r *rig) grant(g Grant) Package {
	r.t.Helper()
	if g.ExpiresAt.IsZero() {
		g.ExpiresAt = r.clk.Now().AddDate(0, 3, 0)
	}
	p, err := r.store.GrantPackage(context.Background(), g)
	if err != nil {
		r.t.Fatalf("grant: %v", err)
	}
	return p
}

// funds is what the database says an account has: cash and per-package
// remaining tokens, counting credit leased and not spent.
func (r *rig) funds(acct string) (Micros, map[string]int64) {
	r.t.Helper()
	ctx := context.Background()
	b, err := r.store.Balance(ctx, acct)
	if err != nil {
		r.t.Fatal(err)
	}
	ps, err := r.store.ListPackages(ctx, acct)
	if err != nil {
		r.t.Fatal(err)
	}
	m := map[string]int64{}
	for _, p := range ps {
		m[p.ID] = p.TokensRemaining
	}
	return b.Cash, m
}

func (r *rig) usage(acct string) []UsageRecord {
	r.t.Helper()
	rows, err := r.store.ListUsage(context.Background(), UsageFilter{AccountID: acct, WithParts: true})
	if err != nil {
		r.t.Fatal(err)
	}
	return rows
}

// checkLedger proves money is conserved: for each package, tokens granted
// = tokens remaining + tokens the usage parts say it paid; for cash, the
// top-ups = cash left + cash the usage rows paid; and every row's amount =
// discount + cash + shortfall, with parts summing to the row.
func (r *rig) checkLedger(acct string, granted map[string]int64, topups Micros) {
	r.t.Helper()
	cash, left := r.funds(acct)
	rows := r.usage(acct)
	paidTokens := map[string]int64{}
	var paidCash Micros
	for _, u := range rows {
		if u.Amount != u.Discount+u.Cash+u.Shortfall {
			r.t.Errorf("row %s: amount %d != discount %d + cash %d + shortfall %d", u.RequestID, u.Amount, u.Discount, u.Cash, u.Shortfall)
		}
		var pc, pd Micros
		var pt int64
		for _, p := range u.Parts {
			if p.Source == PartCash {
				pc += p.Micros
			} else {
				pd += p.Micros
				pt += p.Tokens
				paidTokens[p.Source] += p.Tokens
			}
		}
		if pc != u.Cash || pd != u.Discount || pt != u.PackageTokens {
			r.t.Errorf("row %s: parts cash %d discount %d tokens %d != row %d %d %d", u.RequestID, pc, pd, pt, u.Cash, u.Discount, u.PackageTokens)
		}
		paidCash += u.Cash
	}
	for id, g := range granted {
		if left[id] < 0 {
			r.t.Errorf("package %s negative: %d", id, left[id])
		}
		if g != left[id]+paidTokens[id] {
			r.t.Errorf("package %s: granted %d != remaining %d + paid %d", id, g, left[id], paidTokens[id])
		}
	}
	if cash < 0 {
		r.t.Errorf("cash negative: %d", cash)
	}
	if topups != cash+paidCash {
		r.t.Errorf("cash: topups %d != left %d + paid %d", topups, cash, paidCash)
	}
	// The same invariant from the tables, lease by lease (Store.Audit).
	r.audit(acct, false)
}
