package platform

import (
	"context"
	"sync"
	"time"
)

// WorkLoop calls step until ctx ends: again at once while step reports
// that it did work, else after a wake-up or a poll tick. A pool's workers
// share one wake channel and one Poll, and a tick is received by one
// waiting worker: an idle pool makes one claim per tick, not one per
// worker (docs/design.md §3 "Async tasks are rows"). So that a backlog
// one poll finds (tasks another replica queued, a batch's lines) is taken
// up by every idle worker, a step that claims work passes a wake-up on
// before it runs the work. The task pool's workers and the batch runner's
// are this loop.
func WorkLoop(ctx context.Context, poll *Poll, wake <-chan struct{}, step func() bool) {
	for ctx.Err() == nil {
		if step() {
			poll.found()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-poll.C:
			poll.backOff()
		}
	}
}

// A Poll is the tick a pool's workers share to look for work no wake-up
// announced: rows another replica queued, a lease that ran out. It comes
// every Base while work turns up and backs off while it does not, each
// empty look doubling the wait up to Max, so an idle server is woken less
// and less often (docs/design.md §6 "Idle wake-ups"); work found, by a
// tick or after a wake-up, brings it back to Base.
//
// A Poll with only C set is driven by whoever sends on C (tests).
type Poll struct {
	// C delivers the ticks; each is received by one waiting worker.
	C <-chan time.Time

	base, max time.Duration
	mu        sync.Mutex
	every     time.Duration
	t         *time.Timer
}

// PollBackOff is how far a Poll backs off: Max is this many times Base.
const PollBackOff = 8

// NewPoll starts a Poll whose first tick is base from now.
func NewPoll(base time.Duration) *Poll {
	t := time.NewTimer(base)
	return &Poll{C: t.C, base: base, max: PollBackOff * base, every: base, t: t}
}

// Stop ends the ticks.
func (p *Poll) Stop() {
	if p.t != nil {
		p.t.Stop()
	}
}

// backOff arms the next tick after a tick was received: twice the last
// wait, up to Max. A step that then finds work calls found.
func (p *Poll) backOff() {
	if p.t == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.every = min(2*p.every, p.max)
	p.t.Reset(p.every)
}

// found brings a backed-off Poll back to Base: work is turning up.
func (p *Poll) found() {
	if p.t == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.every != p.base {
		p.every = p.base
		p.t.Reset(p.base)
	}
}

// Wake signals a background loop through c, a channel with room for one
// signal, without waiting: a signal already waiting is the same wake-up.
// The workers' wake channels and the writers' interval and batch-full
// signals are sent this way.
func Wake(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Drain waits for a pool's workers (wg) to finish what they run until
// ctx ends, then calls cut (which cancels what still runs) and waits for
// them to return; cut is called either way, to release its context. The
// task pool's and the batch runner's Shutdown.
func Drain(ctx context.Context, wg *sync.WaitGroup, cut func()) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		cut()
		<-done
	}
	cut()
}

// Pause waits d, or less when ctx ends (returning its error): the breath
// a long background job takes between batches so serving goes on.
func Pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
