// Package metered runs one metered model call from admission to its
// request-log row: limits → reserve → route to a backend → hand the caller
// the reply or the stream → settle → release → request log. Whatever path
// the call takes (success, refusal, a failing backend, a caller that goes
// away, a cancelled process), the reservation is settled exactly once, the
// limiter's permit released once and the row recorded once, in Call.End.
//
// The package knows no transport. The V4 HTTP handlers and the async task
// workers are its callers: they decode and validate, start a Call, pick the
// operation (Chat, ChatStream, Embeddings, Images) and shape the answer.
// Another API format or batch lines are further callers of the same
// operations; a new operation is one more method with its reservation and
// usage rule.
package metered

import (
	"context"
	"log/slog"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Recorder receives request-log rows (platform/requestlog.Batcher).
type Recorder interface {
	Record(row platform.RequestLog)
}

// Preparer is a Recorder that is shown the rows another writer stores:
// the meter writes a charged call's row with its usage row (Call.End). It
// bounds the row's client fields before they are stored and notes the
// key's last use.
type Preparer interface {
	Prepare(row *platform.RequestLog)
}

// Metrics counts what calls used and how backends failed, for every
// caller alike (the HTTP API's Prometheus series implement it).
type Metrics interface {
	// Tokens adds the tokens a call used to the model's counters.
	Tokens(model string, u platform.Usage)
	// UpstreamError counts a backend failure by its V4 code.
	UpstreamError(code string)
}

// Options wire a Service. Backend and Catalogue are required.
type Options struct {
	// Backend serves the calls (platform/router.Router); each operation
	// needs its capability (platform.ChatBackend, …).
	Backend platform.Backend
	// Catalogue resolves the model of a call for its reservation.
	Catalogue platform.Catalogue
	// Meter and Limiter default to the no-op versions.
	Meter   platform.Meter
	Limiter platform.Limiter
	// Log receives every call's row; nil records nothing.
	Log     Recorder
	Metrics Metrics
	// Trace, when set, returns a context the backend router fills in and a
	// function reading the backend that served (router.WithTrace).
	Trace  func(ctx context.Context) (context.Context, func() string)
	Logger *slog.Logger
	Now    func() time.Time
}

// Service starts metered calls; it is safe for concurrent use.
type Service struct {
	opts    Options
	chat    platform.ChatBackend
	embed   platform.EmbeddingBackend
	images  platform.ImageBackend
	meter   platform.Meter
	nop     bool // meter is the no-op one: nothing to settle
	limiter platform.Limiter
	metrics Metrics
	log     *slog.Logger
	now     func() time.Time
}

// New returns a Service.
func New(opts Options) *Service {
	if opts.Meter == nil {
		opts.Meter = platform.NopMeter{}
	}
	if opts.Limiter == nil {
		opts.Limiter = platform.NopLimiter{}
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{opts: opts, meter: opts.Meter, limiter: opts.Limiter, metrics: opts.Metrics,
		log: opts.Logger, now: opts.Now}
	_, s.nop = opts.Meter.(platform.NopMeter)
	s.chat, _ = opts.Backend.(platform.ChatBackend)
	s.embed, _ = opts.Backend.(platform.EmbeddingBackend)
	s.images, _ = opts.Backend.(platform.ImageBackend)
	return s
}

// Now is the service's clock, for callers that stamp rows and ids alike.
func (s *Service) Now() time.Time { return s.now() }

type nopMetrics struct{}

func (nopMetrics) Tokens(string, platform.Usage) {}
func (nopMetrics) UpstreamError(string)          {}

// Presence tells a call whether its caller is still there. When a backend
// call fails because the caller hung up, the upstream already had the
// prompt: the call is settled on an estimate as abandoned rather than as a
// backend failure (docs/design.md §3 "Client disconnect").
type Presence interface {
	// Left reports whether the caller has gone away, as opposed to the
	// call failing or the process shutting down.
	Left() bool
}

// Call is one metered request. Callers keep it by value (in their own
// per-request state, so it costs no allocation), start it with
// Service.Begin and end it with End exactly once, usually deferred.
type Call struct {
	// Row is the request-log row End records. The caller fills in what
	// only it knows (model, client request id, stream flag, transport
	// status and error code); the call fills in the rest.
	Row platform.RequestLog
	// Presence, when set, says whether the caller left (nil: it never
	// leaves, like an async worker).
	Presence Presence
	// Admitted says the call's request was admitted earlier with Admit
	// (an async task at its submission): running it checks the daily quota
	// again and holds a concurrency permit, but is not counted against the
	// rate a second time (platform.LimitRun).
	Admitted bool
	// Batch says the call runs a line of a batch job: it is reserved and
	// charged at the batch price (platform.ReserveRequest.Batch).
	Batch bool
	// calls is the per-call tool uses a chat may make, reserved with it.
	calls int

	s          *Service
	start      time.Time
	permit     platform.Permit
	res        platform.Reservation
	settlement platform.Settlement
	backend    func() string
	stream     Stream
	ended      bool
	sctx       settleContext // End's settlement (settlectx.go)
}

// Begin starts c as a call with request-log id id on endpoint (a
// platform.Endpoint… name), begun at start.
func (s *Service) Begin(c *Call, id, endpoint string, start time.Time) {
	*c = Call{s: s, start: start, Row: platform.RequestLog{ID: id, CreatedAt: start.UTC(), Endpoint: endpoint}}
}

// SetCaller says who is calling: limits, reservation and row are theirs.
func (c *Call) SetCaller(p platform.Principal) {
	c.Row.AccountID, c.Row.KeyID = p.AccountID, p.KeyID
}

// Limit takes the caller's limiter permit for model, held until End: the
// whole of a request's limits, or only its run's when the call was
// Admitted earlier. The operations take it themselves; a caller calls
// Limit first only to learn of a refusal before it starts the operation
// (a task worker, which waits for a concurrency permit rather than fail).
func (c *Call) Limit(ctx context.Context, model string, promptTokens int) error {
	stage := platform.LimitNow
	if c.Admitted {
		stage = platform.LimitRun
	}
	permit, err := c.s.limiter.Acquire(ctx, c.limitRequest(model, promptTokens, stage))
	if err != nil {
		return err
	}
	c.permit = permit
	return nil
}

// Admit applies the limits of a submission: work admitted now and run
// later by another Call with Admitted set. The rate and the daily quota
// refuse it now (1303, 1304); nothing is held, so a queue of submitted
// work takes no concurrency slot until it runs (docs/design.md §3
// "Limits").
func (c *Call) Admit(ctx context.Context, model string, promptTokens int) error {
	permit, err := c.s.limiter.Acquire(ctx, c.limitRequest(model, promptTokens, platform.LimitSubmit))
	if err != nil {
		return err
	}
	permit.Release(platform.Usage{})
	return nil
}

func (c *Call) limitRequest(model string, promptTokens int, stage platform.LimitStage) platform.LimitRequest {
	return platform.LimitRequest{AccountID: c.Row.AccountID, KeyID: c.Row.KeyID, Model: model,
		Endpoint: c.Row.Endpoint, PromptTokens: promptTokens, Stage: stage}
}

// admit runs the limits and the reservation; a refusal is a *platform.Error
// for the caller to answer with, before any backend call.
func (c *Call) admit(ctx context.Context, model string, promptTokens, maxTokens, minOutput, images int) error {
	if c.permit == nil {
		if err := c.Limit(ctx, model, promptTokens); err != nil {
			return err
		}
	}
	res, err := c.s.meter.Reserve(ctx, platform.ReserveRequest{RequestLogID: c.Row.ID, AccountID: c.Row.AccountID,
		KeyID: c.Row.KeyID, Model: model, Endpoint: c.Row.Endpoint, PromptTokens: promptTokens,
		MaxTokens: maxTokens, MinOutput: minOutput, Images: images, Calls: c.calls, Batch: c.Batch})
	if err != nil {
		return err
	}
	c.res = res
	c.settlement.Outcome = platform.OutcomeUpstreamError // until the backend answers
	return nil
}

// model resolves a model name in the catalogue.
func (c *Call) model(name string) (platform.ModelInfo, error) {
	info, ok := c.s.opts.Catalogue.Model(name)
	if !ok {
		return info, platform.Errorf(platform.CodeUnknownModel, "model %s does not exist", name)
	}
	return info, nil
}

// backendCtx is the context of the backend call, with the router's trace.
func (c *Call) backendCtx(ctx context.Context) context.Context {
	if c.s.opts.Trace != nil {
		ctx, c.backend = c.s.opts.Trace(ctx)
	}
	return ctx
}

// used records what the call consumed, for settle, the row and metrics.
func (c *Call) used(model string, u platform.Usage, outcome platform.Outcome, estimated bool) {
	c.settlement = platform.Settlement{Usage: u, Outcome: outcome, Estimated: estimated}
	if u.PromptTokens > 0 || u.CompletionTokens > 0 {
		c.s.metrics.Tokens(model, u)
	}
}

// left reports whether the caller went away.
func (c *Call) left() bool { return c.Presence != nil && c.Presence.Left() }

// backendFailed records a backend failure before any output.
func (c *Call) backendFailed(err error) {
	c.SetErrorDetail(err)
	c.s.metrics.UpstreamError(platform.AsError(err).Code)
}

// chatFailed records a chat call that failed before any output: settled
// as abandoned, on the prompt estimate, when the caller left (the upstream
// already had the prompt), else counted as a backend failure.
func (c *Call) chatFailed(model string, prompt int, err error) {
	if c.left() {
		c.used(model, platform.Usage{PromptTokens: prompt, TotalTokens: prompt}, platform.OutcomeClientGone, true)
		return
	}
	c.backendFailed(err)
}

// CallerLeft reports whether the call ended because its caller went away
// (settled as abandoned): a transport answers nothing more.
func (c *Call) CallerLeft() bool {
	return c.settlement.Outcome == platform.OutcomeClientGone || c.stream.outcome == platform.OutcomeClientGone
}
