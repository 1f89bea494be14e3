// Package tasks runs async chat completions (docs/v4.md §4 "Async") as durable
// rows: Submit stores a queued task, a pool of workers claims tasks from
// the store (atomically, so no two workers or replicas run one task), runs
// each as a metered call (platform/metered: the same reservation, settle
// and request log as a sync request) and stores the result.
//
// Limits: the submission was counted against the rate and checked against
// the daily quota; the run takes a concurrency permit and checks the daily
// quota again, and its tokens count toward it (platform.LimitRun). A task
// whose key or account is at its concurrency limit waits, claimed, until
// a permit is free (see Pool.start for why it waits rather than fails);
// one refused by the daily quota fails with 1304.
//
// Restart policy: queued tasks simply wait for the next worker, in this
// process or another. A task that was running when its process died is
// failed, not re-run, once its lease expires (Lease, default 30 s, renewed
// every Lease/3 while it runs): the upstream may already have answered and
// charged, and running it twice is worse than asking the client to submit
// again. On a graceful shutdown running tasks get the drain timeout to
// finish; the rest are failed with a message saying so.
package tasks

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
)

// Messages of tasks that did not finish.
const (
	MsgWorkerLost = "the server running this task stopped before it finished (crash or restart); " +
		"it was not run again, to avoid running it twice: submit it again"
	MsgShutdown = "the server shut down before this task finished: submit it again"
)

// Calls starts metered calls (platform/metered.Service implements it).
type Calls interface {
	Begin(c *metered.Call, id, endpoint string, start time.Time)
}

// Options configure a Pool.
type Options struct {
	Store platform.TaskStore
	// Calls runs each task's chat as a metered call, which also records
	// the task's execution row (EndpointAsyncTask, ID = task id).
	Calls Calls
	// Workers run tasks concurrently (default 4).
	Workers int
	// Lease is how long a claim holds without renewal (default 30 s); a
	// crashed server's running tasks are failed within one Lease.
	Lease time.Duration
	// Retention keeps finished tasks readable this long (default 72 h).
	Retention time.Duration
	// Poll is how often idle workers look for tasks submitted elsewhere
	// (default 1 s), backing off to 8 × Poll while they find none
	// (platform.Poll); a submit in this process wakes a worker at once.
	Poll time.Duration
	// Timeout bounds one task's upstream call (default 5 min).
	Timeout time.Duration
	// MaxWaiting caps the claimed tasks this pool holds while their key or
	// account is at its concurrency limit (default 16 per worker). A full
	// list stops claiming, so one key's backlog stays in the queue, where
	// another replica may take it, instead of in this process's memory.
	MaxWaiting int
	// MaxQueuedPerKey caps the tasks one key may have queued (submitted,
	// not yet running); a submit past it is refused with 1302 (default
	// 1,000; negative: no cap). The queue is rows, so without a cap one
	// key could fill the database with work it submits faster than it
	// runs. It needs a store that can count and insert in one statement
	// (QueueCapper); another store takes every submit.
	MaxQueuedPerKey int
	Logger          *slog.Logger
	Now             func() time.Time
}

// Pool is the async worker pool.
type Pool struct {
	opts   Options
	worker string
	wake   chan struct{}
	poll   *platform.Poll // shared by the workers: one claim per tick

	stopClaim context.CancelFunc // stops claiming new tasks
	claimCtx  context.Context
	cancelRun context.CancelFunc // cancels running tasks (drain timeout)
	runCtx    context.Context
	wg        sync.WaitGroup
	started   bool

	mu      sync.Mutex
	waiting []*claimed // oldest first: waiting for a concurrency permit
}

// New returns a Pool; Start runs it.
func New(opts Options) *Pool {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 72 * time.Hour
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	if opts.MaxWaiting <= 0 {
		opts.MaxWaiting = 16 * opts.Workers
	}
	if opts.MaxQueuedPerKey == 0 {
		opts.MaxQueuedPerKey = DefaultMaxQueuedPerKey
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	host, _ := os.Hostname()
	return &Pool{opts: opts, worker: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), platform.RandomID("", 4)),
		wake: make(chan struct{}, opts.Workers)}
}

// Worker is this pool's identity in the tasks table.
func (p *Pool) Worker() string { return p.worker }

// Start launches the workers and the janitor (lease expiry, retention).
func (p *Pool) Start() {
	p.claimCtx, p.stopClaim = context.WithCancel(context.Background())
	p.runCtx, p.cancelRun = context.WithCancel(context.Background())
	p.started = true
	p.poll = platform.NewPoll(p.opts.Poll)
	p.janitor(p.claimCtx) // fail tasks of a crashed predecessor right away if their lease is over
	for i := 0; i < p.opts.Workers; i++ {
		p.wg.Add(1)
		go p.work()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		every := max(p.opts.Lease/2, 100*time.Millisecond)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.claimCtx.Done():
				return
			case <-t.C:
				p.janitor(p.claimCtx)
			}
		}
	}()
}

// DefaultMaxQueuedPerKey is Options.MaxQueuedPerKey's default.
const DefaultMaxQueuedPerKey = 1000

// QueueCapper is a task store that inserts a task only while its key has
// fewer than maxQueued queued (platform/store.SQL).
type QueueCapper interface {
	CreateTaskCapped(ctx context.Context, t platform.Task, maxQueued int) (created bool, err error)
}

// Submit stores a queued task and wakes a worker. A key already at
// MaxQueuedPerKey queued tasks is refused with 1302 (429).
func (p *Pool) Submit(ctx context.Context, t platform.Task) error {
	t.State = platform.TaskQueued
	if capper, ok := p.opts.Store.(QueueCapper); ok && p.opts.MaxQueuedPerKey > 0 {
		created, err := capper.CreateTaskCapped(ctx, t, p.opts.MaxQueuedPerKey)
		if err != nil {
			return fmt.Errorf("tasks: submit: %w", err)
		}
		if !created {
			p.opts.Logger.Warn("tasks: submit refused: the key's queue is full", "key", t.KeyID, "max_queued", p.opts.MaxQueuedPerKey)
			return platform.Errorf(platform.CodeConcurrency,
				"this API key already has %d async tasks waiting to run; retry when some have finished", p.opts.MaxQueuedPerKey)
		}
	} else if err := p.opts.Store.CreateTask(ctx, t); err != nil {
		return fmt.Errorf("tasks: submit: %w", err)
	}
	p.signal()
	return nil
}

// Get returns an account's task.
func (p *Pool) Get(ctx context.Context, accountID, id string) (platform.Task, error) {
	return p.opts.Store.GetTask(ctx, accountID, id)
}

// Shutdown stops claiming, lets running tasks finish until ctx ends, then
// cancels them; they are failed with MsgShutdown.
func (p *Pool) Shutdown(ctx context.Context) error {
	if !p.started {
		return nil
	}
	p.stopClaim()
	platform.Drain(ctx, &p.wg, p.cancelRun)
	p.poll.Stop()
	p.dropWaiting()
	// Belt and braces: nothing this worker held may stay "running".
	n, err := p.opts.Store.ReleaseTasks(context.Background(), p.worker, p.opts.Now(), platform.CodeInternal, MsgShutdown)
	if err != nil {
		return fmt.Errorf("tasks: release on shutdown: %w", err)
	}
	if n > 0 {
		p.opts.Logger.Warn("tasks: failed running tasks at shutdown", "count", n)
	}
	return nil
}

func (p *Pool) janitor(ctx context.Context) {
	now := p.opts.Now()
	if n, err := p.opts.Store.FailExpiredTasks(ctx, now, platform.CodeInternal, MsgWorkerLost); err != nil {
		if ctx.Err() == nil {
			p.opts.Logger.Error("tasks: fail expired", "err", err)
		}
	} else if n > 0 {
		p.opts.Logger.Warn("tasks: failed tasks whose worker was lost", "count", n)
	}
	if _, err := p.opts.Store.PurgeTasks(ctx, now.Add(-p.opts.Retention)); err != nil && ctx.Err() == nil {
		p.opts.Logger.Error("tasks: purge", "err", err)
	}
}

// work is one worker: it runs a waiting task whose permit is now free,
// else claims the next queued task, else sleeps until a wake-up or the
// poll.
func (p *Pool) work() {
	defer p.wg.Done()
	platform.WorkLoop(p.claimCtx, p.poll, p.wake, func() bool { return p.runWaiting() || p.claimNext() })
}

// claimNext claims one queued task and runs it, or puts it on the waiting
// list; it reports whether it claimed one.
func (p *Pool) claimNext() bool {
	p.mu.Lock()
	full := len(p.waiting) >= p.opts.MaxWaiting
	p.mu.Unlock()
	if full {
		return false
	}
	now := p.opts.Now()
	got, err := p.opts.Store.ClaimTasks(p.claimCtx, p.worker, 1, now, now.Add(p.opts.Lease))
	if err != nil && p.claimCtx.Err() == nil {
		p.opts.Logger.Error("tasks: claim", "err", err)
	}
	if len(got) > 0 {
		p.signal() // there may be more: an idle worker looks too (platform.WorkLoop)
	}
	for _, t := range got {
		ct := p.hold(t)
		c, err := p.start(ct)
		switch {
		case err != nil:
			p.run(ct, c, err)
		case c != nil:
			p.run(ct, c, nil)
		default:
			p.mu.Lock()
			p.waiting = append(p.waiting, ct)
			p.mu.Unlock()
		}
	}
	return len(got) > 0
}

// signal wakes one idle worker.
func (p *Pool) signal() { platform.Wake(p.wake) }
