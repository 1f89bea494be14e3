package billing

import (
	"context"
	"errors"

	"github.com/glmkit/glmkit/platform"
)

// Meter adapts an Engine to the hot path's seam (platform.Meter): the
// request-log id is the idempotency key, so the usage row and the
// request-log row match one to one.
type Meter struct {
	Engine *Engine
}

var (
	_ platform.Meter                = Meter{}
	_ platform.RecordingReservation = (*meterReservation)(nil)
	_ platform.OutputBound          = (*meterReservation)(nil)
)

// Reserve implements platform.Meter. The reservation it returns is the
// engine's own, seen through the hot path's seam (a pointer conversion,
// not a second allocation), so settling needs no lookup.
func (m Meter) Reserve(ctx context.Context, req platform.ReserveRequest) (platform.Reservation, error) {
	p := m.Engine.PriceOf(req.Model)
	images := int64(req.Images)
	if images == 0 && p.Image > 0 {
		images = 1 // an image request asks for at least one
	}
	res, err := m.Engine.reserve(ctx, ReserveRequest{
		RequestID: req.RequestLogID, AccountID: req.AccountID, KeyID: req.KeyID, Model: req.Model,
		PromptTokens: int64(req.PromptTokens), MaxTokens: int64(req.MaxTokens), MinOutput: int64(req.MinOutput), Images: images,
		Calls: int64(req.Calls), Batch: req.Batch,
	}, p)
	if err != nil {
		var pe *platform.Error
		if !errors.As(err, &pe) {
			err = platform.Wrap(platform.CodeInternal, "billing unavailable", err)
		}
		return nil, err
	}
	return (*meterReservation)(res), nil
}

// meterReservation is the handle the hot path settles through: a
// Reservation with the seam's methods.
type meterReservation Reservation

// OutputTokens implements platform.OutputBound: the completion the
// reservation holds credit for, bounded when the request asked for more
// than the credit pays (docs/design.md §7).
func (r *meterReservation) OutputTokens() (int, bool) {
	return int(r.Estimate.CompletionTokens), r.Bounded
}

// Settle implements platform.Reservation. Whatever the outcome, the usage
// the hot path reports is what is charged (docs/design.md §3: disconnects and
// failures settle to what was used).
func (r *meterReservation) Settle(ctx context.Context, s platform.Settlement) (platform.Charge, error) {
	c, err := r.eng.Settle(ctx, (*Reservation)(r), usageOf(s.Usage), string(s.Outcome), s.Estimated)
	if err != nil {
		return platform.Charge{}, err
	}
	return platform.Charge{Amount: int64(c.Amount), PaidBy: c.PaidByJSON()}, nil
}

// SettleRecord implements platform.RecordingReservation: the request-log
// row is written in the transaction that writes the usage row.
func (r *meterReservation) SettleRecord(ctx context.Context, s platform.Settlement, row platform.RequestLog) (platform.Charge, bool, error) {
	c, paidBy, recorded, err := r.eng.settle(ctx, (*Reservation)(r), usageOf(s.Usage), string(s.Outcome), s.Estimated, &row)
	if err != nil {
		return platform.Charge{}, false, err
	}
	if paidBy == "" { // encoded for the log row already, when it was queued
		paidBy = c.PaidByJSON()
	}
	return platform.Charge{Amount: int64(c.Amount), PaidBy: paidBy}, recorded, nil
}

// Flush writes the engine's waiting usage rows (and the request-log rows
// that go with them) now: metered.Call.EndStored waits on it.
func (r *meterReservation) Flush(ctx context.Context) error { return r.eng.Flush(ctx) }

// usageOf is the hot path's usage in billing's terms, tiers included.
func usageOf(u platform.Usage) Usage {
	return Usage{
		PromptTokens: int64(u.PromptTokens), CompletionTokens: int64(u.CompletionTokens),
		CachedTokens: int64(u.CachedTokens), ReasoningTokens: int64(u.ReasoningTokens),
		Calls: int64(u.ToolCalls), Images: int64(u.Images),
	}
}
