package router

import (
	"sync"
	"time"
)

// breaker is a per-backend circuit breaker. Closed: calls go through and
// consecutive failures are counted. After `failures` in a row it opens: the
// backend is skipped for `cooldown`. Then it is half-open: exactly one probe
// call goes through; its success closes the circuit, its failure opens it
// for another cool-down. This is the "disable after N failures, re-enable
// by itself" users of one-api/new-api keep asking for (docs/peers.md §2.5).
type breaker struct {
	failures int
	cooldown time.Duration
	// notify, when set, hears every transition (from, to), outside the lock.
	notify func(from, to string)

	mu       sync.Mutex
	fails    int // consecutive failures while closed
	open     bool
	openedAt time.Time
	probing  bool // half-open and the probe is in flight
	pending  [][2]string
}

func newBreaker(failures int, cooldown time.Duration) *breaker {
	return &breaker{failures: failures, cooldown: cooldown}
}

// available reports, without changing state, whether a call may be tried
// now; the planner uses it to order candidates.
func (b *breaker) available(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.open || (!b.probing && now.Sub(b.openedAt) >= b.cooldown)
}

// acquire admits one call. A half-open breaker admits only the probe; the
// caller must report the outcome with success, failure or release.
func (b *breaker) acquire(now time.Time) bool {
	defer b.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return true
	}
	if b.probing || now.Sub(b.openedAt) < b.cooldown {
		return false
	}
	b.probing = true
	b.tell("open", "half-open")
	return true
}

// tell records a transition while b.mu is held; flush delivers it after
// the unlock, so a listener that logs or reads the state cannot deadlock.
func (b *breaker) tell(from, to string) {
	if b.notify != nil {
		b.pending = append(b.pending, [2]string{from, to})
	}
}

// flush delivers the transitions recorded under the lock.
func (b *breaker) flush() {
	if b.notify == nil {
		return
	}
	b.mu.Lock()
	p := b.pending
	b.pending = nil
	b.mu.Unlock()
	for _, t := range p {
		b.notify(t[0], t[1])
	}
}

// success records a healthy answer (including a client error such as 1214:
// the backend answered properly).
func (b *breaker) success() {
	b.mu.Lock()
	if b.open {
		from := "open"
		if b.probing {
			from = "half-open"
		}
		b.tell(from, "closed")
	}
	b.fails, b.open, b.probing = 0, false, false
	b.mu.Unlock()
	b.flush()
}

// failure records a backend failure at now.
func (b *breaker) failure(now time.Time) {
	defer b.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		// A failed probe (or a late failure of a call admitted before the
		// circuit opened) restarts the cool-down.
		if b.probing {
			b.tell("half-open", "open")
		}
		b.probing = false
		b.openedAt = now
		return
	}
	b.fails++
	if b.fails >= b.failures {
		b.open, b.openedAt, b.probing = true, now, false
		b.tell("closed", "open")
	}
}

// release ends an admitted call that says nothing about the backend's
// health (the client went away).
func (b *breaker) release() {
	b.mu.Lock()
	b.probing = false
	b.mu.Unlock()
}

// state names the breaker's state for logs and tests.
func (b *breaker) state(now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case !b.open:
		return "closed"
	case b.probing || now.Sub(b.openedAt) >= b.cooldown:
		return "half-open"
	}
	return "open"
}
