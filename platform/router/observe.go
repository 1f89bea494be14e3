package router

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/platform"
)

// What an operator sees of the backends (docs/design.md §9): one log line
// per failed attempt with its cause, one per circuit-breaker transition,
// and per-backend Prometheus series. A client only ever gets the V4 code;
// the cause is told here and in the request-log row.

// Error classes of a failed attempt, for the log line.
const (
	ClassTimeout     = "timeout"     // no reply within the backend's timeout
	ClassClientGone  = "client_gone" // the caller went away; says nothing about the backend
	ClassUnavailable = "unavailable" // connection refused, reset, 5xx, 429, cut stream
	ClassAnswer      = "answer"      // a proper refusal, e.g. 1214 or 1301
)

// errorClass sorts an attempt's failure for the operator.
func errorClass(ctx context.Context, err error) string {
	var pe *platform.Error
	switch {
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return ClassClientGone
	case errors.As(err, &pe) && pe.HTTP == http.StatusGatewayTimeout, errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case startRetryable(err):
		return ClassUnavailable
	}
	return ClassAnswer
}

// observer holds the router's log and metrics; the zero value logs
// nowhere and counts nothing.
type observer struct {
	log *slog.Logger
	m   *Metrics
}

// attemptFailed tells the operator one failed attempt.
func (o *observer) attemptFailed(ctx context.Context, t *target, model string, n int, err error, took time.Duration) {
	class := errorClass(ctx, err)
	code := platform.AsError(err).Code
	t.m.failed(time.Now(), class, code, err)
	if o.m != nil {
		o.m.errors.WithLabelValues(t.m.name, code).Inc()
	}
	if o.log == nil {
		return
	}
	level := slog.LevelWarn
	if class == ClassClientGone || class == ClassAnswer {
		level = slog.LevelDebug
	}
	o.log.Log(ctx, level, "upstream attempt failed", "backend", t.m.name, "model", model,
		"upstream_model", t.upstream, "attempt", n, "class", class, "code", code,
		"latency_ms", took.Milliseconds(), "err", err)
}

// streamFailed tells a failure after the first byte (never retried).
func (o *observer) streamFailed(ctx context.Context, m *member, err error) {
	code := platform.AsError(err).Code
	m.failed(time.Now(), errorClass(ctx, err), code, err)
	if o.m != nil {
		o.m.errors.WithLabelValues(m.name, code).Inc()
	}
	if o.log != nil {
		o.log.Warn("upstream stream failed after the first byte", "backend", m.name, "class", errorClass(ctx, err),
			"code", code, "err", err)
	}
}

// failed counts a failure of m and keeps it as the newest.
func (m *member) failed(at time.Time, class, code string, err error) {
	m.failures.Add(1)
	m.lastErr.Store(&BackendError{At: at, Class: class, Code: code, Cause: err.Error()})
}

// transition tells a breaker state change.
func (o *observer) transition(backend, from, to string) {
	if o.m != nil {
		o.m.transitions.WithLabelValues(backend, to).Inc()
	}
	if o.log == nil {
		return
	}
	level := slog.LevelInfo
	if to == "open" {
		level = slog.LevelWarn
	}
	o.log.Log(context.Background(), level, "circuit breaker", "backend", backend, "from", from, "to", to)
}

// Metrics are the per-backend series (label backend). NewMetrics
// registers them; pass them to New with WithMetrics.
type Metrics struct {
	requests    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	firstToken  *prometheus.HistogramVec
	inFlight    *prometheus.GaugeVec
	transitions *prometheus.CounterVec
	// state reads the routers' breakers at scrape time.
	state *stateCollector
}

// latencyBuckets are the seconds of the backend histograms: from a local
// engine's few milliseconds to a long stream's minutes.
func latencyBuckets() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
}

// NewMetrics registers the per-backend series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_backend_requests_total",
			Help: "Attempts sent to each backend (failover counts each try)."}, []string{"backend"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_backend_errors_total",
			Help: "Failed attempts by backend and V4 code."}, []string{"backend", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "glm_backend_request_duration_seconds",
			Help: "Backend call latency: a sync call to its reply, a stream to its end.", Buckets: latencyBuckets()}, []string{"backend"}),
		firstToken: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "glm_backend_time_to_first_token_seconds",
			Help: "Time from sending a stream to its first chunk, by backend.", Buckets: latencyBuckets()}, []string{"backend"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "glm_backend_in_flight",
			Help: "Calls in flight to each backend (streams until they end)."}, []string{"backend"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_backend_circuit_transitions_total",
			Help: "Circuit-breaker transitions by backend and new state (open, half-open, closed)."}, []string{"backend", "to"}),
		state: &stateCollector{desc: prometheus.NewDesc("glm_backend_circuit_state",
			"Circuit-breaker state by backend: 0 closed, 1 half-open, 2 open.", []string{"backend"}, nil)},
	}
	reg.MustRegister(m.requests, m.errors, m.latency, m.firstToken, m.inFlight, m.transitions, m.state)
	return m
}

// stateCollector reports the breaker state of the router it watches.
type stateCollector struct {
	desc *prometheus.Desc
	r    atomic.Pointer[Router]
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r.Load()
	if r == nil {
		return
	}
	for _, b := range r.Backends() {
		v := 0.0
		switch b.Circuit {
		case "half-open":
			v = 1
		case "open":
			v = 2
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, b.Name)
	}
}

// memberSeries are a backend's attempt series in one Metrics, looked up
// once: a vector's lookup hashes and checks the label under its lock,
// and every call made four (docs/design.md §6). The latency series is
// kept apart, made at the first call's end as before.
type memberSeries struct {
	m        *Metrics
	requests prometheus.Counter
	inFlight prometheus.Gauge
}

type memberLatency struct {
	m       *Metrics
	latency prometheus.Observer
}

func (o *observer) series(m *member) *memberSeries {
	s := m.series.Load()
	if s == nil || s.m != o.m {
		s = &memberSeries{m: o.m, requests: o.m.requests.WithLabelValues(m.name), inFlight: o.m.inFlight.WithLabelValues(m.name)}
		m.series.Store(s)
	}
	return s
}

// begin counts an attempt going out; done(took) ends it.
func (o *observer) begin(m *member) {
	m.inFlight.Add(1)
	m.attempts.Add(1)
	if o.m != nil {
		s := o.series(m)
		s.requests.Inc()
		s.inFlight.Inc()
	}
}

func (o *observer) done(m *member, took time.Duration) {
	m.inFlight.Add(-1)
	if o.m != nil {
		o.series(m).inFlight.Dec()
		l := m.latency.Load()
		if l == nil || l.m != o.m {
			l = &memberLatency{m: o.m, latency: o.m.latency.WithLabelValues(m.name)}
			m.latency.Store(l)
		}
		l.latency.Observe(took.Seconds())
	}
}

func (o *observer) firstChunk(m *member, took time.Duration) {
	if o.m != nil {
		o.m.firstToken.WithLabelValues(m.name).Observe(took.Seconds())
	}
}

// ModelHealth is whether a model has a backend to serve it now, for the
// readiness check: Down names its backends whose circuit is open.
type ModelHealth struct {
	Model string   `json:"model"`
	Ready bool     `json:"ready"`
	Down  []string `json:"down,omitempty"`
}

// Health reports every served model. A model is ready while one of its
// backends is not open (closed, or half-open and due a probe); a backend
// failing but below the breaker's threshold still counts as up, so one
// failed call does not take a replica out of its load balancer.
func (r *Router) Health() []ModelHealth {
	now := r.now()
	out := make([]ModelHealth, 0, len(r.list))
	for _, info := range r.list {
		h := ModelHealth{Model: info.ID}
		for _, t := range r.routes[info.ID].targets {
			if t.m.brk.state(now) == "open" {
				h.Down = append(h.Down, t.m.name)
			} else {
				h.Ready = true
			}
		}
		out = append(out, h)
	}
	return out
}
