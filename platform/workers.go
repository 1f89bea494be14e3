package platform

import (
	"context"
	"sync"
	"time"
)

// WorkLoop calls step until ctx ends: again at once while step reports
// that it did work, else after a wake-up or a tick. A pool's workers share
// one wake channel and one ticker, and a tick is received by one waiting
// worker: an idle pool makes one claim per tick, not one per worker
// (docs/design.md §3 "Async tasks are rows"). So that a backlog one poll
// finds (tasks another replica queued, a batch's lines) is taken up by
// every idle worker, a step that claims work passes a wake-up on before
// it runs the work. The task pool's workers and the batch runner's are
// this loop.
func WorkLoop(ctx context.Context, tick <-chan time.Time, wake <-chan struct{}, step func() bool) {
	for ctx.Err() == nil {
		if step() {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-tick:
		}
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
