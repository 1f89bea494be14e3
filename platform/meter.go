package platform

import (
	"context"
)

// The hot path of every metered request walks, in this order
// (docs/design.md §2): auth → validate → Limiter.Acquire → Meter.Reserve → upstream →
// stream/flush → usage → Reservation.Settle → Permit.Release → request
// log. platform/metered runs that walk; the Meter and the Limiter are
// seams so billing and rate limits plug in without touching its callers.

// ReserveRequest is what the meter learns before the upstream call.
type ReserveRequest struct {
	// RequestLogID is the id of the request-log row this reservation will be
	// settled into (RequestLog.ID), so a usage row and a charge can be
	// matched one to one, also by a startup reconciliation after a crash.
	RequestLogID string
	AccountID    string
	KeyID        string
	Model        string
	Endpoint     string
	// PromptTokens is the local estimate (platform.EstimateChatPromptTokens
	// for chat, EstimateTokens summed for embeddings); tool definitions are
	// included.
	PromptTokens int
	// MaxTokens is the completion cap used for the reservation: the
	// request's max_tokens, else the model's MaxOutput, else 0.
	MaxTokens int
	// MinOutput is the least completion the request may be admitted with
	// when the balance cannot pay for MaxTokens (ModelInfo.AdmitOutput);
	// the meter then bounds the output to what the balance can pay and
	// says so through OutputBound (docs/design.md §7). 0 means the request
	// is admitted for MaxTokens in full or refused.
	MinOutput int
	// Images is the number of images asked for (image generation).
	Images int
	// Calls is the number of tool uses billed per call the request may
	// make (one when it enables web_search, docs/v4.md §7), reserved so
	// the reservation stays an upper bound of the charge.
	Calls int
	// Batch marks a line of a batch job: the meter charges it at the batch
	// price, below the interactive one as the cloud does (docs/design.md §7).
	Batch bool
}

// Reservation is a successful Reserve: the meter's own handle on what it
// holds for the request, opaque to the hot path, which hands the outcome
// back through Settle exactly once.
type Reservation interface {
	// Settle charges what the request used and releases the rest. It must
	// not fail the request; its error is logged.
	Settle(ctx context.Context, s Settlement) (Charge, error)
}

// RecordingReservation is a Reservation whose meter writes the request's
// request-log row in the same transaction as its usage row, so no crash
// can leave a charge without its row or a row without its charge
// (docs/design.md §3 "Crash consistency").
type RecordingReservation interface {
	Reservation
	// SettleRecord settles like Settle and stores row, its Charge filled
	// in, beside the usage row. recorded is false when the meter stored
	// nothing (it has closed): the caller records the row itself.
	SettleRecord(ctx context.Context, s Settlement, row RequestLog) (c Charge, recorded bool, err error)
}

// OutputBound is implemented by a Reservation that may admit a request
// for less output than it asked for (docs/design.md §7). Tokens is the
// completion the reservation can pay for; when bounded, the caller sends
// it upstream as max_tokens, so the reply ends with finish_reason "length"
// exactly as if the client had asked for that max_tokens.
type OutputBound interface {
	OutputTokens() (tokens int, bounded bool)
}

// Outcome says how a metered request ended.
type Outcome string

// Outcomes of a request, passed to Settle.
const (
	OutcomeOK            Outcome = "ok"             // the upstream answered in full
	OutcomeUpstreamError Outcome = "upstream_error" // failed before any output: nothing used
	OutcomeCut           Outcome = "cut"            // stream broke or failed after output began
	OutcomeClientGone    Outcome = "client_gone"    // the client disconnected mid-stream
)

// Settlement is what a request actually used.
type Settlement struct {
	Usage   Usage
	Outcome Outcome
	// Estimated is true when Usage is the server's estimate because the
	// upstream reported none (see RequestLog.Estimated).
	Estimated bool
}

// Charge is what a settlement cost, recorded on the request-log row. The
// amount is an integer in the meter's unit (the billing meter counts
// 1e-6 CNY, so no charge is ever rounded); PaidBy says
// what paid it (packages, cash) in the meter's own JSON.
type Charge struct {
	Amount int64
	PaidBy string
}

// Meter reserves before the upstream call; the Reservation it returns
// settles after it. Reserve returns a *Error (1113 when nothing is left to
// pay with) that is sent to the client before any upstream call. Every
// successful Reserve is settled exactly once, whatever happened in between.
type Meter interface {
	Reserve(ctx context.Context, req ReserveRequest) (Reservation, error)
}

// NopMeter reserves nothing and charges nothing.
type NopMeter struct{}

// Reserve always succeeds.
func (NopMeter) Reserve(context.Context, ReserveRequest) (Reservation, error) {
	return nopReservation{}, nil
}

type nopReservation struct{}

// Settle charges nothing.
func (nopReservation) Settle(context.Context, Settlement) (Charge, error) { return Charge{}, nil }

// LimitRequest is what the limiter learns after validation.
type LimitRequest struct {
	AccountID string
	KeyID     string
	Model     string
	Endpoint  string
	// PromptTokens is the local prompt estimate (for token-per-minute caps).
	PromptTokens int
	// Stage says which part of the limits this Acquire applies; the zero
	// value is a request that runs now.
	Stage LimitStage
}

// LimitStage splits one request's limits between its admission and its
// run, so work admitted now and run later (an async task) meets the same
// limits as a request that runs at once (docs/design.md §3 "Limits").
type LimitStage uint8

const (
	// LimitNow: the request runs now. Rate and daily quota are checked,
	// the request is counted against the rate and holds a concurrency
	// permit until Release.
	LimitNow LimitStage = iota
	// LimitSubmit: the request is admitted to run later. Rate and daily
	// quota are checked and the rate counts it; the permit holds nothing.
	LimitSubmit
	// LimitRun: a request admitted with LimitSubmit starts running. The
	// daily quota is checked again and a concurrency permit is held until
	// Release (which counts the tokens); the rate is not counted twice.
	LimitRun
)

// Limiter enforces rate and concurrency limits (1302 concurrency, 1303
// rate, 1304 daily quota, all 429). Acquire returns a *Error to refuse.
type Limiter interface {
	Acquire(ctx context.Context, req LimitRequest) (Permit, error)
}

// Permit is held for the duration of a request; Release is called exactly
// once with the usage the request ended with.
type Permit interface {
	Release(used Usage)
}

// NopLimiter admits everything.
type NopLimiter struct{}

// Acquire always admits.
func (NopLimiter) Acquire(context.Context, LimitRequest) (Permit, error) { return nopPermit{}, nil }

type nopPermit struct{}

func (nopPermit) Release(Usage) {}
