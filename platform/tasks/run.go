package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/zhipuai"
)

// claimed is a task this pool holds: its lease is renewed from the claim
// until the result is stored, including while it waits for a permit.
type claimed struct {
	t      platform.Task
	req    zhipuai.ChatCompletionRequest
	prompt int
	bad    error // the stored request could not be read

	ctx       context.Context // ends when the claim is lost or running tasks are cut
	cancel    context.CancelFunc
	leaseDone chan struct{}
	leaseExit chan struct{}
}

// hold decodes a claimed task and keeps its claim alive until release; a
// lost claim (the janitor of another replica judged this worker dead)
// cancels the task's context.
func (p *Pool) hold(t platform.Task) *claimed {
	ct := &claimed{t: t, leaseDone: make(chan struct{}), leaseExit: make(chan struct{})}
	if err := json.Unmarshal(t.Request, &ct.req); err != nil {
		ct.bad = platform.Wrap(platform.CodeInternal, "stored task request is unreadable", err)
	} else {
		ct.prompt = platform.EstimateChatPromptTokens(&ct.req)
	}
	ct.ctx, ct.cancel = context.WithCancel(p.runCtx)
	go func() {
		defer close(ct.leaseExit)
		tk := time.NewTicker(max(p.opts.Lease/3, 10*time.Millisecond))
		defer tk.Stop()
		for {
			select {
			case <-ct.leaseDone:
				return
			case <-tk.C:
				ok, err := p.opts.Store.RenewLease(context.Background(), t.ID, p.worker, p.opts.Now().Add(p.opts.Lease))
				if err == nil && !ok {
					ct.cancel()
					return
				}
			}
		}
	}()
	return ct
}

// release stops renewing the claim.
func (ct *claimed) release() {
	close(ct.leaseDone)
	<-ct.leaseExit
	ct.cancel()
}

// start begins the task's metered call and takes its run's limits
// (platform.LimitRun: the submission already counted it against the rate).
// It returns the call ready to run; or nil and nil when the key or account
// is at its concurrency limit, so the task waits; or the refusal that
// fails the task (1304 once the day's tokens are used: waiting would not
// help until tomorrow).
//
// A task over the concurrency limit waits, claimed, in this pool rather
// than failing: the client was told PROCESSING, and a limit on how many
// run at once is a reason to run later, not never. It keeps its claim
// rather than going back to the queue so that it keeps its place among
// its key's tasks and no replica claims it again and again to find the
// same refusal; MaxWaiting bounds how many wait here.
func (p *Pool) start(ct *claimed) (*metered.Call, error) {
	if ct.bad != nil {
		return nil, ct.bad
	}
	c := p.begin(ct)
	err := c.Limit(ct.ctx, ct.t.Model, ct.prompt)
	if err == nil {
		return c, nil
	}
	if platform.AsError(err).Code == platform.CodeConcurrency {
		return nil, nil
	}
	return c, err
}

// begin starts the task's metered call, begun now: its row has the
// task's id, caller, request id and model.
func (p *Pool) begin(ct *claimed) *metered.Call {
	c := new(metered.Call)
	p.opts.Calls.Begin(c, ct.t.ID, platform.EndpointAsyncTask, p.opts.Now())
	c.SetCaller(platform.Principal{AccountID: ct.t.AccountID, KeyID: ct.t.KeyID})
	c.Row.RequestID, c.Row.Model = ct.t.RequestID, ct.t.Model
	c.Admitted = true // the submission applied its stage of the limits
	return c
}

// runWaiting runs the oldest waiting task whose permit is now free, fails
// one whose limits now refuse it, and drops those whose claim was lost;
// it reports whether it ran or failed one.
func (p *Pool) runWaiting() bool {
	p.mu.Lock()
	var (
		ct      *claimed
		c       *metered.Call
		err     error
		keep    = p.waiting[:0]
		dropped []*claimed
	)
	for _, w := range p.waiting {
		switch {
		case ct != nil:
			keep = append(keep, w)
		case w.ctx.Err() != nil:
			dropped = append(dropped, w)
		default:
			if c, err = p.start(w); c != nil || err != nil {
				ct = w
			} else {
				keep = append(keep, w)
			}
		}
	}
	clear(p.waiting[len(keep):])
	p.waiting = keep
	p.mu.Unlock()
	for _, w := range dropped {
		w.release()
		p.opts.Logger.Warn("tasks: claim lost while the task waited for its limits", "task", w.t.ID)
	}
	if ct == nil {
		return false
	}
	p.run(ct, c, err)
	return true
}

// dropWaiting lets go of every waiting task (shutdown: ReleaseTasks then
// fails them with MsgShutdown).
func (p *Pool) dropWaiting() {
	p.mu.Lock()
	w := p.waiting
	p.waiting = nil
	p.mu.Unlock()
	for _, ct := range w {
		ct.release()
	}
}

// run executes one claimed task whose call c holds its permit: the
// metered call (reserve, call, settle, request-log row), then the stored
// result. With refused set instead, the task fails with that refusal (and
// c, when the call was begun, records it).
func (p *Pool) run(ct *claimed, c *metered.Call, refused error) {
	defer p.signal() // a permit is free again: a waiting task may run
	ctx, cancel := context.WithTimeout(ct.ctx, p.opts.Timeout)
	defer cancel()
	var result []byte
	callErr := refused
	if c == nil {
		c = p.begin(ct)
	}
	if refused == nil {
		result, callErr = p.call(ctx, c, ct)
	}
	ct.release()

	fin := platform.Task{FinishedAt: p.opts.Now()}
	if callErr == nil {
		fin.State, fin.Result = platform.TaskSucceeded, result
		c.Row.HTTPStatus = 200
	} else {
		e := platform.AsError(callErr)
		if p.runCtx.Err() != nil {
			e = platform.Errorf(platform.CodeInternal, MsgShutdown)
		}
		fin.State, fin.ErrorCode, fin.ErrorMessage = platform.TaskFailed, e.Code, e.Message
		c.Row.HTTPStatus, c.Row.ErrorCode = e.Status(), e.Code
		c.SetErrorDetail(callErr)
		p.opts.Logger.Warn("tasks: task failed", "task", ct.t.ID, "code", e.Code, "err", callErr)
	}
	// Settle and log before the result is visible: a client that sees the
	// task finished finds its usage recorded, also after a crash right
	// after FinishTask (docs/design.md §3 "Crash consistency"). A task
	// whose rows cannot be written stays running, and the janitor fails
	// it once its lease runs out.
	if _, err := c.EndStored(ctx); err != nil {
		p.opts.Logger.Error("tasks: the task's usage and request-log rows are not stored; its result is not stored either",
			"task", ct.t.ID, "err", err)
		return
	}
	ok, err := p.opts.Store.FinishTask(context.Background(), ct.t.ID, p.worker, fin)
	if err != nil {
		p.opts.Logger.Error("tasks: store result", "task", ct.t.ID, "err", err)
	} else if !ok {
		p.opts.Logger.Warn("tasks: claim lost before the result was stored", "task", ct.t.ID)
	}
}

// call runs the task's chat as the metered call c and returns the
// completion as stored JSON.
func (p *Pool) call(ctx context.Context, c *metered.Call, ct *claimed) ([]byte, error) {
	resp, _, err := c.Chat(ctx, platform.ChatRequest{Req: &ct.req}, ct.prompt)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && p.runCtx.Err() == nil {
			err = platform.Wrap(platform.CodeNetwork, "the model did not answer within the task timeout", err)
		}
		return nil, err
	}
	if resp.RequestID == "" {
		resp.RequestID = ct.t.RequestID
	}
	result, err := json.Marshal(resp)
	if err != nil {
		return nil, platform.Wrap(platform.CodeInternal, "could not store the result", err)
	}
	return result, nil
}
