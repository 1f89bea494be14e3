package billing

import (
	"context"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// UsageRecord is one usage row: what a request used, what it cost and
// what paid for it, so every request's charge can be audited and billed.
type UsageRecord struct {
	RequestID        string
	AccountID        string
	KeyID            string
	Model            string
	PromptTokens     int64
	CompletionTokens int64
	CachedTokens     int64 // part of PromptTokens, at Rate.Cached()
	ReasoningTokens  int64 // part of CompletionTokens, at Rate.Output
	Calls            int64 // tool calls billed per call, at Rate.PerCall
	Images           int64
	// Class is the price class: ClassStandard, ClassBatch (charged at the
	// batch price), or "" for a row charged before prices had tiers, whose
	// Rate was not kept. Rate holds the prices the row was charged at
	// (batch-scaled), so Amount is recomputed from the row alone:
	// Rate.Cost(r.Usage()) (docs/design.md §7).
	Class      string
	Rate       Price
	Outcome    string
	Estimated  bool
	ReservedAt time.Time
	CreatedAt  time.Time
	Charge

	// log is the request's request-log row, written in the same
	// transaction as this row (docs/design.md §3 "Crash consistency").
	log *platform.RequestLog
}

// OnePart is the row's only part, when it has exactly one: the ledger
// stores such a part in the usage row itself, not as a parts row
// (migration 0014; docs/design.md §6), so most requests write one row,
// not two. Rows with no part or several keep theirs as parts rows.
func (r *UsageRecord) OnePart() (Part, bool) {
	if len(r.Parts) != 1 {
		return Part{}, false
	}
	return r.Parts[0], true
}

// Price classes of a usage row.
const (
	ClassStandard = "standard"
	ClassBatch    = "batch"
)

func classOf(batch bool) string {
	if batch {
		return ClassBatch
	}
	return ClassStandard
}

// Usage is what the row used, as Price.Cost takes it.
func (r *UsageRecord) Usage() Usage {
	return Usage{PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens, CachedTokens: r.CachedTokens,
		ReasoningTokens: r.ReasoningTokens, Calls: r.Calls, Images: r.Images}
}

// Tiers is the row's charge by tier before its rounding up to the micro.
// A row charged before tiers (Class "") is one unsplit amount.
func (r *UsageRecord) Tiers() TierCost {
	if r.Class == "" {
		return TierCost{Unsplit: Nanos(mulSat(int64(r.Amount), 1000))}
	}
	return r.Rate.Tiers(r.Usage())
}

// SettleRecord settles like Settle and keeps row, its charge filled in,
// with the usage row, so the flush writes both in one transaction and no
// crash leaves one without the other. recorded is false when no usage row
// was queued (the engine has closed, or the reservation was settled
// before): the caller records the row itself.
func (e *Engine) SettleRecord(ctx context.Context, res *Reservation, u Usage, outcome string, estimated bool,
	row platform.RequestLog) (c Charge, recorded bool, err error) {
	c, _, recorded, err = e.settle(ctx, res, u, outcome, estimated, &row)
	return c, recorded, err
}

// Settle charges a reservation for what the request actually used and
// releases the rest, so the client pays for usage, not for the cap. It is
// idempotent: a second call for the same reservation returns the first
// result and charges nothing more.
//
// When usage exceeds the reservation (a prompt estimate that was too low,
// or "exhaustion mid-stream"), Settle takes more credit — packages first,
// then cash, from this engine's leases and then from the database — and
// charges what exists: the part nothing can pay is recorded as Shortfall
// on the usage row, and no balance ever goes negative.
//
// Settle does not fail the request: on a database error while fetching
// extra credit it still records the usage with what it could charge.
func (e *Engine) Settle(ctx context.Context, res *Reservation, u Usage, outcome string, estimated bool) (Charge, error) {
	c, _, _, err := e.settle(ctx, res, u, outcome, estimated, nil)
	return c, err
}

// settle is Settle; with row set, the request-log row goes with the usage
// row (SettleRecord), and paidBy is the charge's PaidByJSON it was given.
func (e *Engine) settle(ctx context.Context, res *Reservation, u Usage, outcome string, estimated bool,
	row *platform.RequestLog) (c Charge, paidBy string, recorded bool, err error) {
	if res == nil {
		return Charge{}, "", false, errf("settle: nil reservation")
	}
	u.PromptTokens = max(u.PromptTokens, 0)
	u.CompletionTokens = max(u.CompletionTokens, 0)
	u.Images = max(u.Images, 0)
	u.Calls = max(u.Calls, 0)
	// The details are parts of the counts (docs/v4.md §11): clamped so no
	// token is counted in two tiers.
	u.CachedTokens = min(max(u.CachedTokens, 0), u.PromptTokens)
	u.ReasoningTokens = min(max(u.ReasoningTokens, 0), u.CompletionTokens)
	now := e.cfg.Now()
	if res.acct == nil {
		// A free model: nothing held, nothing charged, one row.
		if res.settled {
			return res.charge(), "", false, nil
		}
		res.settled = true
		e.done(res.RequestID)
		if e.closed.Load() {
			return Charge{}, "", false, ErrClosed
		}
		rec := res.record(u, outcome, estimated, now)
		paidBy = attachLog(res, rec, row)
		e.enqueue(rec)
		return rec.Charge, paidBy, row != nil, nil
	}
	a := res.acct
	a.mu.Lock()
	if res.settled {
		a.mu.Unlock()
		return res.charge(), "", false, nil
	}
	res.settled = true
	if e.closed.Load() {
		a.mu.Unlock()
		e.done(res.RequestID)
		return Charge{}, "", false, ErrClosed
	}
	// mine: what this request holds, released below what it spends.
	mine := res.holds
	for _, h := range mine {
		h.l.held -= h.n
	}
	res.holds = nil
	var buf [4]hold
	pl := makePlan(buf[:0], a, now, res.ReservedAt, res.Model, res.Price, u, mine)
	if pl.cashShort > 0 || e.wantPackages(a, now, res.Model, pl) {
		// Usage beyond the reservation: fetch more, taking what exists.
		err := e.acquire(ctx, a, acquireReq{
			model: res.Model, price: res.Price, use: u, at: res.ReservedAt,
			memCovered: pl.covered, memCash: pl.cashNeed - pl.cashShort,
			wantPkg: e.wantPackages(a, now, res.Model, pl), strict: false,
		})
		if err != nil {
			e.cfg.Metrics.failed("settle")
			e.cfg.Logger.Error("billing: settle: extra credit", "request", res.RequestID, "err", err)
		}
		pl = makePlan(buf[:0], a, now, res.ReservedAt, res.Model, res.Price, u, mine)
	}
	// Spend: from this request's holds first, then from free credit.
	for _, t := range pl.takes {
		fromMine := takeHeld(mine, t.l, t.n)
		t.l.avail -= t.n - fromMine
		t.l.spent += t.n
		t.l.lastUsed = now
	}
	giveBack := false
	for _, h := range mine {
		h.l.avail += h.n // release what was reserved and not used
	}
	for _, t := range pl.takes {
		// A lease that could not pay its part of this request again is
		// near its end: it goes back as soon as nothing holds it, so
		// another replica's request can spend the rest (docs/design.md §7).
		if t.l.avail < t.n {
			t.l.scarce = true
		}
	}
	for _, l := range a.leases {
		giveBack = giveBack || (l.scarce && l.held == 0 && !l.closing)
	}
	a.released()
	if giveBack && a.waiters == 0 {
		platform.Wake(e.giveBack)
	}
	rec := res.record(u, outcome, estimated, now)
	rec.Charge = chargeOf(res.Price, u, pl, res.rows.parts[:0])
	paidBy = attachLog(res, rec, row)
	// Enqueue under a.mu: a lease being returned is flushed first, so its
	// spent total in the database includes this row (see returnIdle).
	e.enqueue(rec)
	a.mu.Unlock()
	e.done(res.RequestID)
	return rec.Charge, paidBy, row != nil, nil
}

// record makes the reservation's rows with its usage row for what the
// request used.
func (res *Reservation) record(u Usage, outcome string, estimated bool, now time.Time) *UsageRecord {
	res.rows = &settledRows{rec: UsageRecord{
		RequestID: res.RequestID, AccountID: res.AccountID, KeyID: res.KeyID, Model: res.Model,
		PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, Images: u.Images,
		CachedTokens: u.CachedTokens, ReasoningTokens: u.ReasoningTokens, Calls: u.Calls,
		Class: classOf(res.Batch), Rate: res.Price,
		Outcome: outcome, Estimated: estimated, ReservedAt: res.ReservedAt, CreatedAt: now,
	}}
	return &res.rows.rec
}

// charge is the first settlement's charge (zero when it charged nothing).
func (res *Reservation) charge() Charge {
	if res.rows == nil {
		return Charge{}
	}
	return res.rows.rec.Charge
}

// attachLog hands the request-log row, if any, to rec with its charge,
// kept with the reservation's rows, and returns the charge's paid-by JSON
// ("" when there is no row: only the log row needs it).
func attachLog(res *Reservation, rec *UsageRecord, row *platform.RequestLog) string {
	if row == nil {
		return ""
	}
	l := &res.rows.logRow
	*l = *row
	l.Charge = platform.Charge{Amount: int64(rec.Amount), PaidBy: rec.Charge.PaidByJSON()}
	rec.log = l
	return l.Charge.PaidBy
}

// chargeOf turns a plan into the charge and its parts. Each package part is
// worth the drop in the list price of what is still uncovered, so the
// parts sum to the discount exactly (no rounding residue): Amount =
// Discount + Cash + Shortfall.
// The parts are appended to parts[:0] (the settled rows' buffer); a charge
// without parts keeps Parts nil, as it is stored and shown ("parts":null).
//
// The list price is priced once per settlement (docs/design.md §6): the
// plan's cash need is already it when no package pays (cashFor at 0
// covered is Price.Cost), and the last package part's "after" is the
// plan's cash need. Only a request split over several packages prices the
// steps between.
func chargeOf(p Price, u Usage, pl plan, parts []Part) Charge {
	amount := Micros(pl.cashNeed)
	if pl.covered > 0 {
		amount = p.Cost(u)
	}
	c := Charge{
		Parts:         parts[:0],
		Amount:        amount,
		PackageTokens: pl.covered,
	}
	covered := int64(0)
	before := int64(amount) // cashFor(p, u, 0)
	var cash int64
	for _, t := range pl.takes {
		if t.l.pkg == nil {
			cash += t.n
			continue
		}
		covered += t.n
		after := pl.cashNeed
		if covered != pl.covered {
			after = cashFor(p, u, covered)
		}
		c.Parts = append(c.Parts, Part{Source: t.l.pkg.id, LeaseID: t.l.id, Tokens: t.n, Micros: Micros(before - after)})
		before = after
	}
	if cash > 0 {
		// Per cash lease, so each lease's spent total is exact.
		tokens := u.PromptTokens + u.CompletionTokens - pl.covered
		if !tokenPriced(p) {
			tokens = 0
		}
		first := true
		for _, t := range pl.takes {
			if t.l.pkg != nil {
				continue
			}
			part := Part{Source: PartCash, LeaseID: t.l.id, Micros: Micros(t.n)}
			if first {
				part.Tokens = tokens
				first = false
			}
			c.Parts = append(c.Parts, part)
		}
	}
	if len(c.Parts) == 0 {
		c.Parts = nil
	}
	c.Cash = Micros(cash)
	c.Shortfall = Micros(pl.cashShort)
	c.Discount = c.Amount - Micros(pl.cashNeed)
	return c
}

// enqueue adds a usage row to the write buffer; past MaxPending it writes
// synchronously so memory stays bounded when the database lags.
func (e *Engine) enqueue(r *UsageRecord) {
	e.pmu.Lock()
	e.pending = append(e.pending, r)
	n := len(e.pending)
	e.pmu.Unlock()
	if n == e.cfg.FlushBatch {
		platform.Wake(e.kick)
	} else if n == 1 { // the first row since the last write starts the interval
		platform.Wake(e.arm)
	}
	if n >= e.cfg.MaxPending && e.cfg.Manual == false {
		// Back-pressure: the caller pays for the write it is waiting on.
		_ = e.Flush(context.Background())
	}
}
