package metered

import (
	"context"
	"sync"
	"time"
)

// settleTimeout bounds a settlement that has to reach the database (extra
// credit for usage beyond the reservation, the back-pressure write).
const settleTimeout = 10 * time.Second

// settleContext is the context a call settles in: the caller's values
// without its cancellation (a caller that is gone still pays for what it
// used), ended by a deadline settleTimeout away. It is what
// context.WithTimeout(context.WithoutCancel(ctx), settleTimeout) gives,
// built without arming a timer: that pair allocated five times and armed
// and stopped a runtime timer on every metered request, although a
// settlement on leased credit is made in memory and never waits
// (docs/design.md §6). The channel and the timer are made only when
// something asks for Done, and the detached parent when something asks
// for a Value; Err compares the clock with the deadline. It lives in the
// Call (no allocation of its own) and is used by one settlement at a time.
type settleContext struct {
	caller   context.Context
	deadline time.Time

	mu sync.Mutex
	// parent is context.WithoutCancel(caller), made at the first Value:
	// its Value hides the caller's cancellation from context.Cause and
	// from children looking for a cancelable parent.
	parent context.Context
	done   chan struct{} // made at the first Done, closed at the end
	timer *time.Timer
	err   error
}

// start readies c for one settlement under ctx.
func (c *settleContext) start(ctx context.Context) context.Context {
	if ctx == nil {
		panic("cannot create context from nil parent") // as context.WithoutCancel
	}
	c.caller, c.parent = ctx, nil
	c.deadline = time.Now().Add(settleTimeout)
	c.done, c.timer, c.err = nil, nil, nil
	return c
}

// stop ends the settlement: like a cancel func, it stops the timer and
// leaves the context cancelled for anything that kept it.
func (c *settleContext) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.endLocked(context.Canceled)
}

func (c *settleContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *settleContext) Value(key any) any {
	c.mu.Lock()
	if c.parent == nil {
		c.parent = context.WithoutCancel(c.caller)
	}
	p := c.parent
	c.mu.Unlock()
	return p.Value(key)
}

func (c *settleContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	switch d := time.Until(c.deadline); {
	case c.err != nil:
		close(c.done) // ended before anyone asked
	case d <= 0:
		c.endLocked(context.DeadlineExceeded)
	default:
		c.timer = time.AfterFunc(d, c.expire)
	}
	return c.done
}

func (c *settleContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && !time.Now().Before(c.deadline) {
		c.endLocked(context.DeadlineExceeded)
	}
	return c.err
}

func (c *settleContext) String() string { return "metered.settleContext" }

func (c *settleContext) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endLocked(context.DeadlineExceeded)
}

// endLocked sets the context's error once and closes Done if it was made
// (a Done made later is made closed).
func (c *settleContext) endLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
}
