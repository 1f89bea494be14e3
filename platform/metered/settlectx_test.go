package metered

import (
	"context"
	"errors"
	"testing"
	"time"
	"unsafe"
)

type ctxKey struct{}

// waitDone waits for ch with a generous bound (never a speed check).
func waitDone(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: Done not closed after 10 s; want closed", what)
	}
}

// The settlement context has the caller's values, not its cancellation,
// and a deadline settleTimeout after it started.
func TestSettleContextDetachedWithDeadline(t *testing.T) {
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	cancel()
	var c settleContext
	before := time.Now()
	ctx := c.start(parent)
	after := time.Now()
	defer c.stop()
	if got := ctx.Value(ctxKey{}); got != "v" {
		t.Errorf("Value: got %v, want v", got)
	}
	if err := ctx.Err(); err != nil {
		t.Errorf("Err with the caller cancelled: got %v, want nil", err)
	}
	if err := context.Cause(ctx); err != nil {
		t.Errorf("Cause with the caller cancelled: got %v, want nil", err)
	}
	d, ok := ctx.Deadline()
	if !ok || d.Before(before.Round(0).Add(settleTimeout)) || d.After(after.Round(0).Add(settleTimeout)) {
		t.Errorf("Deadline: got %v %v, want between %v and %v", d, ok, before.Add(settleTimeout), after.Add(settleTimeout))
	}
	select {
	case <-ctx.Done():
		t.Fatal("Done closed with the caller cancelled; want open until the deadline")
	default:
	}
}

// Past its deadline the context ends with DeadlineExceeded, whether Done
// was asked for first (its timer closes it) or Err notices first.
func TestSettleContextDeadlineExceeded(t *testing.T) {
	t.Run("done first", func(t *testing.T) {
		var c settleContext
		ctx := c.start(context.Background())
		c.deadline = time.Now().Add(20 * time.Millisecond).UnixNano()
		waitDone(t, ctx.Done(), "done first")
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err: got %v, want %v", err, context.DeadlineExceeded)
		}
		if err := context.Cause(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Cause: got %v, want %v", err, context.DeadlineExceeded)
		}
		c.stop()
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err after stop: got %v, want %v (the first end stays)", err, context.DeadlineExceeded)
		}
	})
	t.Run("err first", func(t *testing.T) {
		var c settleContext
		ctx := c.start(context.Background())
		c.deadline = time.Now().Add(-time.Millisecond).UnixNano()
		if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Err: got %v, want %v", err, context.DeadlineExceeded)
		}
		waitDone(t, ctx.Done(), "err first")
		c.stop()
	})
}

// stop cancels the context like a cancel func: Done closes (made before
// or after), children end, and a later start begins afresh.
func TestSettleContextStop(t *testing.T) {
	var c settleContext
	ctx := c.start(context.Background())
	child, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	done := ctx.Done()
	c.stop()
	waitDone(t, done, "Done made before stop")
	waitDone(t, child.Done(), "a child")
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after stop: got %v, want %v", err, context.Canceled)
	}

	ctx = c.start(context.WithValue(context.Background(), ctxKey{}, "v"))
	if err := ctx.Err(); err != nil {
		t.Errorf("Err after a new start: got %v, want nil", err)
	}
	c.stop()
	waitDone(t, ctx.Done(), "Done made after stop")
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Err after stop with nothing asked before: got %v, want %v", err, context.Canceled)
	}
	if got := ctx.Value(ctxKey{}); got != "v" {
		t.Errorf("Value after stop: got %v, want v", got)
	}
}

// The context is small: it rides in every request's Call, metered or not.
func TestSettleContextSize(t *testing.T) {
	if got := unsafe.Sizeof(settleContext{}); got > 32 {
		t.Errorf("settleContext size: got %d bytes, want ≤ 32", got)
	}
}

// A settlement that asks its context for nothing but its deadline and
// error allocates nothing: no timer, no channel, no detached parent.
func TestSettleContextAllocations(t *testing.T) {
	var c settleContext
	parent := context.Background()
	got := testing.AllocsPerRun(100, func() {
		ctx := c.start(parent)
		_, _ = ctx.Deadline()
		_ = ctx.Err()
		c.stop()
	})
	if got != 0 {
		t.Errorf("allocations per settlement context: got %v, want 0", got)
	}
}
