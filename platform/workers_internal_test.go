package platform

import (
	"testing"
	"time"
)

// A Poll doubles its wait after each tick up to PollBackOff × Base, and
// work found brings it back to Base (docs/design.md §6 "Idle wake-ups").
func TestPollBacksOffAndComesBack(t *testing.T) {
	p := NewPoll(time.Hour) // no tick fires during the test
	defer p.Stop()
	for i, want := range []time.Duration{2, 4, 8, 8} {
		p.backOff()
		if p.every != want*time.Hour {
			t.Fatalf("after %d empty ticks: wait %v, want %v", i+1, p.every, want*time.Hour)
		}
	}
	p.found()
	if p.every != time.Hour {
		t.Fatalf("after work was found: wait %v, want %v", p.every, time.Hour)
	}
}
