package billing

import (
	"context"
	"encoding/json"
	"errors"
	"time"

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
	// Images is the number of images asked for.
	Images int64
}

// Usage is what a request actually used.
type Usage struct {
	PromptTokens     int64
	CompletionTokens int64
	Images           int64
}

// Outcomes recorded on usage rows, besides the hot path's own
// (platform.Outcome*: ok, upstream_error, cut, client_gone).
const (
	// OutcomeRejected marks a request refused with 1113: it has a usage
	// row (so every request has exactly one) with nothing charged.
	OutcomeRejected = "rejected_1113"
	// OutcomeUnsettled marks a reservation released by Close.
	OutcomeUnsettled = "unsettled"
)

// Reservation is a successful Reserve: credit held in this engine for one
// request until Settle.
type Reservation struct {
	RequestID  string
	AccountID  string
	KeyID      string
	Model      string
	Price      Price // the price at reserve time; settle charges at it
	Estimate   Usage
	ReservedAt time.Time

	acct  *account
	holds []hold // guarded by acct.mu

	settled bool // guarded by acct.mu (or Reservation-local when acct is nil)
	result  Charge
	// log, when set, is the request-log row Settle stores with the usage
	// row (SettleRecord).
	log *platform.RequestLog
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

// PaidByJSON is the Charge as JSON, for the request log.
func (c Charge) PaidByJSON() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// Arrears is the error for "nothing left to pay with": V4 code 1113, HTTP
// 429 (docs/v4.md §6), returned before any upstream call.
func Arrears() error {
	return platform.Errorf(platform.CodeArrears, "您的账户已欠费，请充值后重试。")
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
func tokenPriced(p Price) bool { return p.Input > 0 || p.Output > 0 }

// cashFor is the cash a request needs when packages cover `covered` of its
// tokens. Packages cover prompt tokens first, then completion tokens (the
// order only matters when a model's two prices differ). Rounding is once
// per request, up to the micro (Price.TokenCost).
func cashFor(p Price, u Usage, covered int64) int64 {
	in, out := u.PromptTokens, u.CompletionTokens
	remIn := max(in-covered, 0)
	remOut := out - max(covered-in, 0)
	if remOut < 0 {
		remOut = 0
	}
	return addSat(int64(p.TokenCost(remIn, remOut)), int64(p.ImageCost(u.Images)))
}

// makePlan decides what pays for u from the leases, without changing
// anything. Packages are eligible when active at `at` (the reservation
// time: a request that started while a package was valid may finish on
// it). mine are amounts this request already holds; they count even when
// the lease can take no new holds.
func makePlan(a *account, now, at time.Time, model string, p Price, u Usage, mine map[*lease]int64) plan {
	var pl plan
	avail := func(l *lease) int64 {
		n := mine[l]
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
// cash. When the account cannot cover the whole estimate, Reserve returns
// the 1113 error (HTTP 429) and the request must not go upstream.
func (e *Engine) Reserve(ctx context.Context, req ReserveRequest) (*Reservation, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if req.RequestID == "" {
		req.RequestID = platform.RandomID("req_", 10)
	}
	if _, dup := e.inflight.LoadOrStore(req.RequestID, struct{}{}); dup {
		return nil, platform.Errorf(platform.CodeDuplicateReq, "request_id %s is already in flight", req.RequestID)
	}
	now := e.cfg.Now()
	res := &Reservation{
		RequestID: req.RequestID, AccountID: req.AccountID, KeyID: req.KeyID, Model: req.Model,
		Price:      e.PriceOf(req.Model),
		Estimate:   Usage{PromptTokens: max(req.PromptTokens, 0), CompletionTokens: max(req.MaxTokens, 0), Images: max(req.Images, 0)},
		ReservedAt: now,
	}
	if res.Price.Free() {
		// Free models never touch packages or cash.
		return res, nil
	}
	a := e.account(req.AccountID)
	res.acct = a
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.closed.Load() {
		// Checked again under a.mu: Close marks every lease for return
		// under it, so a reservation that got here after the marking would
		// lease credit nobody returns (it would wait for another engine's
		// Reconcile after LeaseTTL).
		e.inflight.Delete(req.RequestID)
		return nil, ErrClosed
	}
	pl := makePlan(a, now, now, req.Model, res.Price, res.Estimate, nil)
	if pl.cashShort > 0 || e.wantPackages(a, now, req.Model, pl) {
		err := e.acquire(ctx, a, acquireReq{
			model: req.Model, price: res.Price, use: res.Estimate, at: now,
			memCovered: pl.covered, memCash: pl.cashNeed - pl.cashShort,
			wantPkg: e.wantPackages(a, now, req.Model, pl), strict: true,
		})
		if err != nil {
			e.inflight.Delete(req.RequestID)
			if errors.Is(err, errInsufficient) {
				e.reject(a, res, now)
				return nil, Arrears()
			}
			return nil, err
		}
		pl = makePlan(a, now, now, req.Model, res.Price, res.Estimate, nil)
		if pl.cashShort > 0 {
			e.inflight.Delete(req.RequestID)
			e.reject(a, res, now)
			return nil, Arrears()
		}
	}
	if pl.covered > 0 && e.orderStale(a, now, req.Model) {
		// Leases pay, but a package that must pay before them may have
		// been granted or become effective since (order.go).
		if err := e.refreshOrder(ctx, a, req.Model, res.Price, now, pl); err != nil {
			// Money stays exact either way; only the order would lag.
			e.cfg.Logger.Warn("billing: package order refresh", "account", a.id, "err", err)
		}
		pl = makePlan(a, now, now, req.Model, res.Price, res.Estimate, nil)
	}
	for _, h := range pl.takes {
		h.l.avail -= h.n
		h.l.held += h.n
		h.l.lastUsed = now
	}
	res.holds = pl.takes
	return res, nil
}

// reject records the one usage row of a request refused with 1113.
// Called with a.mu held.
func (e *Engine) reject(a *account, res *Reservation, now time.Time) {
	_ = a
	e.enqueue(&UsageRecord{
		RequestID: res.RequestID, AccountID: res.AccountID, KeyID: res.KeyID, Model: res.Model,
		Outcome: OutcomeRejected, ReservedAt: now, CreatedAt: now,
	})
}
