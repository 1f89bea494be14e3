// Command glmload measures what glm serve adds on the hot path (DESIGN §6).
//
// It starts an instant V4 upstream on loopback (the only stand-in: it sits
// where a model would answer), a bare httputil.ReverseProxy in front of it
// as the baseline, and glm serve (real SQLite store, a real key, real auth,
// validation and request log) in front of the same upstream, each server in
// its own process. Then, in rounds, it drives every target with the same
// closed-loop load and prints RPS, latency percentiles, time to first event
// (streams), server CPU per request and RSS — and each target as ratios and
// differences to the baseline of the same round, because absolute figures
// on a shared machine say little and ratios taken minutes apart say less.
//
//	go run ./cmd/glmload -c 32 -d 15s -rounds 3
//	go run ./cmd/glmload -c 32 -d 15s -rounds 3 -stream
//
// Targets: baseline, glm-key (raw "Bearer id.secret"), glm-jwt (the SDK's
// cached HS256 token), with -meter-args glm-meter (a second glm serve
// started with those extra flags, e.g. --metering=true), and upstream (the
// client straight to the instant upstream, no proxy: what a target adds
// over it is its own latency, so the proxy's added p99 and time to first
// event can be compared with glm's — docs/design.md §6).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/glmkit/glmkit/zhipuai"
)

// Target names.
const (
	tBaseline = "baseline"
	tKey      = "glm-key"
	tJWT      = "glm-jwt"
	tMeter    = "glm-meter"
	tUpstream = "upstream"
)

func main() {
	if os.Getenv(envRole) == roleProxy {
		runBaselineProxy()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "glmload:", err)
		}
		os.Exit(1)
	}
}

// options are the command-line flags.
type options struct {
	Conc       int           `json:"concurrency"`
	Dur        time.Duration `json:"-"`
	N          int           `json:"requests_per_phase,omitempty"`
	Warmup     time.Duration `json:"-"`
	Rounds     int           `json:"rounds"`
	Stream     bool          `json:"stream"`
	Chunks     int           `json:"chunks"`
	Gap        time.Duration `json:"-"`
	Targets    []string      `json:"targets"`
	Model      string        `json:"model"`
	GlmArgs    string        `json:"glm_args,omitempty"`
	MeterArgs  string        `json:"meter_args,omitempty"`
	MeterTopup string        `json:"meter_topup_cny,omitempty"`
	DurS       float64       `json:"duration_s"`
	WarmupS    float64       `json:"warmup_s"`
	GapUS      float64       `json:"chunk_gap_us"`
	// Scenario names the load in a -suite run ("sync c16", "stream c64 openai", …).
	Scenario string `json:"scenario,omitempty"`
	Shape    string `json:"shape,omitempty"`
	Embed    bool   `json:"embeddings,omitempty"`
	EmbModel string `json:"embedding_model,omitempty"`
	EmbDims  int    `json:"embedding_dims,omitempty"`
	Capacity int    `json:"capacity,omitempty"`
	Suite    bool   `json:"suite,omitempty"`

	glm       string
	json      bool
	keep      bool
	autoMeter bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("glmload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Conc, "c", 32, "concurrent workers (closed loop: each sends its next request when the last one is read)")
	fs.DurationVar(&o.Dur, "d", 10*time.Second, "measured duration per target per round")
	fs.IntVar(&o.N, "n", 0, "requests per target per round instead of -d")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured load before each measured phase")
	fs.IntVar(&o.Rounds, "rounds", 3, "rounds; every round measures every target, the summary takes medians")
	fs.BoolVar(&o.Stream, "stream", false, "SSE streams instead of sync chat completions")
	fs.IntVar(&o.Chunks, "chunks", 16, "content chunks per stream (plus the final usage chunk and [DONE])")
	fs.DurationVar(&o.Gap, "chunk-gap", 0, "delay between stream chunks at the upstream (0 = instant)")
	targets := fs.String("targets", "", "comma-separated targets: baseline, glm-key, glm-jwt, glm-meter, upstream (the instant upstream without a proxy) (default baseline,glm-key,glm-jwt, plus glm-meter when glm serve can meter)")
	fs.StringVar(&o.Model, "model", "glm-4", "model name sent and configured on the zhipu backend")
	fs.StringVar(&o.GlmArgs, "glm-args", "", "extra glm serve flags for glm-key/glm-jwt (default --metering=false when glm serve has that flag)")
	fs.StringVar(&o.MeterArgs, "meter-args", "", "extra glm serve flags for glm-meter (default --metering=true when glm serve has that flag)")
	fs.StringVar(&o.MeterTopup, "meter-topup", "100000", "CNY credited to the default account of glm-meter (glm topup) before load; empty skips")
	fs.StringVar(&o.glm, "glm", "", "glm binary (default: build cmd/glm of the current module)")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (databases, server stderr)")
	fs.StringVar(&o.Shape, "shape", "v4", "stream chunk shape at the upstream: v4 (role on every delta) or openai (role on the first delta only, finish_reason null)")
	fs.BoolVar(&o.Embed, "embeddings", false, "embeddings instead of chat completions")
	fs.StringVar(&o.EmbModel, "embedding-model", "embedding-2", "embedding model sent and configured on the zhipu backend")
	fs.IntVar(&o.EmbDims, "embedding-dims", 1024, "dimensions of the instant upstream's embedding vector (must be what the model answers: embedding-2 1024)")
	fs.IntVar(&o.Capacity, "capacity", 0, "stream capacity: hold N slow streams open at once (one each, -chunk-gap apart, default gap 2s) and report each process's peak RSS (VmHWM); with -suite, runs after the suite")
	fs.BoolVar(&o.Suite, "suite", false, "run the standard set in one go: sync c1/c16/c64, stream c64 in both shapes, embeddings c16 (-c, -stream, -shape, -embeddings ignored; default targets baseline,glm-key,glm-meter,upstream)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.Conc < 1:
		return nil, errors.New("-c must be at least 1")
	case o.N < 0 || (o.N == 0 && o.Dur <= 0):
		return nil, errors.New("need -d > 0 or -n > 0")
	case o.Rounds < 1:
		return nil, errors.New("-rounds must be at least 1")
	case o.Chunks < 0 || o.Warmup < 0 || o.Gap < 0 || o.Capacity < 0:
		return nil, errors.New("-chunks, -warmup, -chunk-gap and -capacity must not be negative")
	case o.Shape != "v4" && o.Shape != "openai":
		return nil, fmt.Errorf("-shape %q: want v4 or openai", o.Shape)
	case o.Embed && o.Stream:
		return nil, errors.New("-embeddings and -stream exclude each other")
	}
	if *targets == "" && o.Suite {
		*targets = strings.Join([]string{tBaseline, tKey, tMeter, tUpstream}, ",")
	}
	if *targets == "" {
		o.Targets = []string{tBaseline, tKey, tJWT}
		o.autoMeter = true // glm-meter joins once startTargets knows glm serve can meter
	} else {
		for _, t := range strings.Split(*targets, ",") {
			t = strings.TrimSpace(t)
			switch t {
			case tBaseline, tKey, tJWT, tMeter, tUpstream:
			default:
				return nil, fmt.Errorf("unknown target %q (baseline, glm-key, glm-jwt, glm-meter, upstream)", t)
			}
			if !slices.Contains(o.Targets, t) {
				o.Targets = append(o.Targets, t)
			}
		}
	}
	if !slices.Contains(o.Targets, tBaseline) {
		// Every figure is reported relative to the baseline of its round.
		o.Targets = append([]string{tBaseline}, o.Targets...)
	}
	o.DurS, o.WarmupS, o.GapUS = o.Dur.Seconds(), o.Warmup.Seconds(), float64(o.Gap.Microseconds())
	if o.N > 0 {
		o.DurS = 0
	}
	return o, nil
}

// Result is one target in one round. Times are in µs.
type Result struct {
	Target   string         `json:"target"`
	Round    int            `json:"round"`
	Requests int            `json:"requests"`
	OK       int            `json:"ok"`
	Errors   map[string]int `json:"errors,omitempty"`
	ElapsedS float64        `json:"elapsed_s"`
	RPS      float64        `json:"rps"`
	P50      float64        `json:"p50_us"`
	P90      float64        `json:"p90_us"`
	P99      float64        `json:"p99_us"`
	Max      float64        `json:"max_us"`
	TTFBP50  float64        `json:"ttfb_p50_us,omitempty"`
	TTFBP99  float64        `json:"ttfb_p99_us,omitempty"`
	// UpstreamCalls is how many chat calls reached the instant upstream
	// during the phase (equal to Requests when nothing was cut short).
	UpstreamCalls int64 `json:"upstream_calls"`
	// UpstreamConns is how many connections the target opened to the
	// upstream during the phase (0 to a few when it reuses them).
	UpstreamConns int64 `json:"upstream_conns"`
	// Server process: CPU per successful request during the measured
	// phase, highest VmRSS seen in it, and VmHWM (peak since start) after.
	CPUPerReq float64 `json:"cpu_us_per_req"`
	CPUPct    float64 `json:"cpu_pct"`
	RSSMaxKB  int64   `json:"rss_max_kb"`
	HWMKB     int64   `json:"hwm_kb"`
	// PeakOpen is the most streams open at once (capacity runs only).
	PeakOpen int `json:"peak_open_streams,omitempty"`
	// ClientCPUPct is this tool's own CPU (load generator and instant
	// upstream): near the core count, the client is the bottleneck and RPS
	// ratios understate the differences between targets.
	ClientCPUPct float64 `json:"client_cpu_pct"`
}

// Summary is one target over all rounds: medians, and the median of the
// per-round ratios/differences to the baseline of the same round.
type Summary struct {
	Target    string  `json:"target"`
	Requests  int     `json:"requests"`
	OK        int     `json:"ok"`
	Errors    int     `json:"errors"`
	RPS       float64 `json:"rps"`
	P50       float64 `json:"p50_us"`
	P90       float64 `json:"p90_us"`
	P99       float64 `json:"p99_us"`
	TTFBP50   float64 `json:"ttfb_p50_us,omitempty"`
	TTFBP99   float64 `json:"ttfb_p99_us,omitempty"`
	CPUPerReq float64 `json:"cpu_us_per_req"`
	HWMKB     int64   `json:"hwm_kb"`
	PeakOpen  int     `json:"peak_open_streams,omitempty"`
	// UpstreamConns is the total over rounds of connections opened to the
	// upstream while measured.
	UpstreamConns int64 `json:"upstream_conns"`

	RPSRatio     float64 `json:"rps_ratio"`
	AddedP50     float64 `json:"added_p50_us"`
	AddedP99     float64 `json:"added_p99_us"`
	AddedTTFBP50 float64 `json:"added_ttfb_p50_us,omitempty"`
	AddedTTFBP99 float64 `json:"added_ttfb_p99_us,omitempty"`
	CPURatio     float64 `json:"cpu_ratio"`
	RSSRatio     float64 `json:"rss_ratio"`

	// With the upstream target in the run: what this target adds over the
	// upstream alone (p99, time to first event p99), and that as a multiple
	// of what the baseline proxy adds in the same round (medians over
	// rounds; 0 when not measured).
	OverUpstreamP99     float64 `json:"over_upstream_p99_us,omitempty"`
	OverUpstreamTTFBP99 float64 `json:"over_upstream_ttfb_p99_us,omitempty"`
	AddedP99Ratio       float64 `json:"added_p99_ratio,omitempty"`
	AddedTTFBP99Ratio   float64 `json:"added_ttfb_p99_ratio,omitempty"`
}

// Report is the -json output.
type Report struct {
	Options *options  `json:"options"`
	Rounds  []Result  `json:"rounds"`
	Summary []Summary `json:"summary"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "glmload: "+format+"\n", a...) }

	dir, err := os.MkdirTemp("", "glmload-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	if o.keep {
		progress("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	up := newInstantUpstream(o.Model, o.EmbModel, o.Chunks, o.EmbDims, o.Gap)
	upURL, stopUp, err := startUpstream(ctx, up)
	if err != nil {
		return err
	}
	defer stopUp()

	targets, stopAll, err := startTargets(ctx, o, dir, upURL, progress)
	defer stopAll()
	if err != nil {
		return err
	}
	var reps []Report
	for _, sc := range scenarios(o) {
		rep, err := runScenario(ctx, sc, targets, up, progress)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if len(reps) == 1 {
			return enc.Encode(reps[0])
		}
		return enc.Encode(SuiteReport{Reports: reps})
	}
	for i, rep := range reps {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printTables(stdout, rep)
	}
	if len(reps) > 1 {
		printSuite(stdout, reps)
	}
	return nil
}

// startTargets starts the baseline and the glm serve processes the chosen
// targets need. stopAll is always safe to call.
func startTargets(ctx context.Context, o *options, dir, upURL string, progress func(string, ...any)) ([]target, func(), error) {
	var procs []*proc
	stopAll := func() {
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Go(p.stop)
		}
		wg.Wait()
	}
	base, err := startBaseline(ctx, dir, upURL)
	if err != nil {
		return nil, stopAll, err
	}
	procs = append(procs, base)
	byName := map[string]target{tBaseline: {name: tBaseline, base: base.base, proc: base}, tUpstream: {name: tUpstream, base: upURL}}

	needGlm := slices.Contains(o.Targets, tKey) || slices.Contains(o.Targets, tJWT)
	if needGlm || slices.Contains(o.Targets, tMeter) || o.autoMeter {
		bin := o.glm
		if bin == "" {
			progress("building cmd/glm")
			if bin, err = buildGlm(ctx, dir); err != nil {
				return nil, stopAll, err
			}
		}
		if err := resolveMetering(ctx, o, bin); err != nil {
			return nil, stopAll, err
		}
		if needGlm {
			// One server for both auth modes: they differ only in what
			// the client sends, and its RSS then covers both.
			g, err := startGlm(ctx, "glm", bin, dir, upURL, []string{o.Model, o.EmbModel}, strings.Fields(o.GlmArgs))
			if err != nil {
				return nil, stopAll, err
			}
			procs = append(procs, g)
			tok, err := zhipuai.GenerateToken(g.key, 24*time.Hour)
			if err != nil {
				return nil, stopAll, fmt.Errorf("sign JWT: %w", err)
			}
			byName[tKey] = target{name: tKey, base: g.base, auth: "Bearer " + g.key, proc: g}
			byName[tJWT] = target{name: tJWT, base: g.base, auth: "Bearer " + tok, proc: g}
		}
		if slices.Contains(o.Targets, tMeter) {
			m, err := startGlm(ctx, "glm-meter", bin, dir, upURL, []string{o.Model, o.EmbModel}, strings.Fields(o.MeterArgs))
			if err != nil {
				return nil, stopAll, err
			}
			procs = append(procs, m)
			if o.MeterTopup != "" {
				if err := topup(ctx, bin, filepath.Join(dir, "glm-meter"), o.MeterTopup); err != nil {
					return nil, stopAll, err
				}
			}
			byName[tMeter] = target{name: tMeter, base: m.base, auth: "Bearer " + m.key, proc: m}
		}
	}
	// Every target sends the same header size as glm-key, baseline included.
	if k, ok := byName[tKey]; ok {
		b := byName[tBaseline]
		b.auth = k.auth
		byName[tBaseline] = b
	}
	var ts []target
	for _, name := range o.Targets {
		ts = append(ts, byName[name])
	}
	return ts, stopAll, nil
}

// resolveMetering fills in the glm serve flags for metering off (glm-key,
// glm-jwt) and on (glm-meter) from what `glm serve --help` offers, so the
// tool keeps working on a server built before or after metering landed:
// glm-key/glm-jwt then measure the platform without money, and glm-meter
// adds exactly the metering on top.
func resolveMetering(ctx context.Context, o *options, bin string) error {
	out, err := exec.CommandContext(ctx, bin, "serve", "--help").CombinedOutput()
	if err != nil {
		return fmt.Errorf("glm serve --help: %w\n%s", err, out)
	}
	if strings.Contains(string(out), "--metering") {
		if o.GlmArgs == "" {
			o.GlmArgs = "--metering=false"
		}
		if o.MeterArgs == "" {
			o.MeterArgs = "--metering=true"
		}
	}
	if o.Capacity > 0 && strings.Contains(string(out), "--max-conns-per-ip") {
		// Every stream of a capacity run comes from loopback: one address.
		o.GlmArgs = strings.TrimSpace(o.GlmArgs + " --max-conns-per-ip=0")
		o.MeterArgs = strings.TrimSpace(o.MeterArgs + " --max-conns-per-ip=0")
	}
	if o.autoMeter && o.MeterArgs != "" && !slices.Contains(o.Targets, tMeter) {
		o.Targets = append(o.Targets, tMeter)
	}
	if slices.Contains(o.Targets, tMeter) && o.MeterArgs == "" {
		return errors.New("target glm-meter: this glm serve has no --metering flag; pass -meter-args with the flags that turn metering on")
	}
	return nil
}

// topup credits the default account so metered requests are paid for and
// the metered path is the one a paying customer takes, not a 1113 reject.
func topup(ctx context.Context, bin, dataDir, cny string) error {
	cmd := exec.CommandContext(ctx, bin, "topup", "--account", "default", "--cny", cny, "--data-dir", dataDir)
	cmd.Env = cleanEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("glm topup for glm-meter: %w\n%s", err, out)
	}
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// appendRatio appends added/baseAdded when the baseline added anything:
// a proxy faster than the upstream alone in a round (noise) has no ratio.
func appendRatio(xs []float64, added, baseAdded float64) []float64 {
	if baseAdded <= 0 {
		return xs
	}
	return append(xs, added/baseAdded)
}

func summarizeAll(targets []target, results []Result) []Summary {
	base, up := map[int]Result{}, map[int]Result{}
	for _, r := range results {
		switch r.Target {
		case tBaseline:
			base[r.Round] = r
		case tUpstream:
			up[r.Round] = r
		}
	}
	var out []Summary
	for _, t := range targets {
		s := Summary{Target: t.name}
		var rps, p50, p90, p99, tt50, tt99, cpu []float64
		var rpsR, aP50, aP99, aT50, aT99, cpuR []float64
		var oP99, oT99, oP99R, oT99R []float64
		for _, r := range results {
			if r.Target != t.name {
				continue
			}
			s.Requests += r.Requests
			s.OK += r.OK
			s.Errors += r.Requests - r.OK
			s.HWMKB = max(s.HWMKB, r.HWMKB)
			s.PeakOpen = max(s.PeakOpen, r.PeakOpen)
			s.UpstreamConns += r.UpstreamConns
			rps, p50, p90, p99 = append(rps, r.RPS), append(p50, r.P50), append(p90, r.P90), append(p99, r.P99)
			tt50, tt99, cpu = append(tt50, r.TTFBP50), append(tt99, r.TTFBP99), append(cpu, r.CPUPerReq)
			b := base[r.Round]
			if b.RPS > 0 {
				rpsR = append(rpsR, r.RPS/b.RPS)
			}
			aP50, aP99 = append(aP50, r.P50-b.P50), append(aP99, r.P99-b.P99)
			aT50, aT99 = append(aT50, r.TTFBP50-b.TTFBP50), append(aT99, r.TTFBP99-b.TTFBP99)
			if b.CPUPerReq > 0 {
				cpuR = append(cpuR, r.CPUPerReq/b.CPUPerReq)
			}
			if u, ok := up[r.Round]; ok && t.name != tUpstream {
				oP99, oT99 = append(oP99, r.P99-u.P99), append(oT99, r.TTFBP99-u.TTFBP99)
				oP99R = appendRatio(oP99R, r.P99-u.P99, b.P99-u.P99)
				oT99R = appendRatio(oT99R, r.TTFBP99-u.TTFBP99, b.TTFBP99-u.TTFBP99)
			}
		}
		s.RPS, s.P50, s.P90, s.P99 = median(rps), median(p50), median(p90), median(p99)
		s.TTFBP50, s.TTFBP99, s.CPUPerReq = median(tt50), median(tt99), median(cpu)
		s.RPSRatio, s.AddedP50, s.AddedP99 = median(rpsR), median(aP50), median(aP99)
		s.AddedTTFBP50, s.AddedTTFBP99, s.CPURatio = median(aT50), median(aT99), median(cpuR)
		s.OverUpstreamP99, s.OverUpstreamTTFBP99 = median(oP99), median(oT99)
		s.AddedP99Ratio, s.AddedTTFBP99Ratio = median(oP99R), median(oT99R)
		out = append(out, s)
	}
	var baseHWM int64
	for _, s := range out {
		if s.Target == tBaseline {
			baseHWM = s.HWMKB
		}
	}
	for i := range out {
		if baseHWM > 0 {
			out[i].RSSRatio = float64(out[i].HWMKB) / float64(baseHWM)
		}
	}
	return out
}

func printTables(w io.Writer, rep Report) {
	o := rep.Options
	mode := "sync"
	switch {
	case o.Capacity > 0:
		mode = fmt.Sprintf("stream capacity (%d streams held at once, %d chunks %s apart, %s shape)", o.Capacity, o.Chunks, o.Gap, o.Shape)
	case o.Stream:
		mode = fmt.Sprintf("stream (%d chunks + usage + [DONE], %s shape)", o.Chunks, o.Shape)
	case o.Embed:
		mode = fmt.Sprintf("embeddings (%s, %d floats)", o.EmbModel, o.EmbDims)
	}
	per := o.Dur.String()
	if o.N > 0 {
		per = fmt.Sprintf("%d requests", o.N)
	}
	fmt.Fprintf(w, "glmload: %s, model %s, c=%d, %s per target per round, warm-up %s, %d round(s); medians over rounds\n\n",
		mode, o.Model, o.Conc, per, o.Warmup, o.Rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "target\trps\tp50 µs\tp90 µs\tp99 µs\t"
	if o.Stream {
		head += "ttfb p50\tttfb p99\t"
	}
	if o.Capacity > 0 {
		head += "open at once\t"
	}
	fmt.Fprintln(tw, head+"cpu µs/req\tpeak RSS MB\tupstream conns\tok\terrors\t")
	for _, s := range rep.Summary {
		line := fmt.Sprintf("%s\t%.0f\t%.0f\t%.0f\t%.0f\t", s.Target, s.RPS, s.P50, s.P90, s.P99)
		if o.Stream {
			line += fmt.Sprintf("%.0f\t%.0f\t", s.TTFBP50, s.TTFBP99)
		}
		if o.Capacity > 0 {
			line += fmt.Sprintf("%d\t", s.PeakOpen)
		}
		fmt.Fprintf(tw, "%s%.0f\t%.1f\t%d\t%d\t%d\t\n", line, s.CPUPerReq, float64(s.HWMKB)/1024, s.UpstreamConns, s.OK, s.Errors)
	}
	tw.Flush()

	fmt.Fprintf(w, "\nvs baseline (median over rounds of the same-round ratio / difference)\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head = "target\trps ×\t+p50 µs\t+p99 µs\t"
	if o.Stream {
		head += "+ttfb p50\t+ttfb p99\t"
	}
	fmt.Fprintln(tw, head+"cpu/req ×\tRSS ×\t")
	for _, s := range rep.Summary {
		if s.Target == tBaseline {
			continue
		}
		line := fmt.Sprintf("%s\t%.2f\t%+.0f\t%+.0f\t", s.Target, s.RPSRatio, s.AddedP50, s.AddedP99)
		if o.Stream {
			line += fmt.Sprintf("%+.0f\t%+.0f\t", s.AddedTTFBP50, s.AddedTTFBP99)
		}
		if s.Target == tUpstream {
			fmt.Fprintf(tw, "%s-\t-\t\n", line) // no process of its own
			continue
		}
		fmt.Fprintf(tw, "%s%.2f\t%.2f\t\n", line, s.CPURatio, s.RSSRatio)
	}
	tw.Flush()
	printOverUpstream(w, rep)
	var errs []string
	for _, r := range rep.Rounds {
		for k, v := range r.Errors {
			errs = append(errs, fmt.Sprintf("round %d %s: %d × %s", r.Round, r.Target, v, k))
		}
	}
	if len(errs) > 0 {
		slices.Sort(errs)
		fmt.Fprintf(w, "\nerrors:\n  %s\n", strings.Join(errs, "\n  "))
	}
}

// printOverUpstream prints what each target adds over the upstream alone
// when the run measured it: the figures the p99 and time-to-first-event
// goals are stated in (docs/design.md §6).
func printOverUpstream(w io.Writer, rep Report) {
	measured := false
	for _, s := range rep.Summary {
		measured = measured || s.Target == tUpstream
	}
	if !measured || rep.Options.Capacity > 0 {
		return
	}
	fmt.Fprintf(w, "\nover the upstream alone (added µs, median over rounds; × = that over what the baseline adds in the same round)\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "target\t+p99 µs\tadded p99 ×\t"
	if rep.Options.Stream {
		head += "+ttfb p99 µs\tadded ttfb p99 ×\t"
	}
	fmt.Fprintln(tw, head)
	for _, s := range rep.Summary {
		if s.Target == tUpstream {
			continue
		}
		line := fmt.Sprintf("%s\t%+.0f\t%s\t", s.Target, s.OverUpstreamP99, ratioOrDash(s.AddedP99Ratio))
		if rep.Options.Stream {
			line += fmt.Sprintf("%+.0f\t%s\t", s.OverUpstreamTTFBP99, ratioOrDash(s.AddedTTFBP99Ratio))
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}
