package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Config tunes an Engine. Zero values take the defaults in brackets.
type Config struct {
	// Holder names this process in lease rows [random]. Leases are owned
	// by a holder; a holder that stops renewing loses them after LeaseTTL.
	Holder string
	// TokenBlock is the most package tokens one lease takes beyond the
	// request that triggered it [1,000,000].
	TokenBlock int64
	// CashBlock is the most cash one lease takes beyond the request that
	// triggered it [10 CNY].
	CashBlock Micros
	// ShareDivisor caps a lease's headroom at 1/ShareDivisor of what the
	// source has left [4], so one replica never hoards an account's whole
	// balance and leases shrink toward per-request size near exhaustion.
	ShareDivisor int64
	// LeaseTTL is how long a lease outlives its holder's last renewal
	// [2 min]. Holders renew every TTL/4 and stop spending a lease whose
	// last renewal is older than TTL/2, so a lease is never spent after
	// another process may have reclaimed it.
	LeaseTTL time.Duration
	// FlushInterval is how long a usage row waits at most before it is
	// written [100 ms]; the interval starts with the first row to wait.
	FlushInterval time.Duration
	// FlushBatch wakes the writer early when this many rows wait [1000].
	FlushBatch int
	// MaxPending makes Settle write synchronously when this many rows wait
	// [50,000], bounding memory if the database is slower than traffic.
	MaxPending int
	// IdleReturn gives a lease back when it has not been used for this
	// long [30 s], so credit held by a quiet replica returns to the pool.
	IdleReturn time.Duration
	// PriceRefresh is how often the price table is re-read [30 s].
	PriceRefresh time.Duration
	// CreditWait is how long a request the credit cannot pay waits while
	// requests in flight hold credit that may come back, before it is
	// refused with 1302 [30 s] (docs/design.md §7).
	CreditWait time.Duration
	// PackageRecheck is how long an account's "no package covers model M"
	// answer is trusted before the database is asked again [5 s]; it keeps
	// cash-only accounts off the database between leases.
	PackageRecheck time.Duration
	// BatchPercent is the price of a batch line in percent of the list
	// price [50, the cloud's batch discount] (docs/design.md §7).
	BatchPercent int64
	// Now is the clock [time.Now].
	Now func() time.Time
	// Logger receives background errors [slog.Default()].
	Logger *slog.Logger
	// Metrics receives the writer's and the leases' figures and every
	// background failure [none].
	Metrics *Metrics
	// Manual turns off the background goroutines; the caller drives Flush
	// and Maintain (tests).
	Manual bool
}

func (c *Config) defaults() {
	if c.Holder == "" {
		c.Holder = platform.RandomID("h_", 10)
	}
	if c.TokenBlock <= 0 {
		c.TokenBlock = 1_000_000
	}
	if c.CashBlock <= 0 {
		c.CashBlock = 10 * MicrosPerCNY
	}
	if c.ShareDivisor <= 0 {
		c.ShareDivisor = 4
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 2 * time.Minute
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.FlushBatch <= 0 {
		c.FlushBatch = 1000
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 50_000
	}
	if c.IdleReturn <= 0 {
		c.IdleReturn = 30 * time.Second
	}
	if c.PriceRefresh <= 0 {
		c.PriceRefresh = DefaultPriceRefresh
	}
	if c.CreditWait <= 0 {
		c.CreditWait = 30 * time.Second
	}
	if c.PackageRecheck <= 0 {
		c.PackageRecheck = 5 * time.Second
	}
	if c.BatchPercent <= 0 || c.BatchPercent > 100 {
		c.BatchPercent = DefaultBatchPercent
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// DefaultBatchPercent is the batch price in percent of the list price: the
// cloud runs batch jobs at half price (docs/v4.md §7).
const DefaultBatchPercent = 50

// ErrClosed is returned by an Engine after Close.
var ErrClosed = errors.New("billing: engine closed")

// Engine is the metering hot path: Reserve before the upstream call,
// Settle after it. It spends credit leased from
// the database in memory, so a request costs no database round trip while
// a lease can serve it, and writes usage rows in batches. Overspend is
// impossible with any number of engines on one database: a lease is taken
// from the database in a transaction that never takes more than is there,
// and an engine spends only what it leased.
type Engine struct {
	db  Ledger
	cfg Config

	mu       sync.Mutex
	accounts map[string]*account
	// inflight holds the request ids reserved and not yet settled: each
	// request is reserved once. Guarded by mu, with the account lookup
	// Reserve makes anyway (a sync.Map allocated twice per request).
	inflight map[string]struct{}
	// inflightPeak is inflight's largest size since it was last made:
	// a Go map keeps its buckets when entries are deleted, so after a
	// burst (5,000 streams ending at once) done makes it again, small
	// (shrinkInflight). Guarded by mu.
	inflightPeak int
	closed       atomic.Bool

	prices atomic.Pointer[map[string]Price]

	pmu     sync.Mutex
	pending []*UsageRecord

	flushMu sync.Mutex

	// kick wakes the writer for a full batch; arm starts its
	// FlushInterval when the first row arrives (docs/design.md §6 "Idle
	// wake-ups"). Both have room for one signal.
	kick chan struct{}
	arm  chan struct{}
	// giveBack wakes the maintainer to return scarce leases at once.
	giveBack chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
}

// account is one account's in-memory credit: the leases this engine holds
// for it. mu serialises every reservation and settlement of the account;
// a database call is made under it only when the leases cannot serve.
type account struct {
	mu     sync.Mutex
	id     string
	leases []*lease
	// noPkg remembers, per model, when the database last had no package
	// tokens for it (Config.PackageRecheck).
	noPkg map[string]time.Time
	// pkgLook remembers, per model, when the database's packages were last
	// looked at; past Config.PackageRecheck a reservation served by leases
	// looks again for packages that must pay first (order.go).
	pkgLook map[string]time.Time
	// release is closed (and cleared) when a settlement gives credit
	// back; requests waiting for credit wait on it (reserve.go).
	release chan struct{}
	// waiters counts requests waiting for credit of this account.
	waiters int
}

// lease is credit this engine holds: package tokens, or cash micros.
type lease struct {
	id     string
	source string
	pkg    *pkgScope // nil for cash
	// granted = avail + held + spent at all times.
	granted int64
	avail   int64 // free to reserve
	held    int64 // held by open reservations
	spent   int64 // settled
	// validUntil is when this engine stops spending the lease unless a
	// renewal moves it on (LeaseTTL/2 after the last renewal).
	validUntil time.Time
	closing    bool // being returned: no new holds
	dead       bool // the database no longer lists it as ours
	// scarce: taken when its source had little left, so it goes back as
	// soon as no request holds it (returnIdle, docs/design.md §7).
	scarce bool
	// small: the source could not give a whole block (TokenBlock,
	// CashBlock), so the account is near its end; an idle small lease
	// goes back after smallIdle rather than IdleReturn (docs/design.md §7).
	small    bool
	lastUsed time.Time
}

type pkgScope struct {
	id        string
	models    []string
	effective time.Time
	expires   time.Time
}

func (l *lease) usable(now time.Time) bool {
	return !l.closing && !l.dead && now.Before(l.validUntil)
}

// paysFor reports whether a package lease may pay for model at t.
func (l *lease) paysFor(model string, t time.Time) bool {
	p := l.pkg
	return p != nil && !t.Before(p.effective) && t.Before(p.expires) && scopeCovers(p.models, model)
}

// sortLeases puts package leases first, earliest expiry first (the order
// packages pay in, see order.go), then cash.
func sortLeases(ls []*lease) {
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if (a.pkg == nil) != (b.pkg == nil) {
			return a.pkg != nil
		}
		if a.pkg == nil {
			return false
		}
		if !a.pkg.expires.Equal(b.pkg.expires) {
			return a.pkg.expires.Before(b.pkg.expires)
		}
		return a.pkg.id < b.pkg.id
	})
}

// NewEngine starts an engine on the ledger db. It first reconciles leases
// whose holder stopped renewing them (a crashed process), then loads
// prices.
func NewEngine(ctx context.Context, db Ledger, cfg Config) (*Engine, error) {
	cfg.defaults()
	e := &Engine{
		db: db, cfg: cfg,
		accounts: map[string]*account{},
		inflight: map[string]struct{}{},
		kick:     make(chan struct{}, 1),
		arm:      make(chan struct{}, 1),
		giveBack: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	if _, err := e.Reconcile(ctx); err != nil {
		return nil, err
	}
	if err := e.ReloadPrices(ctx); err != nil {
		return nil, err
	}
	if !cfg.Manual {
		e.wg.Add(2)
		go e.flushLoop()
		go e.maintainLoop()
	}
	return e, nil
}

// Holder is this engine's lease holder name.
func (e *Engine) Holder() string { return e.cfg.Holder }

// DefaultPriceRefresh bounds how long a price change made elsewhere (the
// CLI, another replica) takes to reach a running engine; the admin API
// reloads its own process's prices at once.
const DefaultPriceRefresh = 30 * time.Second

// ReloadPrices re-reads the price table.
func (e *Engine) ReloadPrices(ctx context.Context) error {
	ps, err := e.db.Prices(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]Price, len(ps))
	for _, p := range ps {
		m[p.Model] = p
	}
	e.prices.Store(&m)
	return nil
}

// PriceOf returns the price a request for model is charged at: the
// model's row, else the "*" row, else free (see FallbackModel).
func (e *Engine) PriceOf(model string) Price {
	m := *e.prices.Load()
	if p, ok := m[model]; ok {
		return p
	}
	if p, ok := m[FallbackModel]; ok {
		p.Model = model
		return p
	}
	return Price{Model: model}
}

func (e *Engine) account(id string) *account {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.accountLocked(id)
}

func (e *Engine) accountLocked(id string) *account {
	a := e.accounts[id]
	if a == nil {
		a = &account{id: id, noPkg: map[string]time.Time{}, pkgLook: map[string]time.Time{}}
		e.accounts[id] = a
	}
	return a
}

// begin marks request id in flight and, with withAccount, returns its
// account's credit; ok is false when the id is in flight already.
func (e *Engine) begin(id, accountID string, withAccount bool) (a *account, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.inflight[id]; dup {
		return nil, false
	}
	e.inflight[id] = struct{}{}
	e.inflightPeak = max(e.inflightPeak, len(e.inflight))
	if withAccount {
		a = e.accountLocked(accountID)
	}
	return a, true
}

// done forgets request id: settled, refused or failed, it may be reserved
// again (and is charged once: its usage row is keyed by it).
func (e *Engine) done(id string) {
	e.mu.Lock()
	delete(e.inflight, id)
	e.shrinkInflight()
	e.mu.Unlock()
}

// inflightShrinkMin is the peak below which the in-flight map is left as
// it is: its buckets are a few tens of KB at most.
const inflightShrinkMin = 1024

// shrinkInflight makes the in-flight map again, sized for what it holds,
// once it holds an eighth of its peak or less (docs/design.md §6). The copy
// is of at most an eighth of the peak and happens once per burst: its cost
// per request is a fraction of the deletions since the peak. Called with
// e.mu held.
func (e *Engine) shrinkInflight() {
	n := len(e.inflight)
	if e.inflightPeak < inflightShrinkMin || n > e.inflightPeak/8 {
		return
	}
	m := make(map[string]struct{}, n)
	for id := range e.inflight {
		m[id] = struct{}{}
	}
	e.inflight, e.inflightPeak = m, n
}

func (e *Engine) allAccounts() []*account {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*account, 0, len(e.accounts))
	for _, a := range e.accounts {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (e *Engine) flushLoop() {
	defer e.wg.Done()
	// The timer runs only while rows wait: an idle server is not woken
	// ten times a second to find nothing to write.
	t := time.NewTimer(e.cfg.FlushInterval)
	t.Stop()
	defer t.Stop()
	armed := false
	for {
		select {
		case <-e.stop:
			return
		case <-e.arm:
			if !armed {
				t.Reset(e.cfg.FlushInterval)
				armed = true
			}
			continue
		case <-t.C:
			armed = false
		case <-e.kick:
		}
		if err := e.Flush(context.Background()); err != nil {
			e.cfg.Metrics.failed("flush")
			e.cfg.Logger.Error("billing: flush usage", "err", err)
		}
		// Rows a failed write kept, or that came meanwhile, are the next
		// interval's.
		if !armed && e.pendingLen() > 0 {
			t.Reset(e.cfg.FlushInterval)
			armed = true
		}
	}
}

func (e *Engine) maintainLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.LeaseTTL / 4)
	defer t.Stop()
	small := time.NewTicker(smallIdle)
	defer small.Stop()
	lastPrices := time.Now()
	for {
		ctx := context.Background()
		select {
		case <-e.stop:
			return
		case <-small.C:
			if err := e.returnIdle(ctx, false); err != nil {
				e.cfg.Metrics.failed("return")
				e.cfg.Logger.Error("billing: return idle leases", "err", err)
			}
			continue
		case <-e.giveBack:
			if err := e.returnIdle(ctx, false); err != nil {
				e.cfg.Metrics.failed("return")
				e.cfg.Logger.Error("billing: return scarce leases", "err", err)
			}
			continue
		case <-t.C:
		}
		if err := e.Maintain(ctx); err != nil {
			e.cfg.Metrics.failed("maintain")
			e.cfg.Logger.Error("billing: maintain leases", "err", err)
		}
		if time.Since(lastPrices) >= e.cfg.PriceRefresh {
			lastPrices = time.Now()
			if err := e.ReloadPrices(ctx); err != nil {
				e.cfg.Metrics.failed("prices")
				e.cfg.Logger.Error("billing: reload prices", "err", err)
			}
		}
	}
}

// Maintain renews this engine's leases, returns idle and spent-out ones,
// and reconciles leases other holders abandoned. The background loop runs
// it every LeaseTTL/4.
func (e *Engine) Maintain(ctx context.Context) error {
	if err := e.renew(ctx); err != nil {
		return err
	}
	if err := e.returnIdle(ctx, false); err != nil {
		return err
	}
	_, err := e.Reconcile(ctx)
	return err
}

// Close stops the engine: it writes every pending usage row and returns
// all leased credit to the database. Reservations still open are released
// uncharged (the same rule as a crash, notes/metering.md); Settle on them
// reports ErrClosed.
func (e *Engine) Close(ctx context.Context) error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(e.stop)
	e.wg.Wait()
	// Until none waits: a settlement that began before the close may add
	// its row while the last one is written.
	for e.pendingLen() > 0 {
		if err := e.Flush(ctx); err != nil {
			return err
		}
	}
	return e.returnIdle(ctx, true)
}

// abandon stops the engine the way a crash would: nothing is flushed and
// no lease is returned (tests of the crash story).
func (e *Engine) abandon() {
	if e.closed.CompareAndSwap(false, true) {
		close(e.stop)
		e.wg.Wait()
	}
}

func (e *Engine) pendingLen() int {
	e.pmu.Lock()
	defer e.pmu.Unlock()
	return len(e.pending)
}

// smallIdle is how long a small lease may stay idle before it goes back,
// so another replica's request waiting for the last of an account's
// credit gets it soon (docs/design.md §7).
const smallIdle = time.Second

func errf(format string, args ...any) error { return fmt.Errorf("billing: "+format, args...) }
