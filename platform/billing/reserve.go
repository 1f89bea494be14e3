package billing

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/glmkit/glmkit/internal/jsonscan"
	"github.com/glmkit/glmkit/platform"
)

// ReserveRequest is what the meter knows before the upstream call.
type ReserveRequest struct {
	// RequestID makes the charge idempotent: one usage row per id, ever.
	RequestID string
	AccountID string
	KeyID     string
	Model     string
	// PromptTokens is the local prompt estimate (tool definitions
	// included: they are part of the prompt, docs/v4.md §3).
	PromptTokens int64
	// MaxTokens is the completion cap reserved for.
	MaxTokens int64
	// MinOutput, when above 0 and below MaxTokens, lets the request in
	// with less output than MaxTokens: as much as the credit pays for, at
	// least MinOutput (docs/design.md §7). 0 reserves MaxTokens or refuses.
	MinOutput int64
	// Images is the number of images asked for.
	Images int64
	// Calls is the number of per-call tool uses the request may make
	// (web_search); usage beyond it is taken at settle like any overrun.
	Calls int64
	// Batch marks a line of a batch job: it is reserved and charged at the
	// batch price, Config.BatchPercent of the list (docs/design.md §7).
	Batch bool
}

// Usage is what a request actually used.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	// CachedTokens is the part of PromptTokens served from the upstream's
	// prompt cache, billed at the cached price (docs/v4.md §11).
	CachedTokens int64
	// ReasoningTokens is the part of CompletionTokens spent thinking,
	// billed as output; kept on the row so the bill can show it.
	ReasoningTokens int64
	// Calls counts the uses of tools billed per call (web_search).
	Calls  int64
	Images int64
}

// Outcomes recorded on usage rows, besides the hot path's own
// (platform.Outcome*: ok, upstream_error, cut, client_gone).
const (
	// OutcomeRejected marks a request refused with 1113: it has a usage
	// row (so every request has exactly one) with nothing charged.
	OutcomeRejected = "rejected_1113"
	// OutcomeUnsettled marks a reservation released by Close.
	OutcomeUnsettled = "unsettled"
	// OutcomeBusy marks a request refused with 1302 because the credit
	// that could pay for it stayed held by requests in flight for longer
	// than Config.CreditWait (docs/design.md §7).
	OutcomeBusy = "rejected_1302"
)

// Reservation is a successful Reserve: credit held in this engine for one
// request until Settle.
type Reservation struct {
	RequestID  string
	AccountID  string
	KeyID      string
	Model      string
	Price      Price // the price at reserve time (batch-scaled for a batch line); settle charges at it
	Batch      bool  // charged at the batch price
	Estimate   Usage
	ReservedAt time.Time
	// Bounded is true when Estimate.CompletionTokens is less than the
	// request's MaxTokens: the credit pays for no more (docs/design.md §7).
	Bounded bool

	acct  *account
	eng   *Engine
	holds []hold // guarded by acct.mu

	settled bool // guarded by acct.mu (or Reservation-local when acct is nil)
	// rows is what the settlement left for the flush; its usage row's
	// charge is the one a second Settle returns.
	rows *settledRows

	// A request holds one or two leases nearly always: its holds live
	// here, not in a slice of their own (docs/design.md §6).
	holdBuf [2]hold
}

// settledRows is what a settled request leaves for the flush — its usage
// row, the request-log row written with it, the charge's parts — in one
// allocation made when it settles, not when it reserves: a stream held
// open for minutes carries only its reservation (docs/design.md §6). The
// flush holds the usage row by pointer until it is written; never reused.
type settledRows struct {
	rec    UsageRecord
	logRow platform.RequestLog
	parts  [2]Part
}

type hold struct {
	l *lease
	n int64
}

// Part is one payer of a request: a package (Tokens of it, worth Micros
// at list price) or cash (Micros paid for Tokens).
type Part struct {
	Source  string `json:"source"` // package id, or "cash"
	LeaseID string `json:"lease,omitempty"`
	Tokens  int64  `json:"tokens"`
	Micros  Micros `json:"micros"`
}

// PartCash is the Source of a cash part.
const PartCash = "cash"

// Charge is what one request cost and what paid for it.
// Amount = Discount + Cash + Shortfall, exactly.
type Charge struct {
	Amount        Micros `json:"amount"`   // list price: 总消费金额
	Discount      Micros `json:"discount"` // paid by packages: 优惠金额
	Cash          Micros `json:"cash"`     // paid in cash: 应付金额
	Shortfall     Micros `json:"shortfall"`
	PackageTokens int64  `json:"package_tokens"`
	Parts         []Part `json:"parts"`
}

// PaidByJSON is the Charge as JSON, for the request log: the bytes
// encoding/json writes for it, appended by hand because it runs on every
// metered request (encoding/json walks the struct by reflection and
// allocates three times; this allocates the string only, written in a
// buffer on the stack). Strings go through jsonscan.AppendString, which
// escapes exactly as encoding/json does.
func (c Charge) PaidByJSON() string {
	var buf [paidByBuf]byte
	return string(c.appendPaidBy(buf[:0]))
}

// paidByBuf holds a charge of two parts with server-made ids; a longer one
// grows on the heap.
const paidByBuf = 320

func (c Charge) appendPaidBy(b []byte) []byte {
	b = append(b, `{"amount":`...)
	b = strconv.AppendInt(b, int64(c.Amount), 10)
	b = append(b, `,"discount":`...)
	b = strconv.AppendInt(b, int64(c.Discount), 10)
	b = append(b, `,"cash":`...)
	b = strconv.AppendInt(b, int64(c.Cash), 10)
	b = append(b, `,"shortfall":`...)
	b = strconv.AppendInt(b, int64(c.Shortfall), 10)
	b = append(b, `,"package_tokens":`...)
	b = strconv.AppendInt(b, c.PackageTokens, 10)
	if c.Parts == nil {
		return append(b, `,"parts":null}`...)
	}
	b = append(b, `,"parts":[`...)
	for i, p := range c.Parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"source":`...)
		b = jsonscan.AppendString(b, p.Source)
		if p.LeaseID != "" {
			b = append(b, `,"lease":`...)
			b = jsonscan.AppendString(b, p.LeaseID)
		}
		b = append(b, `,"tokens":`...)
		b = strconv.AppendInt(b, p.Tokens, 10)
		b = append(b, `,"micros":`...)
		b = strconv.AppendInt(b, int64(p.Micros), 10)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// Arrears is the error for "nothing left to pay with": V4 code 1113, HTTP
// 429 (docs/v4.md §6), returned before any upstream call.
func Arrears() error {
	return platform.Errorf(platform.CodeArrears, "您的账户已欠费，请充值后重试。")
}

// CreditBusy is the error for a request whose credit stayed held by
// requests in flight for longer than Config.CreditWait: V4 code 1302, the
// account's concurrency is too high for its balance (docs/design.md §7).
func CreditBusy() error {
	return platform.Errorf(platform.CodeConcurrency, "您当前使用该API的并发数过高，账户余额正被进行中的请求占用，请降低并发后重试。")
}

// plan is how a request would be paid from this engine's leases.
type plan struct {
	takes     []hold // package takes (tokens) in order, then cash (micros)
	covered   int64  // tokens paid by packages
	uncovered int64  // token-priced tokens no package lease covers
	cashNeed  int64  // cash the request needs after packages
	cashShort int64  // part of cashNeed no cash lease covers
}

// tokenPriced reports whether packages can pay for the model: packages
// hold tokens, so they pay for token-priced models only (not per-image
// prices).
func tokenPriced(p Price) bool { return p.Input > 0 || p.Output > 0 || p.CachedInput > 0 }

// cashFor is the cash a request needs when packages cover `covered` of its
// tokens. Packages cover uncached prompt tokens first, then cached ones,
// then completion tokens, one package token per token whatever its tier
// (the order only matters when a model's prices differ; docs/design.md §7
// "Tiers"). Rounding is once per request, up to the micro (Price.Cost).
func cashFor(p Price, u Usage, covered int64) int64 {
	cached := min(max(u.CachedTokens, 0), u.PromptTokens)
	c1 := min(covered, u.PromptTokens-cached)
	covered -= c1
	c2 := min(covered, cached)
	covered -= c2
	c3 := min(max(covered, 0), u.CompletionTokens)
	r := u
	r.PromptTokens = u.PromptTokens - c1 - c2
	r.CachedTokens = cached - c2
	r.CompletionTokens = u.CompletionTokens - c3
	return int64(p.Cost(r))
}

// makePlan decides what pays for u from the leases, without changing
// anything. Packages are eligible when active at `at` (the reservation
// time: a request that started while a package was valid may finish on
// it). mine are the holds this request already has; they count even when
// the lease can take no new holds. The takes are appended to dst[:0], so a
// caller with a buffer of its own (on its stack, or in the reservation)
// makes no allocation.
func makePlan(dst []hold, a *account, now, at time.Time, model string, p Price, u Usage, mine []hold) plan {
	pl := plan{takes: dst[:0]}
	avail := func(l *lease) int64 {
		n := heldBy(mine, l)
		if l.usable(now) {
			n += l.avail
		}
		return n
	}
	if tokenPriced(p) {
		left := u.PromptTokens + u.CompletionTokens
		for _, l := range a.leases {
			if left == 0 {
				break
			}
			if l.pkg == nil || !l.paysFor(model, at) {
				continue
			}
			if n := min(avail(l), left); n > 0 {
				pl.takes = append(pl.takes, hold{l, n})
				left -= n
			}
		}
		pl.covered = u.PromptTokens + u.CompletionTokens - left
		pl.uncovered = left
	}
	pl.cashNeed = cashFor(p, u, pl.covered)
	left := pl.cashNeed
	for _, l := range a.leases {
		if left == 0 {
			break
		}
		if l.pkg != nil {
			continue
		}
		if n := min(avail(l), left); n > 0 {
			pl.takes = append(pl.takes, hold{l, n})
			left -= n
		}
	}
	pl.cashShort = left
	return pl
}

// heldBy is what the holds in mine have of lease l: a linear walk, as a
// request holds one or two leases (a map here was built per settlement).
func heldBy(mine []hold, l *lease) int64 {
	var n int64
	for _, h := range mine {
		if h.l == l {
			n += h.n
		}
	}
	return n
}

// takeHeld takes up to n of lease l out of the holds in mine and says how
// much it took.
func takeHeld(mine []hold, l *lease, n int64) int64 {
	took := int64(0)
	for i := range mine {
		if h := &mine[i]; h.l == l && took < n {
			t := min(h.n, n-took)
			h.n -= t
			took += t
		}
	}
	return took
}

// wantPackages reports whether the database should be asked for package
// tokens: the leases leave tokens uncovered and no recent answer said the
// account has none for this model.
func (e *Engine) wantPackages(a *account, now time.Time, model string, pl plan) bool {
	if pl.uncovered == 0 {
		return false
	}
	t, ok := a.noPkg[model]
	return !ok || now.Sub(t) >= e.cfg.PackageRecheck || now.Before(t)
}

// Reserve holds credit for a request before the upstream call: the
// prompt estimate plus MaxTokens, priced at the model's price. Packages
// whose scope covers the model pay first, earliest expiry first, then
// cash. With MinOutput set (docs/design.md §7) a request the credit cannot
// pay in full is admitted with the largest output it pays for, at least
// MinOutput (Reservation.Bounded); one it cannot pay even that for waits
// while requests in flight hold credit that may come back, up to
// Config.CreditWait. When the account cannot pay (the prompt and the
// minimum output), Reserve returns the 1113 error (HTTP 429) and the
// request must not go upstream.
func (e *Engine) Reserve(ctx context.Context, req ReserveRequest) (*Reservation, error) {
	return e.reserve(ctx, req, e.PriceOf(req.Model))
}

// reserve is Reserve at the model's list price p (Meter has looked it up).
func (e *Engine) reserve(ctx context.Context, req ReserveRequest, p Price) (*Reservation, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if req.RequestID == "" {
		req.RequestID = platform.RandomID("req_", 10)
	}
	if req.Batch {
		p = p.Scaled(e.cfg.BatchPercent)
	}
	// Free models never touch packages or cash: no account.
	a, ok := e.begin(req.RequestID, req.AccountID, !p.Free())
	if !ok {
		return nil, platform.Errorf(platform.CodeDuplicateReq, "request_id %s is already in flight", req.RequestID)
	}
	res := &Reservation{
		RequestID: req.RequestID, AccountID: req.AccountID, KeyID: req.KeyID, Model: req.Model,
		Price: p,
		Batch: req.Batch,
		Estimate: Usage{PromptTokens: max(req.PromptTokens, 0), CompletionTokens: max(req.MaxTokens, 0), Images: max(req.Images, 0),
			Calls: max(req.Calls, 0)},
		acct: a,
		eng:  e,
	}
	if a == nil {
		res.ReservedAt = e.cfg.Now()
		return res, nil
	}
	// A paid request's time is read once, by tryReserve under the account
	// lock (lease validity and package windows are judged at it), and kept
	// as ReservedAt (docs/design.md §6).
	floor := res.Estimate
	flexible := req.MinOutput > 0 && req.MinOutput < floor.CompletionTokens
	if flexible {
		floor.CompletionTokens = req.MinOutput
	}
	var deadline time.Time
	delay := creditPollMin
	rechecked := false
	for {
		w, err := e.tryReserve(ctx, a, res, floor, flexible)
		if err == nil {
			return res, nil
		}
		if !errors.Is(err, errInsufficient) {
			e.done(req.RequestID)
			return nil, err
		}
		if flexible && !w.anyHeld() && !rechecked {
			// The database's free credit and the leases other replicas
			// hold are two reads: a lease returned between them is in
			// neither. One more try finds it free, so 1113 is said only
			// when two tries in a row saw nothing (docs/design.md §7).
			rechecked = true
			continue
		}
		if !flexible || !w.anyHeld() {
			e.refuse(a, res, OutcomeRejected)
			return nil, Arrears()
		}
		// Credit that could pay is held by requests in flight, here or on
		// another replica: wait for it rather than refuse while it lasts.
		if deadline.IsZero() {
			deadline = time.Now().Add(e.cfg.CreditWait)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			e.refuse(a, res, OutcomeBusy)
			e.cfg.Logger.Warn("billing: refused with 1302: credit held by requests in flight did not come back in time",
				"request_id", req.RequestID, "account", req.AccountID, "model", req.Model, "waited", e.cfg.CreditWait,
				"held_here", w.held, "held_elsewhere", w.elsewhere)
			return nil, CreditBusy()
		}
		if w.elsewhere > 0 || w.release == nil {
			// Another holder's leases come back through the database:
			// poll it, backing off.
			wait = min(wait, delay)
			delay = min(delay*2, creditPollMax)
		}
		if !e.awaitCredit(ctx, a, w.release, wait) {
			e.refuse(a, res, OutcomeBusy)
			if err := ctx.Err(); err != nil {
				return nil, platform.Wrap(platform.CodeConcurrency, "request cancelled while waiting for credit", err)
			}
			return nil, CreditBusy()
		}
	}
}

// Polling bounds of a request waiting for credit another replica holds.
const (
	creditPollMin = 5 * time.Millisecond
	creditPollMax = 100 * time.Millisecond
)

// creditWait says what a refused try saw held: by this engine's requests
// in flight (release is closed when one settles) and by other holders'
// leases in the database.
type creditWait struct {
	release   <-chan struct{}
	held      int64
	elsewhere int64
}

func (w creditWait) anyHeld() bool { return w.held > 0 || w.elsewhere > 0 }

// awaitCredit waits until release is closed, d passes or ctx ends; false
// when ctx ended or the engine closed. The account counts its waiters
// meanwhile, so a scarce lease is kept for them rather than returned.
func (e *Engine) awaitCredit(ctx context.Context, a *account, release <-chan struct{}, d time.Duration) bool {
	a.mu.Lock()
	a.waiters++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.waiters--
		a.mu.Unlock()
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-release:
	case <-t.C:
	case <-ctx.Done():
		return false
	case <-e.stop:
		return false
	}
	return true
}

// tryReserve makes one attempt at holding credit for res: the whole
// estimate when the credit pays for it, else the largest output down to
// floor's. Only a flexible request looks for credit held in flight: on
// errInsufficient the creditWait says what is held that may
// come back.
func (e *Engine) tryReserve(ctx context.Context, a *account, res *Reservation, floor Usage, flexible bool) (creditWait, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.closed.Load() {
		// Checked again under a.mu: Close marks every lease for return
		// under it, so a reservation that got here after the marking would
		// lease credit nobody returns (it would wait for another engine's
		// Reconcile after LeaseTTL). Reserve forgets the request id.
		return creditWait{}, ErrClosed
	}
	now := e.cfg.Now()
	want := res.Estimate
	pl := makePlan(res.holdBuf[:0], a, now, now, res.Model, res.Price, want, nil)
	if pl.cashShort > 0 || e.wantPackages(a, now, res.Model, pl) {
		// A request that may wait or be refused asks the database for
		// packages whatever the cache says: a package's credit may have
		// come back from a lease since it last had none.
		wantPkg := e.wantPackages(a, now, res.Model, pl) || (flexible && pl.uncovered > 0)
		err := e.acquire(ctx, a, acquireReq{
			model: res.Model, price: res.Price, use: want, floor: floor, at: now,
			memCovered: pl.covered, memCash: pl.cashNeed - pl.cashShort,
			wantPkg: wantPkg, strict: true,
		})
		if err != nil && !errors.Is(err, errInsufficient) {
			return creditWait{}, err
		}
		pl = makePlan(res.holdBuf[:0], a, now, now, res.Model, res.Price, want, nil)
	}
	use := want
	if pl.cashShort > 0 {
		out, ok := e.fit(a, now, res, floor.CompletionTokens, want.CompletionTokens-1)
		if !ok {
			if !flexible {
				return creditWait{}, errInsufficient
			}
			return e.heldFor(ctx, a, res.Model, now), errInsufficient
		}
		use.CompletionTokens = out
		pl = makePlan(res.holdBuf[:0], a, now, now, res.Model, res.Price, use, nil)
	}
	if pl.covered > 0 && e.orderStale(a, now, res.Model) {
		// Leases pay, but a package that must pay before them may have
		// been granted or become effective since (order.go).
		if err := e.refreshOrder(ctx, a, res.Model, res.Price, now, pl); err != nil {
			// Money stays exact either way; only the order would lag.
			e.cfg.Metrics.failed("order")
			e.cfg.Logger.Warn("billing: package order refresh", "account", a.id, "err", err)
		}
		pl = makePlan(res.holdBuf[:0], a, now, now, res.Model, res.Price, use, nil)
	}
	for _, h := range pl.takes {
		h.l.avail -= h.n
		h.l.held += h.n
		h.l.lastUsed = now
	}
	res.holds = pl.takes
	res.Bounded = use.CompletionTokens < want.CompletionTokens
	res.Estimate = use
	res.ReservedAt = now
	return creditWait{}, nil
}

// fit is the largest completion in [lo, hi] the leases pay for in full
// with res's prompt and images; ok is false when not even lo is paid.
// Cost grows with the completion, so a binary search finds it. Called
// with a.mu held.
func (e *Engine) fit(a *account, now time.Time, res *Reservation, lo, hi int64) (int64, bool) {
	var buf [4]hold
	pays := func(n int64) bool {
		u := res.Estimate
		u.CompletionTokens = n
		return makePlan(buf[:0], a, now, now, res.Model, res.Price, u, nil).cashShort == 0
	}
	if lo > hi || !pays(lo) {
		return 0, false
	}
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if pays(mid) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, true
}

// heldFor says what credit that could pay for model is held by requests in
// flight: on this engine (with the channel its next settlement closes)
// and, from the database, by other holders' leases. Called with a.mu held.
func (e *Engine) heldFor(ctx context.Context, a *account, model string, now time.Time) creditWait {
	var w creditWait
	for _, l := range a.leases {
		if l.pkg != nil && !l.paysFor(model, now) {
			continue
		}
		w.held += l.held
		if l.closing {
			// On its way back to the database, where a retry finds it.
			w.elsewhere += l.avail
		}
	}
	if w.held > 0 {
		if a.release == nil {
			a.release = make(chan struct{})
		}
		w.release = a.release
	}
	others, err := e.db.LeasedElsewhere(ctx, a.id, e.cfg.Holder)
	if err != nil {
		// Without the answer, credit elsewhere counts as gone: the request
		// is refused as before this policy rather than left waiting.
		e.cfg.Logger.Warn("billing: credit held elsewhere", "account", a.id, "err", err)
		return w
	}
	for _, n := range others {
		w.elsewhere += max(n, 0)
	}
	return w
}

// released wakes the requests waiting for credit of account a: a
// settlement gave some back. Called with a.mu held.
func (a *account) released() {
	if a.release != nil {
		close(a.release)
		a.release = nil
	}
}

// refuse records the one usage row of a refused request (1113, or 1302
// after waiting for credit) and forgets the request.
func (e *Engine) refuse(a *account, res *Reservation, outcome string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := e.cfg.Now()
	e.done(res.RequestID)
	e.enqueue(&UsageRecord{
		RequestID: res.RequestID, AccountID: res.AccountID, KeyID: res.KeyID, Model: res.Model,
		Class: classOf(res.Batch), Rate: res.Price, Outcome: outcome, ReservedAt: now, CreatedAt: now,
	})
}
