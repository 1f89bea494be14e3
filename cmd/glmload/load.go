package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// target is one thing measured: a URL, the Authorization it is sent and
// the process that serves it.
type target struct {
	name string
	base string // scheme and host; the load's path follows
	auth string
	proc *proc
}

// loadSpec is one measured phase.
type loadSpec struct {
	conc   int
	dur    time.Duration // used when n == 0
	n      int           // total requests, shared by the workers
	stream bool
	body   []byte
	path   string // chatPath or embedPath
	open   *gauge // streams whose headers have come and whose end has not (nil: not counted)
}

// gauge counts streams open at once and keeps the highest count.
type gauge struct {
	mu        sync.Mutex
	cur, peak int
}

func (g *gauge) add(d int) {
	g.mu.Lock()
	g.cur += d
	g.peak = max(g.peak, g.cur)
	g.mu.Unlock()
}

// sample is what one request left behind.
type sample struct {
	lat  time.Duration // until the last byte of the body
	ttfb time.Duration // until the first SSE event (streams only)
}

// phase is the raw outcome of one measured phase.
type phase struct {
	requests int
	ok       int
	errors   map[string]int
	elapsed  time.Duration
	samples  []sample // successful requests only
}

// newClient returns the load generator's own client: keep-alive with an
// idle pool larger than the worker count, so no measured request dials
// (dials would be the client's cost, not the target's), and no gzip.
func newClient(conc int) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConns:        2 * conc,
		MaxIdleConnsPerHost: 2 * conc,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// runLoad drives t with a closed loop of spec.conc workers: each sends its
// next request as soon as the previous one is fully read, which measures
// the most the target sustains at that concurrency (and latency at it).
func runLoad(ctx context.Context, client *http.Client, t target, spec loadSpec) phase {
	var (
		issued atomic.Int64
		mu     sync.Mutex
		all    phase
		wg     sync.WaitGroup
	)
	all.errors = map[string]int{}
	deadline := time.Now().Add(spec.dur)
	start := time.Now()
	for range spec.conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Per-worker buffers: no lock on the measured path.
			local := make([]sample, 0, 1024)
			errs := map[string]int{}
			n := 0
			for ctx.Err() == nil {
				if spec.n > 0 {
					if issued.Add(1) > int64(spec.n) {
						break
					}
				} else if !time.Now().Before(deadline) {
					break
				}
				n++
				s, kind := doRequest(ctx, client, t, spec)
				if kind != "" {
					errs[kind]++
					continue
				}
				local = append(local, s)
			}
			mu.Lock()
			all.requests += n
			all.ok += len(local)
			all.samples = append(all.samples, local...)
			for k, v := range errs {
				all.errors[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	all.elapsed = time.Since(start)
	return all
}

// doRequest sends one chat completion and reads the reply to the end. The
// error kind is "" on success, else the HTTP status, "net" or "bad-body".
func doRequest(ctx context.Context, client *http.Client, t target, spec loadSpec) (sample, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+spec.path, bytes.NewReader(spec.body))
	if err != nil {
		return sample{}, "build"
	}
	req.Header.Set("Content-Type", "application/json")
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	if spec.stream {
		req.Header.Set("Accept", "text/event-stream")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return sample{}, "cancelled"
		}
		return sample{}, "net"
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return sample{}, strconv.Itoa(resp.StatusCode)
	}
	if !spec.stream {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return sample{}, "net"
		}
		if !bytes.Contains(b, []byte(`"usage"`)) {
			return sample{}, "bad-body"
		}
		return sample{lat: time.Since(start)}, ""
	}
	if spec.open != nil {
		spec.open.add(1)
		defer spec.open.add(-1)
	}
	ttfb, err := readStream(resp.Body, start)
	switch {
	case errors.Is(err, errNoDone):
		return sample{}, "stream-cut"
	case errors.Is(err, errNoUsage):
		return sample{}, "stream-no-usage"
	case err != nil:
		return sample{}, "stream-read"
	}
	return sample{lat: time.Since(start), ttfb: ttfb}, ""
}

var (
	errNoDone  = errors.New("stream ended without data: [DONE]")
	errNoUsage = errors.New("stream without a usage chunk")
)

// readStream reads SSE events to the end, returning the time to the first
// data event; a stream must carry usage and end with [DONE] to count.
func readStream(body io.Reader, start time.Time) (time.Duration, error) {
	br := bufio.NewReaderSize(body, 16<<10)
	var ttfb time.Duration
	sawUsage := false
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data:")) {
			if ttfb == 0 {
				ttfb = time.Since(start)
			}
			d := bytes.TrimSpace(line[5:])
			if bytes.Equal(d, []byte("[DONE]")) {
				if !sawUsage {
					return 0, errNoUsage
				}
				io.Copy(io.Discard, br)
				return ttfb, nil
			}
			if bytes.Contains(d, []byte(`"usage"`)) {
				sawUsage = true
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long event: skip the rest of the line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil {
			if err == io.EOF {
				return 0, errNoDone
			}
			return 0, fmt.Errorf("read stream: %w", err)
		}
	}
}

// pct returns the q-quantile (0..1) of sorted durations, nearest rank.
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// summarize turns a phase into the figures of one target in one round.
func summarize(name string, round int, p phase) Result {
	r := Result{Target: name, Round: round, Requests: p.requests, OK: p.ok, Errors: p.errors,
		ElapsedS: p.elapsed.Seconds()}
	if p.elapsed > 0 {
		r.RPS = float64(p.ok) / p.elapsed.Seconds()
	}
	lat := make([]time.Duration, len(p.samples))
	ttfb := make([]time.Duration, 0, len(p.samples))
	for i, s := range p.samples {
		lat[i] = s.lat
		if s.ttfb > 0 {
			ttfb = append(ttfb, s.ttfb)
		}
	}
	slices.Sort(lat)
	slices.Sort(ttfb)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	r.P50, r.P90, r.P99 = us(pct(lat, .50)), us(pct(lat, .90)), us(pct(lat, .99))
	if len(lat) > 0 {
		r.Max = us(lat[len(lat)-1])
	}
	if len(ttfb) > 0 {
		r.TTFBP50, r.TTFBP99 = us(pct(ttfb, .50)), us(pct(ttfb, .99))
	}
	return r
}
