package billing

import (
	"cmp"
	"context"
	"sort"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Retention: usage rows older than the operator's retention age are folded
// into one row per day, account, key, model and outcome (UsageDay) and
// their parts into one row per lease (PartsRollup), and deleted in the
// same transaction. Bills read days and rows together, and the audit reads
// the roll-ups beside the rows, so both stay exact to the micro.

// DefaultRollUpBatch is the number of usage rows one roll-up transaction
// moves.
const DefaultRollUpBatch = 1000

// UsageDay is the usage rows of one account's key on one model and day
// (in BillingZone) with one outcome, summed.
type UsageDay struct {
	Day              string `json:"day"`
	AccountID        string `json:"account_id"`
	KeyID            string `json:"key_id"`
	Model            string `json:"model"`
	Outcome          string `json:"outcome"`
	Requests         int64  `json:"requests"` // usage rows
	Estimated        int64  `json:"estimated"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	Images           int64  `json:"images"`
	PackageTokens    int64  `json:"package_tokens"`
	Amount           Micros `json:"amount_micros"`
	Discount         Micros `json:"discount_micros"`
	Cash             Micros `json:"cash_micros"`
	Shortfall        Micros `json:"shortfall_micros"`
	CachedTokens     int64  `json:"cached_tokens"`
	ReasoningTokens  int64  `json:"reasoning_tokens"`
	Calls            int64  `json:"calls"`
	BatchRequests    int64  `json:"batch_requests"`
	// Tiers are the rows' charges by tier, summed exactly in nanos.
	Tiers TierCost `json:"tiers"`
}

// dayOf is the one-row day of a usage row.
func dayOf(r *UsageRecord) UsageDay {
	d := UsageDay{
		Day: r.CreatedAt.In(BillingZone).Format(time.DateOnly), AccountID: r.AccountID, KeyID: r.KeyID, Model: r.Model,
		Outcome: r.Outcome, Requests: 1, PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		Images: r.Images, PackageTokens: r.PackageTokens, Amount: r.Amount, Discount: r.Discount, Cash: r.Cash,
		Shortfall: r.Shortfall, CachedTokens: r.CachedTokens, ReasoningTokens: r.ReasoningTokens, Calls: r.Calls,
		Tiers: r.Tiers(),
	}
	if r.Estimated {
		d.Estimated = 1
	}
	if r.Class == ClassBatch {
		d.BatchRequests = 1
	}
	return d
}

func (d *UsageDay) add(o *UsageDay) {
	d.Requests += o.Requests
	d.Estimated += o.Estimated
	d.PromptTokens += o.PromptTokens
	d.CompletionTokens += o.CompletionTokens
	d.Images += o.Images
	d.PackageTokens += o.PackageTokens
	d.Amount += o.Amount
	d.Discount += o.Discount
	d.Cash += o.Cash
	d.Shortfall += o.Shortfall
	d.CachedTokens += o.CachedTokens
	d.ReasoningTokens += o.ReasoningTokens
	d.Calls += o.Calls
	d.BatchRequests += o.BatchRequests
	d.Tiers.add(o.Tiers)
}

type dayKey struct{ day, account, key, model, outcome string }

func (d *UsageDay) key() dayKey { return dayKey{d.Day, d.AccountID, d.KeyID, d.Model, d.Outcome} }

// usageDays adds up days by key.
type usageDays map[dayKey]*UsageDay

func (m usageDays) add(d UsageDay) {
	if cur := m[d.key()]; cur != nil {
		cur.add(&d)
		return
	}
	m[d.key()] = &d
}

// sorted returns the days by day, account, key, model and outcome: the
// order listings show and roll-ups write them in (two concurrent roll-ups
// then lock day rows in one order).
func (m usageDays) sorted() []UsageDay {
	out := make([]UsageDay, 0, len(m))
	for _, d := range m {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].key(), out[j].key()
		return cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.account, b.account), cmp.Compare(a.key, b.key),
			cmp.Compare(a.model, b.model), cmp.Compare(a.outcome, b.outcome)) < 0
	})
	return out
}

// PartsRollup is the parts of rolled-up usage rows that one lease paid for
// one account from one source ("cash" or a package id), summed: what the
// audit needs of them.
type PartsRollup struct {
	LeaseID   string
	AccountID string
	Source    string
	Parts     int64
	Tokens    int64
	Micros    Micros
}

// spent is what the parts took from their lease: micros from a cash
// lease, tokens from a package lease.
func (p *PartsRollup) spent() int64 {
	if p.Source == PartCash {
		return int64(p.Micros)
	}
	return p.Tokens
}

// DayRange bounds days (YYYY-MM-DD in BillingZone): From inclusive, To
// exclusive; "" leaves that side open.
type DayRange struct{ From, To string }

// UsageCursor is a position in the usage rows' order (created_at, then
// request id): a roll-up resumes after the last row it looked at.
type UsageCursor struct {
	CreatedAt time.Time
	RequestID string
}

// AgedUsage is a batch of old usage rows, locked, with what the roll-up
// checks them against.
type AgedUsage struct {
	// Rows are oldest first, with their parts.
	Rows []UsageRecord
	// LeaseState is the state of each lease a part names; a lease that
	// does not exist is missing.
	LeaseState map[string]string
	// PackageAccount is the account of each package a part names; a
	// package that does not exist is missing.
	PackageAccount map[string]string
}

// RollUpOptions say which usage rows a roll-up moves and how.
type RollUpOptions struct {
	// Before is the cut-off: rows created before it are rolled up.
	Before time.Time
	// Batch is the rows per transaction (DefaultRollUpBatch when < 1).
	Batch int
	// Pause is waited between transactions.
	Pause time.Duration
}

// RollUpResult is what a usage roll-up did.
type RollUpResult struct {
	// Rows were folded into days and deleted.
	Rows int64
	// Kept are rows before the cut-off left as rows: a lease that paid for
	// them is still open, or the audit would find fault with them (then
	// they stay where the audit keeps reporting them).
	Kept int64
	// Batches is the number of transactions that moved rows.
	Batches int
}

// RollUpUsage folds usage rows created before o.Before into their days and
// their parts into their leases' roll-ups, and deletes them, o.Batch rows
// per transaction. Deletion and addition commit together, and the rows are
// locked while they are read, so a row is counted once even when the job
// dies midway or two replicas roll up at the same time. A row is moved
// only when every lease that paid for it is closed and the audit's per-row
// rules hold on it (rollable), so nothing the audit checks row by row is
// lost.
func (s *Store) RollUpUsage(ctx context.Context, o RollUpOptions) (RollUpResult, error) {
	var res RollUpResult
	batch := o.Batch
	if batch < 1 {
		batch = DefaultRollUpBatch
	}
	var cur UsageCursor
	for {
		var moved, kept int
		var next UsageCursor
		err := s.db.Tx(ctx, func(tx LedgerTx) error {
			moved, kept = 0, 0
			aged, err := tx.AgedUsage(ctx, o.Before, cur, batch)
			if err != nil || len(aged.Rows) == 0 {
				return err
			}
			last := aged.Rows[len(aged.Rows)-1]
			next = UsageCursor{CreatedAt: last.CreatedAt, RequestID: last.RequestID}
			days := usageDays{}
			parts := map[[3]string]*PartsRollup{}
			var ids []string
			for i := range aged.Rows {
				r := &aged.Rows[i]
				if !rollable(r, aged) {
					kept++
					continue
				}
				ids = append(ids, r.RequestID)
				days.add(dayOf(r))
				for _, p := range r.Parts {
					k := [3]string{p.LeaseID, r.AccountID, p.Source}
					pr := parts[k]
					if pr == nil {
						pr = &PartsRollup{LeaseID: p.LeaseID, AccountID: r.AccountID, Source: p.Source}
						parts[k] = pr
					}
					pr.Parts++
					pr.Tokens += p.Tokens
					pr.Micros += p.Micros
				}
			}
			moved = len(ids)
			if moved == 0 {
				return nil
			}
			return tx.RollUpUsage(ctx, ids, days.sorted(), sortedParts(parts))
		})
		if err != nil {
			return res, errf("roll up usage: %w", err)
		}
		if moved+kept == 0 {
			return res, nil
		}
		res.Rows += int64(moved)
		res.Kept += int64(kept)
		if moved > 0 {
			res.Batches++
		}
		cur = next
		if err := platform.Pause(ctx, o.Pause); err != nil {
			return res, err
		}
	}
}

func sortedParts(m map[[3]string]*PartsRollup) []PartsRollup {
	out := make([]PartsRollup, 0, len(m))
	for _, p := range m {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.LeaseID != b.LeaseID {
			return a.LeaseID < b.LeaseID
		}
		if a.AccountID != b.AccountID {
			return a.AccountID < b.AccountID
		}
		return a.Source < b.Source
	})
	return out
}

// rollable reports whether a usage row may leave the usage table: every
// lease that paid for it is closed (what it spent is settled), every
// package that paid exists, and the audit's per-row rules hold.
func rollable(r *UsageRecord, aged AgedUsage) bool {
	for _, p := range r.Parts {
		if aged.LeaseState[p.LeaseID] != LeaseClosed {
			return false
		}
		if _, ok := aged.PackageAccount[p.Source]; p.Source != PartCash && !ok {
			return false
		}
	}
	exists := func(id string) bool { _, ok := aged.LeaseState[id]; return ok }
	return len(usageRowProblems(r, r.Parts, exists, aged.PackageAccount)) == 0
}

// dayRange is the days whose first instant lies in [since, until): the
// days a usage filter covers whole. A zero bound is open.
func dayRange(since, until time.Time) DayRange {
	var r DayRange
	if !since.IsZero() {
		r.From = ceilDay(since)
	}
	if !until.IsZero() {
		r.To = ceilDay(until)
	}
	return r
}

// ceilDay is the first day that starts at or after t.
func ceilDay(t time.Time) string {
	l := t.In(BillingZone)
	d := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, BillingZone)
	if d.Before(l) {
		d = d.AddDate(0, 0, 1)
	}
	return d.Format(time.DateOnly)
}

// DailyUsage is the usage of the days [since, until) (BillingZone days;
// bounds inside a day widen to the whole day, zero bounds are open) for
// f's account and model: the roll-ups plus the rows not rolled up yet,
// added up the same way, so a day's figures are the same before and after
// its roll-up. f.Limit and f.WithParts are ignored.
func (s *Store) DailyUsage(ctx context.Context, f UsageFilter) ([]UsageDay, error) {
	if !f.Since.IsZero() {
		f.Since = floorDay(f.Since)
	}
	if !f.Until.IsZero() {
		f.Until, _ = time.ParseInLocation(time.DateOnly, ceilDay(f.Until), BillingZone)
	}
	f.Limit, f.WithParts = 0, false
	rows, rolled, err := s.db.UsageWithDays(ctx, f, dayRange(f.Since, f.Until))
	if err != nil {
		return nil, err
	}
	days := usageDays{}
	for _, d := range rolled {
		days.add(d)
	}
	for i := range rows {
		days.add(dayOf(&rows[i]))
	}
	return days.sorted(), nil
}

func floorDay(t time.Time) time.Time {
	l := t.In(BillingZone)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, BillingZone)
}
