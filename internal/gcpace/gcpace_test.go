package gcpace

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	cfg := Config{Interval: 500 * time.Millisecond, MaxHeadroom: 64 << 20}
	const mb = 1 << 20
	for _, c := range []struct {
		name     string
		rate     float64
		base     uint64
		min, max int // the step rounds down by at most a fifth
	}{
		{"idle", 0, 4 * mb, 100, 100},
		{"slow allocation", 2 * mb, 4 * mb, 100, 100},
		{"loaded, small live heap", 40 * mb, 4 * mb, 400, 500},
		{"capped by MaxHeadroom", 1000 * mb, 4 * mb, 1280, 1600},
		{"large live heap paced as Go's default", 1000 * mb, 400 * mb, 100, 100},
		{"no base", 40 * mb, 0, maxPercent, maxPercent},
	} {
		got := Percent(c.rate, c.base, cfg)
		if got < c.min || got > c.max {
			t.Errorf("%s: Percent(%.0f MB/s, %d MB) = %d, want in [%d, %d]", c.name, c.rate/mb, c.base/mb, got, c.min, c.max)
		}
	}
}

func TestPercentSteps(t *testing.T) {
	// Small changes of the rate keep the value: GOGC is not reset on every
	// cycle for noise.
	cfg := Config{Interval: time.Second, MaxHeadroom: 1 << 30}
	a := Percent(50<<20, 5<<20, cfg)
	b := Percent(51<<20, 5<<20, cfg)
	if a != b {
		t.Errorf("got %d then %d for a 2%% change of the rate, want one value", a, b)
	}
}

func gogc(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

var sink []byte

// TestPacerFollowsAllocation allocates fast and checks that the collector
// is let grow the heap (GOGC above Go's default), and that Stop restores
// the GOGC the process had.
func TestPacerFollowsAllocation(t *testing.T) {
	t.Setenv("GOGC", "") // an operator's GOGC would switch the pacer off
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	p := Start(Config{Interval: time.Second, MaxHeadroom: 256 << 20})
	if p == nil {
		t.Fatal("Start returned nil with MaxHeadroom set and no GOGC")
	}
	defer p.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for gogc(t) <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after 30 s of fast allocation, want above 100", gogc(t))
		}
		for range 1000 {
			sink = make([]byte, 8<<10)
		}
	}
	p.Stop()
	if got := gogc(t); got != 100 {
		t.Errorf("GOGC after Stop = %d, want 100 (what the process had)", got)
	}
	// Stopped, a collection leaves GOGC alone.
	debug.SetGCPercent(150)
	runtime.GC()
	runtime.GC()
	if got := gogc(t); got != 150 {
		t.Errorf("GOGC after a collection of a stopped pacer = %d, want 150", got)
	}
}

func TestStartLeavesAnOperatorsGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	if p := Start(Config{MaxHeadroom: 64 << 20}); p != nil {
		p.Stop()
		t.Fatal("Start paced the collector with GOGC set, want nil")
	}
	if p := Start(Config{}); p != nil {
		p.Stop()
		t.Fatal("Start paced the collector with MaxHeadroom 0, want nil")
	}
	var p *Pacer
	p.Stop() // a nil Pacer stops without panicking
}
