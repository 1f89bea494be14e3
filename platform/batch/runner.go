package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/files"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/zhipuai"
)

// Calls starts metered calls (platform/metered.Service implements it).
type Calls interface {
	Begin(c *metered.Call, id, endpoint string, start time.Time)
}

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Store platform.BatchStore
	Files *files.Service
	Calls Calls
	// Workers bound the lines this process runs at once, over every batch
	// (default 2): batch work never takes more than this from the
	// process, whatever is queued, so interactive traffic keeps the rest.
	Workers int
	// PerBatch bounds the lines of one batch running at once over every
	// replica (default 2), so one large batch does not hold every worker.
	PerBatch int
	// Lease is how long a claimed line holds without renewal (default
	// 30 s): a line whose worker died runs again within one Lease.
	Lease time.Duration
	// Poll is how often idle workers look for lines (default 1 s),
	// backing off to 8 × Poll while they find none (platform.Poll); a
	// batch created in this process wakes a worker at once (Wake).
	Poll time.Duration
	// Timeout bounds one line's model call (default 5 min).
	Timeout time.Duration
	// Backoff is how long a line a rate or concurrency limit refused
	// waits before it is claimed again (default 2 s).
	Backoff time.Duration
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Runner is the pool of batch workers. Its durability follows the async
// tasks' lease pattern (docs/design.md §3 "Durable tasks") with one
// difference: a line whose worker died is run again rather than failed,
// because its request-log and usage id is derived from the batch and the
// line (platform.LineRequestID), and the meter stores one usage row per
// id: a re-run cannot be charged twice (docs/design.md §10).
type Runner struct {
	o      RunnerOptions
	worker string
	wake   chan struct{}
	poll   *platform.Poll // shared by the workers: one claim per tick

	stop    context.CancelFunc
	stopCtx context.Context
	cut     context.CancelFunc // cancels running lines (drain timeout)
	runCtx  context.Context
	wg      sync.WaitGroup
	started bool
}

// NewRunner returns a Runner; Start runs it.
func NewRunner(o RunnerOptions) *Runner {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.PerBatch <= 0 {
		o.PerBatch = 2
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	host, _ := os.Hostname()
	return &Runner{o: o, worker: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), platform.RandomID("", 4)),
		wake: make(chan struct{}, o.Workers)}
}

// Wake makes an idle worker look for lines now (a batch was created);
// a worker that claims one wakes the next (platform.WorkLoop).
func (r *Runner) Wake() { r.signal() }

// signal wakes one idle worker.
func (r *Runner) signal() { platform.Wake(r.wake) }

// Start launches the workers and the janitor.
func (r *Runner) Start() {
	r.stopCtx, r.stop = context.WithCancel(context.Background())
	r.runCtx, r.cut = context.WithCancel(context.Background())
	r.started = true
	r.poll = platform.NewPoll(r.o.Poll)
	r.janitor(r.stopCtx)
	for range r.o.Workers {
		r.wg.Add(1)
		go r.work()
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(max(r.o.Lease/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-r.stopCtx.Done():
				return
			case <-t.C:
				if err := r.o.Store.RenewLines(context.Background(), r.worker, r.o.Now().Add(r.o.Lease)); err != nil {
					r.o.Metrics.errors.WithLabelValues("renew").Inc()
					r.o.Logger.Error("batch: renew line leases", "err", err)
				}
				r.janitor(r.stopCtx)
			}
		}
	}()
}

// Shutdown stops claiming and lets running lines finish until ctx ends,
// then cancels them; a cancelled line's lease runs out and it runs again
// on the next start or another replica.
func (r *Runner) Shutdown(ctx context.Context) error {
	if !r.started {
		return nil
	}
	r.stop()
	platform.Drain(ctx, &r.wg, r.cut)
	r.poll.Stop()
	return nil
}

// janitor requeues the lines of dead workers and expires batches past
// their window.
func (r *Runner) janitor(ctx context.Context) {
	now := r.o.Now()
	if n, err := r.o.Store.RecoverLines(ctx, now); err != nil {
		if ctx.Err() == nil {
			r.o.Metrics.errors.WithLabelValues("recover").Inc()
			r.o.Logger.Error("batch: recover lines", "err", err)
		}
	} else if n > 0 {
		r.o.Metrics.lines.WithLabelValues("recovered").Add(float64(n))
		r.o.Logger.Warn("batch: lines whose worker was lost are queued again", "count", n)
	}
	n, err := r.o.Store.ExpireBatches(ctx, now, func(l platform.BatchLine) []byte {
		return notRunLine(l.BatchID, l, "batch_expired", "the batch's completion window ended before this line ran")
	})
	if err != nil && ctx.Err() == nil {
		r.o.Metrics.errors.WithLabelValues("expire").Inc()
		r.o.Logger.Error("batch: expire batches", "err", err)
	} else if n > 0 {
		r.o.Logger.Warn("batch: batches expired", "count", n)
	}
}

// work is one worker: a line, else a batch to finalize, else a nap.
func (r *Runner) work() {
	defer r.wg.Done()
	platform.WorkLoop(r.stopCtx, r.poll, r.wake, func() bool { return r.claimLine() || r.finalizeOne() })
}

// claimLine claims and runs one line; it reports whether it had one.
func (r *Runner) claimLine() bool {
	now := r.o.Now()
	got, err := r.o.Store.ClaimLines(r.stopCtx, r.worker, 1, r.o.PerBatch, now, now.Add(r.o.Lease))
	if err != nil {
		if r.stopCtx.Err() == nil {
			r.o.Metrics.errors.WithLabelValues("claim").Inc()
			r.o.Logger.Error("batch: claim lines", "err", err)
		}
		return false
	}
	if len(got) > 0 {
		r.signal() // there may be more: an idle worker looks too (platform.WorkLoop)
	}
	for _, l := range got {
		r.run(l)
	}
	return len(got) > 0
}

// run executes one held line as a metered call at the batch price and
// stores its outcome. The usage and request-log rows are stored before
// the outcome (EndStored): a crash in between runs the line again, and
// the meter keeps the first usage row of its id.
func (r *Runner) run(l platform.BatchLine) {
	b, err := r.o.Store.GetBatch(r.runCtx, "", l.BatchID)
	if err != nil {
		r.o.Metrics.errors.WithLabelValues("run").Inc()
		r.o.Logger.Error("batch: read the line's batch", "batch", l.BatchID, "line", l.Line, "err", err)
		return // the lease runs out and the line runs again
	}
	var c metered.Call
	r.o.Calls.Begin(&c, platform.LineRequestID(l.BatchID, l.Line), platform.EndpointBatchLine, r.o.Now())
	c.SetCaller(platform.Principal{AccountID: l.AccountID, KeyID: l.KeyID})
	c.Row.Model, c.Row.RequestID = l.Model, l.CustomID
	c.Batch = true
	ctx, cancel := context.WithTimeout(r.runCtx, r.o.Timeout)
	defer cancel()
	if err := c.Limit(ctx, l.Model, l.Prompt); err != nil {
		if code := platform.AsError(err).Code; code == platform.CodeConcurrency || code == platform.CodeRateLimit {
			// A limit that frees up: the line waits, unrecorded (the call
			// holds nothing yet), and is claimed again after Backoff.
			r.o.Metrics.lines.WithLabelValues("requeued").Inc()
			if err := r.o.Store.RequeueLine(context.Background(), l, r.worker, r.o.Now().Add(r.o.Backoff)); err != nil {
				r.o.Logger.Error("batch: requeue line", "batch", l.BatchID, "line", l.Line, "err", err)
			}
			return
		}
		r.finish(&c, l, nil, err)
		return
	}
	body, err := r.call(ctx, &c, Op(b.Endpoint), l)
	r.finish(&c, l, body, err)
}

// call runs the line's operation and returns the reply's JSON.
func (r *Runner) call(ctx context.Context, c *metered.Call, op string, l platform.BatchLine) ([]byte, error) {
	bad := func(err error) error {
		return platform.Wrap(platform.CodeInternal, "the stored line is unreadable", err)
	}
	var reply any
	switch op {
	case OpChat:
		var req zhipuai.ChatCompletionRequest
		if err := json.Unmarshal(l.Body, &req); err != nil {
			return nil, bad(err)
		}
		req.Stream = false // a line's reply is one object
		resp, _, err := c.Chat(ctx, platform.ChatRequest{Req: &req}, l.Prompt)
		if err != nil {
			return nil, err
		}
		if resp.RequestID == "" {
			resp.RequestID = l.CustomID
		}
		reply = resp
	case OpEmbeddings:
		var req zhipuai.EmbeddingRequest
		if err := json.Unmarshal(l.Body, &req); err != nil {
			return nil, bad(err)
		}
		resp, err := c.Embeddings(ctx, &req, l.Prompt)
		if err != nil {
			return nil, err
		}
		if resp.Object == "" {
			resp.Object = "list"
		}
		if resp.Model == "" {
			resp.Model = req.Model
		}
		reply = resp
	default:
		return nil, platform.Errorf(platform.CodeInternal, "batch endpoint %q has no operation", op)
	}
	b, err := json.Marshal(reply)
	if err != nil {
		return nil, platform.Wrap(platform.CodeInternal, "could not encode the reply", err)
	}
	return b, nil
}

// finish settles and records the line's call, then stores its outcome.
func (r *Runner) finish(c *metered.Call, l platform.BatchLine, body []byte, callErr error) {
	id := platform.LineRequestID(l.BatchID, l.Line)
	if callErr == nil {
		c.Row.HTTPStatus = 200
		l.State = platform.LineDone
		l.Result, _ = json.Marshal(zhipuai.BatchResultLine{ID: id, CustomID: l.CustomID,
			Response: &zhipuai.BatchResponse{StatusCode: 200, RequestID: id, Body: body}})
	} else {
		e := platform.AsError(callErr)
		if r.runCtx.Err() != nil {
			// Cut by the drain: not the line's failure. The call is not
			// ended: settling it would store a usage row under the line's
			// id for a call that did not finish, and the re-run's real
			// usage would then be skipped as a duplicate. Its reservation
			// goes back with the process's leases; the line goes back to
			// the queue now, for another replica or the next start.
			r.o.Logger.Warn("batch: line cut by shutdown; it runs again", "batch", l.BatchID, "line", l.Line)
			r.o.Metrics.lines.WithLabelValues("requeued").Inc()
			if err := r.o.Store.RequeueLine(context.Background(), l, r.worker, r.o.Now()); err != nil {
				r.o.Logger.Error("batch: requeue a line cut by shutdown; it runs again when its lease ends", "batch", l.BatchID, "line", l.Line, "err", err)
			}
			return
		}
		c.Row.HTTPStatus, c.Row.ErrorCode = e.Status(), e.Code
		c.SetErrorDetail(callErr)
		l.State = platform.LineFailed
		l.Result = ErrorLine(l.BatchID, l, e)
		r.o.Metrics.lineErrors.WithLabelValues(e.Code).Inc()
		r.o.Logger.Warn("batch: line failed", "batch", l.BatchID, "line", l.Line, "custom_id", l.CustomID, "code", e.Code, "err", callErr)
	}
	if _, err := c.EndStored(context.Background()); err != nil {
		r.o.Metrics.errors.WithLabelValues("settle").Inc()
		r.o.Logger.Error("batch: the line's usage and request-log rows are not stored; the line runs again",
			"batch", l.BatchID, "line", l.Line, "err", err)
		return
	}
	ok, err := r.o.Store.FinishLine(context.Background(), l, r.worker)
	switch {
	case err != nil:
		r.o.Metrics.errors.WithLabelValues("finish").Inc()
		r.o.Logger.Error("batch: store the line's outcome", "batch", l.BatchID, "line", l.Line, "err", err)
	case !ok:
		r.o.Logger.Warn("batch: claim lost before the line's outcome was stored", "batch", l.BatchID, "line", l.Line)
	default:
		r.o.Metrics.lines.WithLabelValues(l.State).Inc()
	}
}

// finalizeOne writes the output and error files of one batch whose lines
// are all settled, and ends it; it reports whether it ended one.
func (r *Runner) finalizeOne() bool {
	now := r.o.Now()
	b, ok, err := r.o.Store.ClaimFinalize(r.stopCtx, r.worker, now, now.Add(r.o.Lease))
	if err != nil {
		if r.stopCtx.Err() == nil {
			r.o.Metrics.errors.WithLabelValues("finalize").Inc()
			r.o.Logger.Error("batch: claim a batch to finalize", "err", err)
		}
		return false
	}
	if !ok {
		return false
	}
	if err := r.finalize(b); err != nil {
		r.o.Metrics.errors.WithLabelValues("finalize").Inc()
		r.o.Logger.Error("batch: finalize; retried when the claim runs out", "batch", b.ID, "err", err)
		return false
	}
	return true
}

// finalize builds the files and ends the batch. The files' ids derive
// from the batch's, so a finalization run again replaces them.
func (r *Runner) finalize(b platform.Batch) error {
	ctx := context.Background()
	lines, err := r.o.Store.BatchLines(ctx, b.ID)
	if err != nil {
		return err
	}
	var out, errs []byte
	for _, l := range lines {
		switch l.State {
		case platform.LineDone:
			out = append(append(out, l.Result...), '\n')
		case platform.LineFailed:
			errs = append(append(errs, l.Result...), '\n')
		case platform.LineCancelled:
			line := notRunLine(b.ID, l, "batch_cancelled", "the batch was cancelled before this line ran")
			if b.Final == platform.BatchExpired {
				line = notRunLine(b.ID, l, "batch_expired", "the batch's completion window ended before this line ran")
			}
			errs = append(append(errs, line...), '\n')
		}
	}
	base := "file-" + b.ID[len("batch_"):]
	put := func(suffix string, content []byte) (string, error) {
		if len(content) == 0 {
			return "", nil
		}
		f := platform.File{ID: base + suffix, AccountID: b.AccountID, Filename: b.ID + suffix + ".jsonl",
			Purpose: platform.PurposeBatchOutput, CreatedAt: r.o.Now().UTC()}
		return f.ID, r.o.Files.Put(ctx, f, content)
	}
	if b.OutputFileID, err = put("-output", out); err != nil {
		return err
	}
	if b.ErrorFileID, err = put("-errors", errs); err != nil {
		return err
	}
	if b.AutoDeleteInput {
		if err := r.o.Files.Delete(ctx, b.AccountID, b.InputFileID); err != nil && platform.AsError(err).Status() != 404 {
			r.o.Logger.Warn("batch: could not delete the input file", "batch", b.ID, "file", b.InputFileID, "err", err)
		}
	}
	ok, err := r.o.Store.FinishBatch(ctx, b, r.worker, r.o.Now())
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("the finalization claim was lost")
	}
	r.o.Metrics.batches.WithLabelValues(b.Final).Inc()
	r.o.Logger.Info("batch: finished", "batch", b.ID, "status", b.Final, "completed", b.Completed, "failed", b.Failed, "total", b.Total)
	return nil
}
