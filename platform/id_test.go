package platform

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// checkIDShape fails unless id has the documented shape (docs/v4.md §4):
// 30 characters, the UTC second of at, then 16 lowercase hex.
func checkIDShape(t *testing.T, id string, at time.Time) {
	t.Helper()
	if len(id) != 30 {
		t.Fatalf("NewID = %q: got %d characters, want 30", id, len(id))
	}
	if got, want := id[:14], at.UTC().Format("20060102150405"); got != want {
		t.Fatalf("NewID = %q: got time %s, want %s", id, got, want)
	}
	if strings.Trim(id[14:], "0123456789abcdef") != "" {
		t.Fatalf("NewID = %q: got %q after the time, want lowercase hex", id, id[14:])
	}
}

func TestNewIDShapeAndOrder(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 30, 45, 500_000_000, time.FixedZone("CST", 8*3600))
	prev := ""
	// One fixed now, as a test's clock gives: each id takes the next
	// tick, so they still sort in the order made, in now's second.
	for i := 0; i < 1000; i++ {
		id := NewID(at)
		checkIDShape(t, id, at)
		if id <= prev {
			t.Fatalf("id %d: got %q after %q, want it to sort after", i, id, prev)
		}
		prev = id
	}
	// A clock past the last tick: its own second, still in order.
	later := at.Add(3 * time.Second)
	id := NewID(later)
	checkIDShape(t, id, later)
	if id <= prev {
		t.Fatalf("later: got %q after %q, want it to sort after", id, prev)
	}
	// A clock stepped back more than a second: ids follow it again.
	earlier := at.Add(-time.Hour)
	checkIDShape(t, NewID(earlier), earlier)
	a, b := NewID(earlier), NewID(earlier)
	if b <= a {
		t.Fatalf("after the step back: got %q then %q, want ascending", a, b)
	}
}

func TestNewIDUniqueAndOrderedUnderConcurrency(t *testing.T) {
	const workers, each = 8, 5000
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				ids[w] = append(ids[w], NewID(time.Now()))
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for w, list := range ids {
		for i, id := range list {
			if seen[id] {
				t.Fatalf("got %q twice, want every id unique", id)
			}
			seen[id] = true
			// Made one after another by one goroutine: in order.
			if i > 0 && id <= list[i-1] {
				t.Fatalf("worker %d id %d: got %q after %q, want ascending", w, i, id, list[i-1])
			}
		}
	}
}

// TestNewIDRandomPart checks that the part after the tick is drawn per id:
// ids made at one tick by two processes (here: a clock reset between
// them) still differ.
func TestNewIDRandomPart(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	idClock.last.Store(0)
	a := NewID(at)
	idClock.last.Store(0) // as a second process would start
	b := NewID(at)
	if a[:19] != b[:19] {
		t.Fatalf("got ticks %q and %q, want the same tick", a[:19], b[:19])
	}
	if a == b {
		t.Fatalf("got %q twice, want the random part to differ", a)
	}
}
