package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the baseline proxy child, as the
// real command does: startBaseline re-executes os.Executable().
func TestMain(m *testing.M) {
	if os.Getenv(envRole) == roleProxy {
		runBaselineProxy()
		return
	}
	os.Exit(m.Run())
}

// TestSmoke runs every target for a few hundred requests, sync and stream,
// and checks that the figures are sane and the counts add up. It asserts
// nothing about speed: timings on a shared machine are not test material.
func TestSmoke(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("RSS and CPU come from /proc")
	}
	if testing.Short() {
		t.Skip("builds cmd/glm and starts servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := buildGlm(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	for _, stream := range []bool{false, true} {
		name := "sync"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"-glm", bin, "-c", "4", "-n", "300", "-warmup", "100ms", "-rounds", "2", "-chunks", "4", "-json"}
			if stream {
				args = append(args, "-stream")
			}
			var out, errOut bytes.Buffer
			if err := run(ctx, args, &out, &errOut); err != nil {
				t.Fatalf("run: %v\n%s", err, errOut.String())
			}
			var rep Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("decode -json output: %v\n%s", err, out.String())
			}
			checkReport(t, rep, n, stream)
			t.Logf("targets %v, glm args %q, meter args %q", rep.Options.Targets, rep.Options.GlmArgs, rep.Options.MeterArgs)
		})
	}
}

func checkReport(t *testing.T, rep Report, n int, stream bool) {
	t.Helper()
	// glm-meter joins when the glm serve under test can meter.
	want := []string{tBaseline, tKey, tJWT}
	if rep.Options.MeterArgs != "" {
		want = append(want, tMeter)
	}
	if !slices.Equal(rep.Options.Targets, want) {
		t.Errorf("targets %v, want %v", rep.Options.Targets, want)
	}
	if len(rep.Rounds) != 2*len(want) {
		t.Fatalf("got %d results, want %d (2 rounds × %v)", len(rep.Rounds), 2*len(want), want)
	}
	for _, r := range rep.Rounds {
		errs := 0
		for kind, c := range r.Errors {
			errs += c
			// The bare ReverseProxy forwards the inbound body as is and
			// so cuts a share of streams (golang/go#40747); that is the
			// baseline's known flaw, not the tool's. glm serve must not.
			if !(stream && r.Target == tBaseline && kind == "stream-read") {
				t.Errorf("round %d %s: %d × %s", r.Round, r.Target, c, kind)
			}
		}
		if r.Requests != n || r.OK+errs != r.Requests {
			t.Errorf("round %d %s: requests %d, ok %d, errors %d; want %d = ok + errors", r.Round, r.Target, r.Requests, r.OK, errs, n)
		}
		if r.UpstreamCalls != int64(r.Requests) {
			t.Errorf("round %d %s: %d upstream calls for %d requests", r.Round, r.Target, r.UpstreamCalls, r.Requests)
		}
		if !(r.RPS > 0 && r.P50 > 0 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
			t.Errorf("round %d %s: insane figures: rps %v p50 %v p90 %v p99 %v max %v", r.Round, r.Target, r.RPS, r.P50, r.P90, r.P99, r.Max)
		}
		if stream && !(r.TTFBP50 > 0 && r.TTFBP50 <= r.P50 && r.TTFBP50 <= r.TTFBP99) {
			t.Errorf("round %d %s: ttfb p50 %v p99 %v, latency p50 %v", r.Round, r.Target, r.TTFBP50, r.TTFBP99, r.P50)
		}
		if !stream && r.TTFBP50 != 0 {
			t.Errorf("round %d %s: ttfb %v on sync calls", r.Round, r.Target, r.TTFBP50)
		}
		if r.HWMKB <= 0 || r.RSSMaxKB <= 0 || r.RSSMaxKB > r.HWMKB {
			t.Errorf("round %d %s: rss max %d kB, hwm %d kB", r.Round, r.Target, r.RSSMaxKB, r.HWMKB)
		}
	}
	if len(rep.Summary) != len(want) {
		t.Fatalf("summary has %d targets, want %v", len(rep.Summary), want)
	}
	for i, s := range rep.Summary {
		if s.Target != want[i] {
			t.Errorf("summary[%d] = %s, want %s", i, s.Target, want[i])
		}
		if s.Requests != 2*n || s.OK+s.Errors != s.Requests {
			t.Errorf("%s: summary counts %d = %d ok + %d errors, want %d", s.Target, s.Requests, s.OK, s.Errors, 2*n)
		}
		if s.RPSRatio <= 0 || s.RSSRatio <= 0 {
			t.Errorf("%s: rps ratio %v, rss ratio %v", s.Target, s.RPSRatio, s.RSSRatio)
		}
	}
	if b := rep.Summary[0]; b.RPSRatio != 1 || b.AddedP50 != 0 || b.AddedP99 != 0 {
		t.Errorf("baseline against itself: ratio %v, +p50 %v, +p99 %v", b.RPSRatio, b.AddedP50, b.AddedP99)
	}
}

// TestTextOutput checks the table mode prints both tables.
func TestTextOutput(t *testing.T) {
	rep := Report{
		Options: &options{Conc: 2, Dur: time.Second, Rounds: 1, Stream: true, Chunks: 2, Model: "glm-4"},
		Rounds:  []Result{{Target: tKey, Round: 1, Requests: 3, OK: 2, Errors: map[string]int{"503": 1}}},
		Summary: []Summary{{Target: tBaseline, RPS: 10}, {Target: tKey, RPS: 9, RPSRatio: 0.9, AddedTTFBP99Ratio: 1.75},
			{Target: tUpstream, RPS: 20}},
	}
	var b bytes.Buffer
	printTables(&b, rep)
	for _, s := range []string{"ttfb p50", "vs baseline", "glm-key", "0.90", "1 × 503", "over the upstream alone", "1.75"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, b.String())
		}
	}
}

// TestSuiteAndCapacity runs the standard set and a small capacity phase
// in one go and checks every scenario ran on every target with sane
// counts. Nothing about speed is asserted.
func TestSuiteAndCapacity(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("RSS and CPU come from /proc")
	}
	if testing.Short() {
		t.Skip("builds cmd/glm and starts servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := buildGlm(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const n, streams = 40, 30
	args := []string{"-glm", bin, "-suite", "-n", "40", "-warmup", "0", "-rounds", "1", "-chunks", "2",
		"-capacity", "30", "-chunk-gap", "200ms", "-json"}
	var out, errOut bytes.Buffer
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	var rep SuiteReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode -json output: %v\n%s", err, out.String())
	}
	var names []string
	for _, sc := range rep.Reports {
		names = append(names, sc.Options.Scenario)
	}
	want := []string{"sync c1", "sync c16", "sync c64", "stream c64 v4", "stream c64 openai", "embeddings c16", "stream capacity 30"}
	if !slices.Equal(names, want) {
		t.Fatalf("got scenarios %q, want %q", names, want)
	}
	for _, sc := range rep.Reports {
		o := sc.Options
		if !slices.Contains(o.Targets, tKey) || !slices.Contains(o.Targets, tBaseline) {
			t.Errorf("%s: got targets %v, want baseline and glm-key at least", o.Scenario, o.Targets)
		}
		// The upstream alone is measured in every load but the capacity
		// one, and each target's added time is taken over it.
		upstreamRan := slices.ContainsFunc(sc.Rounds, func(r Result) bool { return r.Target == tUpstream })
		if got, want := upstreamRan, o.Capacity == 0; got != want {
			t.Errorf("%s: upstream target measured %v, want %v", o.Scenario, got, want)
		}
		for _, s := range sc.Summary {
			if o.Stream && o.Capacity == 0 && s.Target == tKey && s.OverUpstreamTTFBP99 == 0 {
				t.Errorf("%s: glm-key's ttfb p99 over the upstream not taken", o.Scenario)
			}
		}
		want := n
		if o.Capacity > 0 {
			want = streams
		}
		for _, r := range sc.Rounds {
			errs := 0
			for kind, c := range r.Errors {
				errs += c
				if r.Target != tBaseline || kind != "stream-read" && kind != "net" {
					t.Errorf("%s %s: got %d × %s, want none", o.Scenario, r.Target, c, kind)
				}
			}
			if r.Requests != want || r.OK+errs != want || r.UpstreamCalls != int64(want) {
				t.Errorf("%s %s: got %d requests, %d ok, %d upstream calls; want %d", o.Scenario, r.Target, r.Requests, r.OK, r.UpstreamCalls, want)
			}
			if o.Capacity > 0 && (r.PeakOpen < 1 || r.PeakOpen > streams || r.HWMKB <= 0) {
				t.Errorf("%s %s: got %d streams open at once, peak RSS %d kB; want 1..%d and a peak", o.Scenario, r.Target, r.PeakOpen, r.HWMKB, streams)
			}
			if (o.Stream || o.Capacity > 0) != (r.TTFBP50 > 0) && r.OK > 0 {
				t.Errorf("%s %s: got ttfb %v on stream=%v", o.Scenario, r.Target, r.TTFBP50, o.Stream)
			}
		}
	}
	var text bytes.Buffer
	printSuite(&text, rep.Reports)
	if !strings.Contains(text.String(), "stream c64 openai") || !strings.Contains(text.String(), "embeddings c16") ||
		!strings.Contains(text.String(), "added ttfb p99 ×") {
		t.Errorf("summary table lacks scenarios:\n%s", text.String())
	}
}
