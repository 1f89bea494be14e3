// Package gcpace paces the garbage collector of a long-running server by
// how fast it allocates (docs/design.md §6 "GC pacing").
//
// Go's default pacing (GOGC=100) starts a collection once the heap has
// grown by its live size (plus goroutine stacks and globals). glm serve
// keeps a live heap of a few MB while a loaded server allocates tens of
// MB a second, so under load it collected some 45 times a second and
// spent more CPU on the collector than on metering. A Pacer lets the heap
// grow, between collections, by what the process allocates in
// Config.Interval, up to Config.MaxHeadroom: a busy process collects a
// few times a second, an idle one or one whose live heap is already large
// (thousands of held streams) is paced exactly as Go's default.
package gcpace

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Config says how far the heap may grow between collections.
type Config struct {
	// Interval is the time between collections the pacer aims for under
	// load: the heap may grow by what the process allocated in that time.
	Interval time.Duration
	// MaxHeadroom caps that growth in bytes (garbage held at most beyond
	// the live heap). 0 disables the pacer.
	MaxHeadroom uint64
}

// DefaultInterval keeps a loaded server at about two collections a second:
// each has a fixed cost (stacks, globals, the sweep) that 45 a second made
// a sixth of the CPU, and at two a second is noise.
const DefaultInterval = 500 * time.Millisecond

// basePercent is Go's default GOGC, the pacing the Pacer never goes below.
const basePercent = 100

// maxPercent bounds the GOGC the Pacer sets (a live heap of a few KB
// would otherwise ask for millions).
const maxPercent = 100_000

// Pacer adjusts GOGC after each collection. Its zero value is not usable;
// see Start.
type Pacer struct {
	cfg Config

	mu        sync.Mutex
	stopped   bool
	percent   int       // GOGC as last set
	allocs    uint64    // bytes allocated since start, at the last adjustment
	at        time.Time // when that was read
	samples   []metrics.Sample
	restoreTo int // GOGC before Start
}

// Start begins pacing the process's collector and returns the Pacer; Stop
// gives Go its pacing back. It returns nil (pacing left to Go) when
// cfg.MaxHeadroom is 0 or GOGC is set in the environment: an operator's
// GOGC wins. A memory limit (GOMEMLIMIT, debug.SetMemoryLimit) still
// bounds the heap: Go collects at whichever goal is lower. One Pacer per
// process: the collector is the process's.
func Start(cfg Config) *Pacer {
	if cfg.MaxHeadroom == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	p := &Pacer{cfg: cfg, percent: basePercent, samples: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/gc/scan/stack:bytes"},
		{Name: "/gc/scan/globals:bytes"},
	}}
	p.restoreTo = debug.SetGCPercent(basePercent)
	metrics.Read(p.samples)
	p.allocs, p.at = p.samples[0].Value.Uint64(), time.Now()
	p.arm()
	return p
}

// Stop ends the pacing and restores the GOGC the process had. Stop on a
// nil Pacer does nothing.
func (p *Pacer) Stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	debug.SetGCPercent(p.restoreTo)
}

// sentinel is garbage whose finalizer runs after the collection that found
// it: the hook that runs the Pacer once per cycle, with no goroutine or
// timer while the process is idle. It holds a pointer and is larger than
// the tiny allocator's blocks, so it is a heap object of its own (a
// finalizer on a tiny block may never run).
type sentinel struct {
	p   *Pacer
	pad [24]byte
}

func (p *Pacer) arm() {
	s := &sentinel{p: p}
	runtime.SetFinalizer(s, func(s *sentinel) { s.p.collected() })
}

// collected runs after a collection: it sets GOGC for the next one from
// the allocation rate since the last, and arms the next hook.
func (p *Pacer) collected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	metrics.Read(p.samples)
	now := time.Now()
	allocs := p.samples[0].Value.Uint64()
	base := p.samples[1].Value.Uint64() + p.samples[2].Value.Uint64() + p.samples[3].Value.Uint64()
	rate := 0.0
	if d := now.Sub(p.at).Seconds(); d > 0 && allocs >= p.allocs {
		rate = float64(allocs-p.allocs) / d
	}
	p.allocs, p.at = allocs, now
	if want := Percent(rate, base, p.cfg); want != p.percent {
		debug.SetGCPercent(want)
		p.percent = want
	}
	p.arm()
}

// Percent is the GOGC that lets a heap whose pacing base is base bytes
// (live heap, stacks and globals, as Go counts it) grow by rate ×
// Interval bytes before the next collection, that growth capped at
// MaxHeadroom, and never below Go's default. Coarse steps (a fifth of the
// value) keep GOGC from changing on every cycle for noise in the rate.
func Percent(rate float64, base uint64, cfg Config) int {
	headroom := math.Min(rate*cfg.Interval.Seconds(), float64(cfg.MaxHeadroom))
	p := headroom * 100 / float64(max(base, 1))
	if p <= basePercent {
		return basePercent
	}
	if p >= maxPercent {
		return maxPercent
	}
	// Round down to a step of 1.2×: at most ~20 % less headroom than asked.
	step := math.Pow(1.2, math.Floor(math.Log(p/basePercent)/math.Log(1.2)))
	return int(basePercent * step)
}
