package platform_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// An idle pool's workers share one ticker: each tick is one step of one
// worker, not one step per worker.
func TestWorkLoopIdlePoolStepsOncePerTick(t *testing.T) {
	const workers, ticks = 4, 10
	ctx, cancel := context.WithCancel(context.Background())
	tick := make(chan time.Time)
	wake := make(chan struct{}, workers)
	var steps atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			platform.WorkLoop(ctx, &platform.Poll{C: tick}, wake, func() bool { steps.Add(1); return false })
		}()
	}
	// Each send is received by exactly one waiting worker.
	for range ticks {
		tick <- time.Now()
	}
	waitFor(t, func() bool { return steps.Load() >= workers+ticks })
	cancel()
	wg.Wait()
	if got, want := steps.Load(), int64(workers+ticks); got != want {
		t.Fatalf("steps: got %d, want %d (one per worker at start, one per tick)", got, want)
	}
}

// A step that claims work wakes a sibling before running it, so a backlog
// found by one tick is worked on by every worker at once.
func TestWorkLoopBacklogReachesEveryWorker(t *testing.T) {
	const workers = 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tick := make(chan time.Time)
	wake := make(chan struct{}, workers)
	var mu sync.Mutex
	backlog := 0
	var steps atomic.Int64
	running := make(chan struct{}, workers)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			platform.WorkLoop(ctx, &platform.Poll{C: tick}, wake, func() bool {
				steps.Add(1)
				mu.Lock()
				found := backlog > 0
				if found {
					backlog--
				}
				mu.Unlock()
				if !found {
					return false
				}
				select { // as the pools do after a claim
				case wake <- struct{}{}:
				default:
				}
				running <- struct{}{}
				<-release // the work runs until the test lets it end
				return true
			})
		}()
	}
	waitFor(t, func() bool { return steps.Load() >= workers }) // each found nothing at start
	mu.Lock()
	backlog = workers
	mu.Unlock()
	tick <- time.Now()
	for i := range workers {
		select {
		case <-running:
		case <-time.After(10 * time.Second):
			t.Fatalf("workers running the backlog: got %d, want %d", i, workers)
		}
	}
	close(release)
	cancel()
	wg.Wait()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// An idle pool's ticks back off: with a 2 ms Poll and nothing to find,
// 300 ms hold far fewer than the 150 ticks a fixed 2 ms tick would give
// (the waits double to 16 ms). A slow machine only lowers the count.
func TestWorkLoopIdlePollBacksOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	poll := platform.NewPoll(2 * time.Millisecond)
	defer poll.Stop()
	var steps atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		platform.WorkLoop(ctx, poll, make(chan struct{}), func() bool { steps.Add(1); return false })
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if got := steps.Load(); got > 40 {
		t.Fatalf("steps in 300 ms idle: got %d, want at most 40 (backing off to 16 ms)", got)
	}
}
