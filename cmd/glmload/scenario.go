package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"
)

// SuiteReport is the -json output of a run with several scenarios.
type SuiteReport struct {
	Reports []Report `json:"scenarios"`
}

// defaultCapacityGap spaces the chunks of a capacity run's streams: slow
// enough that all of them are open at once, as streams from a model are.
// The default (16 chunks 2 s apart) keeps each stream open ~32 s, far
// longer than the few seconds thousands of dials take, so all of them are
// open at once; the table's "open" column shows how many were.
const defaultCapacityGap = 2 * time.Second

// scenarios are the loads one run measures, each on every target with the
// same processes: the flags' one load, or with -suite the standard set
// (docs/design.md §6); -capacity adds the stream-capacity load last.
func scenarios(o *options) []*options {
	var out []*options
	add := func(name string, conc int, stream bool, shape string, embed bool) {
		sc := *o
		sc.Scenario, sc.Conc, sc.Stream, sc.Shape, sc.Embed, sc.Capacity = name, conc, stream, shape, embed, 0
		out = append(out, &sc)
	}
	if o.Suite {
		for _, c := range []int{1, 16, 64} {
			add("sync c"+strconv.Itoa(c), c, false, "v4", false)
		}
		add("stream c64 v4", 64, true, "v4", false)
		add("stream c64 openai", 64, true, "openai", false)
		add("embeddings c16", 16, false, "v4", true)
	} else if o.Capacity == 0 {
		add("", o.Conc, o.Stream, o.Shape, o.Embed)
	}
	if o.Capacity > 0 {
		sc := *o
		sc.Scenario = fmt.Sprintf("stream capacity %d", o.Capacity)
		sc.Conc, sc.N, sc.Stream, sc.Embed, sc.Warmup = o.Capacity, o.Capacity, true, false, 0
		sc.DurS, sc.WarmupS = 0, 0
		if sc.Gap == 0 {
			sc.Gap = defaultCapacityGap
		}
		sc.GapUS = float64(sc.Gap.Microseconds())
		out = append(out, &sc)
	}
	return out
}

// resetHWM resets a process's peak RSS (VmHWM) so that a capacity phase
// reports its own peak, not one of an earlier load. Best effort: without
// the right, the peak since start is reported.
func resetHWM(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// printSuite prints every scenario's ratios to the baseline in one table.
func printSuite(w io.Writer, reps []Report) {
	fmt.Fprintf(w, "\nsummary: ratios to the baseline of the same round (medians over rounds)\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\ttarget\trps ×\tcpu/req ×\t+p99 µs\t+ttfb p99 µs\tpeak RSS ×\terrors\tadded p99 ×\tadded ttfb p99 ×\t")
	for _, rep := range reps {
		for _, s := range rep.Summary {
			if s.Target == tBaseline || s.Target == tUpstream {
				continue
			}
			ttfb, addedTTFB := "-", "-"
			if rep.Options.Stream {
				ttfb = fmt.Sprintf("%+.0f", s.AddedTTFBP99)
				addedTTFB = ratioOrDash(s.AddedTTFBP99Ratio)
			}
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%+.0f\t%s\t%.2f\t%d\t%s\t%s\t\n", rep.Options.Scenario, s.Target,
				s.RPSRatio, s.CPURatio, s.AddedP99, ttfb, s.RSSRatio, s.Errors, ratioOrDash(s.AddedP99Ratio), addedTTFB)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nadded p99 ×, added ttfb p99 ×: what the target adds over the upstream alone, as a multiple of what the\nbaseline proxy adds in the same round (needs the upstream target; - when not measured)\n")
}

// ratioOrDash prints a ratio, or "-" when it was not measured.
func ratioOrDash(x float64) string {
	if x == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", x)
}

// runScenario measures one load on every target: rounds of warm-up and
// measured phase, target order rotating each round.
func runScenario(ctx context.Context, o *options, targets []target, up *instantUpstream, progress func(string, ...any)) (Report, error) {
	if o.Capacity > 0 {
		// Thousands of streams held by the upstream target would measure
		// this process, not a floor: a capacity run measures the servers.
		targets = slices.DeleteFunc(slices.Clone(targets), func(t target) bool { return t.proc == nil })
	}
	up.openai.Store(o.Shape == "openai")
	up.gapNS.Store(int64(o.Gap))
	var body []byte
	var err error
	path := chatPath
	if o.Embed {
		path = embedPath
		body, err = json.Marshal(map[string]any{"model": o.EmbModel, "input": "Say hello in one short sentence."})
	} else {
		body, err = json.Marshal(map[string]any{
			"model":    o.Model,
			"messages": []any{map[string]string{"role": "user", "content": "Say hello in one short sentence."}},
			"stream":   o.Stream,
		})
	}
	if err != nil {
		return Report{}, err
	}
	spec := loadSpec{conc: o.Conc, dur: o.Dur, n: o.N, stream: o.Stream, body: body, path: path}
	warm := spec
	warm.dur, warm.n = o.Warmup, 0
	if o.Scenario != "" {
		progress("%s", o.Scenario)
	}

	// One client per target, kept over rounds: the warm-up opens the
	// connections the measured phases reuse.
	clients := map[string]*http.Client{}
	for _, t := range targets {
		clients[t.name] = newClient(o.Conc)
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	var results []Result
	for round := range o.Rounds {
		// Rotate the order each round so no target always runs first (cold
		// caches) or last (others' builds ramping up on a shared machine).
		for i := range targets {
			t := targets[(i+round)%len(targets)]
			c := clients[t.name]
			if o.Warmup > 0 {
				runLoad(ctx, c, t, warm)
			}
			if o.Capacity > 0 {
				resetHWM(t.proc.pid())
				spec.open = &gauge{}
			}
			r := measure(ctx, c, t, spec, round+1, up)
			if spec.open != nil {
				r.PeakOpen = spec.open.peak
				// A capacity phase leaves thousands of idle connections
				// (each a descriptor here, in the target and in the
				// upstream); kept, the next target's phase would run out
				// of descriptors in this process and measure that instead.
				c.CloseIdleConnections()
			}
			if err := ctx.Err(); err != nil {
				return Report{}, err
			}
			progress("round %d %-9s %7.0f rps  p50 %6.0fµs  p99 %6.0fµs  ok %d/%d  cpu: server %3.0f%%, client %3.0f%%  upstream conns %d  peak RSS %.1f MB",
				round+1, t.name, r.RPS, r.P50, r.P99, r.OK, r.Requests, r.CPUPct, r.ClientCPUPct, r.UpstreamConns, float64(r.HWMKB)/1024)
			results = append(results, r)
		}
	}
	return Report{Options: o, Rounds: results, Summary: summarizeAll(targets, results)}, nil
}

// measure runs one measured phase while sampling the server process; the
// upstream target has none of its own (it is this process).
func measure(ctx context.Context, c *http.Client, t target, spec loadSpec, round int, up *instantUpstream) Result {
	if t.proc == nil {
		calls0, conns0 := up.calls.Load(), up.conns.Load()
		r := summarize(t.name, round, runLoad(ctx, c, t, spec))
		r.UpstreamCalls, r.UpstreamConns = up.calls.Load()-calls0, up.conns.Load()-conns0
		return r
	}
	pid := t.proc.pid()
	calls0, conns0 := up.calls.Load(), up.conns.Load()
	self0, _ := procCPU(os.Getpid())
	cpu0, _ := procCPU(pid)
	var rssMax int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		// 10 Hz is enough for RSS, which moves slowly, and costs nothing
		// the targets would notice.
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := procStatus(pid); err == nil {
				rssMax = max(rssMax, rss)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	p := runLoad(ctx, c, t, spec)
	close(stopSampling)
	<-sampled
	cpu1, _ := procCPU(pid)
	self1, _ := procCPU(os.Getpid())
	_, hwm, _ := procStatus(pid)

	r := summarize(t.name, round, p)
	r.UpstreamCalls = up.calls.Load() - calls0
	r.UpstreamConns = up.conns.Load() - conns0
	// The kernel updates VmHWM lazily (per-thread RSS counters are folded
	// in at intervals), so a VmRSS sample can exceed it; peak is the larger.
	r.RSSMaxKB, r.HWMKB = rssMax, max(hwm, rssMax)
	if cpu := cpu1 - cpu0; cpu > 0 {
		if p.ok > 0 {
			r.CPUPerReq = float64(cpu.Microseconds()) / float64(p.ok)
		}
		r.CPUPct = 100 * cpu.Seconds() / p.elapsed.Seconds()
	}
	r.ClientCPUPct = 100 * (self1 - self0).Seconds() / p.elapsed.Seconds()
	return r
}
