package metered

import (
	"context"
	"sync"
	"sync/atomic"
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
// (docs/design.md §6). Its state — the detached parent, the channel, the
// timer — is made only when something asks for Done, Err past the
// deadline or a Value. It lives in the Call, which every request of every
// caller carries, so it is kept to 32 bytes; one settlement at a time.
type settleContext struct {
	caller   context.Context
	deadline int64 // Unix nanoseconds
	state    atomic.Pointer[settleState]
}

// settleState is a settlement context's state once something asked.
type settleState struct {
	mu sync.Mutex
	// parent is context.WithoutCancel(caller): its Value hides the
	// caller's cancellation from context.Cause and from children looking
	// for a cancelable parent.
	parent context.Context
	done   chan struct{} // made at the first Done, closed at the end
	timer  *time.Timer
	err    error
}

// settleStopped is the state of a context stopped before anything asked:
// cancelled, Done closed, shared by all.
var settleStopped = func() *settleState {
	s := &settleState{done: make(chan struct{}), err: context.Canceled}
	close(s.done)
	return s
}()

// start readies c for one settlement under ctx.
func (c *settleContext) start(ctx context.Context) context.Context {
	if ctx == nil {
		panic("cannot create context from nil parent") // as context.WithoutCancel
	}
	c.caller = ctx
	c.deadline = time.Now().Add(settleTimeout).UnixNano()
	c.state.Store(nil)
	return c
}

// stop ends the settlement: like a cancel func, it stops the timer and
// leaves the context cancelled for anything that kept it.
func (c *settleContext) stop() {
	if c.state.CompareAndSwap(nil, settleStopped) {
		return
	}
	s := c.state.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.endLocked(context.Canceled)
}

// st is c's state, made at the first call.
func (c *settleContext) st() *settleState {
	if s := c.state.Load(); s != nil {
		return s
	}
	c.state.CompareAndSwap(nil, &settleState{})
	return c.state.Load()
}

func (c *settleContext) Deadline() (time.Time, bool) { return time.Unix(0, c.deadline), true }

func (c *settleContext) Value(key any) any {
	s := c.st()
	if s == settleStopped {
		return context.WithoutCancel(c.caller).Value(key)
	}
	s.mu.Lock()
	if s.parent == nil {
		s.parent = context.WithoutCancel(c.caller)
	}
	p := s.parent
	s.mu.Unlock()
	return p.Value(key)
}

func (c *settleContext) Done() <-chan struct{} {
	s := c.st()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return s.done
	}
	s.done = make(chan struct{})
	switch d := time.Until(time.Unix(0, c.deadline)); {
	case s.err != nil:
		close(s.done) // ended before anyone asked
	case d <= 0:
		s.endLocked(context.DeadlineExceeded)
	default:
		s.timer = time.AfterFunc(d, s.expire)
	}
	return s.done
}

func (c *settleContext) Err() error {
	past := time.Now().UnixNano() >= c.deadline
	s := c.state.Load()
	if s == nil && !past {
		return nil
	}
	s = c.st()
	s.mu.Lock()
	defer s.mu.Unlock()
	if past {
		s.endLocked(context.DeadlineExceeded)
	}
	return s.err
}

func (c *settleContext) String() string { return "metered.settleContext" }

func (s *settleState) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(context.DeadlineExceeded)
}

// endLocked sets the context's error once and closes Done if it was made
// (a Done made later is made closed).
func (s *settleState) endLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	if s.done != nil {
		close(s.done)
	}
}
