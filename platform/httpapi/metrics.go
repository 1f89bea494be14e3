package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
)

var (
	_ metered.Metrics      = (*Metrics)(nil)
	_ metered.UsageMetrics = (*Metrics)(nil)
	_ metered.EndMetrics   = (*Metrics)(nil)
)

// Metrics are the Prometheus series of the API, on their own registry;
// platform/ops serves the registry on /metrics.
type Metrics struct {
	Registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	tokenC    *prometheus.CounterVec
	upstreamE *prometheus.CounterVec
	inputCut  *prometheus.CounterVec
	usageCut  *prometheus.CounterVec
	streams   prometheus.Gauge
	// streamCuts counts streams that ended early, by reason (chat.go).
	streamCuts *prometheus.CounterVec
	// Per account and model, for every caller (metered.EndMetrics).
	acctTokens *prometheus.CounterVec
	acctCharge *prometheus.CounterVec

	// The series every request counts, kept once looked up: a vector's
	// lookup hashes and checks each label value under its lock, and a sync
	// chat made six of them (docs/design.md §6). A series is made when it
	// is first counted, as before.
	counters  labelCache[seriesKey, prometheus.Counter]
	latencies labelCache[string, prometheus.Observer]
}

// seriesKey is a counter's vector and its label values (n of them).
type seriesKey struct {
	vec    *prometheus.CounterVec
	n      int
	labels [4]string
}

// counter is k's series.
func (m *Metrics) counter(k seriesKey) prometheus.Counter {
	return m.counters.get(k, func() prometheus.Counter { return k.vec.WithLabelValues(k.labels[:k.n]...) })
}

// labelCache maps label values to the series made for them, once.
type labelCache[K comparable, S any] struct {
	mu sync.RWMutex
	m  map[K]S
}

func (c *labelCache[K, S]) get(k K, make func() S) S {
	c.mu.RLock()
	s, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[k]; ok {
		return s
	}
	if c.m == nil {
		c.m = map[K]S{}
	}
	s = make()
	c.m[k] = s
	return s
}

// NewMetrics registers the API's series plus the Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_requests_total",
			Help: "API requests by route, HTTP status and V4 error code (\"\" = success)."}, []string{"route", "status", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "glm_request_duration_seconds",
			Help:    "API request latency, to the end of the response (streams included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}}, []string{"route"}),
		tokenC: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_tokens_total",
			Help: "Tokens used, by model and kind (prompt, completion)."}, []string{"model", "kind"}),
		upstreamE: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_upstream_errors_total",
			Help: "Backend failures by V4 code."}, []string{"code"}),
		inputCut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_input_cut_total",
			Help: "Client-supplied request-log fields cut to their bound before storage, by field."}, []string{"field"}),
		usageCut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_usage_bounded_total",
			Help: "Backend usage reports beyond the model's context, billed at the bound, by model."}, []string{"model"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "glm_streams_in_flight",
			Help: "Chat streams being relayed."}),
		streamCuts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_streams_cut_total",
			Help: "Chat streams that ended early, by reason (client_gone, write_timeout, upstream_timeout, upstream_error, shutdown)."},
			[]string{"reason"}),
		acctTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_account_tokens_total",
			Help: "Tokens settled, by account, model, endpoint (async-task for tasks) and kind (prompt, completion)."},
			[]string{"account", "model", "endpoint", "kind"}),
		acctCharge: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_account_charge_micros_total",
			Help: "What calls were charged, in micros (1e-6 CNY), by account, model and endpoint."},
			[]string{"account", "model", "endpoint"}),
	}
	m.Registry.MustRegister(m.requests, m.latency, m.tokenC, m.upstreamE, m.inputCut, m.usageCut, m.streams, m.streamCuts,
		m.acctTokens, m.acctCharge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observe(row *platform.RequestLog, took time.Duration) {
	m.counter(seriesKey{vec: m.requests, n: 3, labels: [4]string{row.Endpoint, statusText(row.HTTPStatus), row.ErrorCode}}).Inc()
	m.latencies.get(row.Endpoint, func() prometheus.Observer { return m.latency.WithLabelValues(row.Endpoint) }).
		Observe(took.Seconds())
}

// statusText is the status label: strconv.Itoa without its allocation for
// the usual statuses.
func statusText(status int) string {
	switch status {
	case http.StatusOK:
		return "200"
	case 499:
		return "499"
	}
	return strconv.Itoa(status)
}

// Tokens implements metered.Metrics: tokens used, by model and kind.
func (m *Metrics) Tokens(model string, u platform.Usage) {
	if u.PromptTokens > 0 {
		m.counter(seriesKey{vec: m.tokenC, n: 2, labels: [4]string{model, "prompt"}}).Add(float64(u.PromptTokens))
	}
	if u.CompletionTokens > 0 {
		m.counter(seriesKey{vec: m.tokenC, n: 2, labels: [4]string{model, "completion"}}).Add(float64(u.CompletionTokens))
	}
}

// UpstreamError implements metered.Metrics: a backend failure by V4 code.
func (m *Metrics) UpstreamError(code string) {
	m.upstreamE.WithLabelValues(code).Inc()
}

// InputCut counts a client-supplied field cut before storage
// (requestlog.Options.OnCut).
func (m *Metrics) InputCut(field string) {
	m.inputCut.WithLabelValues(field).Inc()
}

// UsageBounded implements metered.UsageMetrics: a backend's usage report
// billed at the bound.
func (m *Metrics) UsageBounded(model string) {
	m.usageCut.WithLabelValues(model).Inc()
}

// Ended implements metered.EndMetrics: a settled call's tokens and charge
// by account and model, the same for a request and an async task.
func (m *Metrics) Ended(row platform.RequestLog) {
	if row.AccountID == "" {
		return // refused before authentication: nothing was used
	}
	if u := row.Usage.PromptTokens; u > 0 {
		m.counter(seriesKey{vec: m.acctTokens, n: 4, labels: [4]string{row.AccountID, row.Model, row.Endpoint, "prompt"}}).Add(float64(u))
	}
	if u := row.Usage.CompletionTokens; u > 0 {
		m.counter(seriesKey{vec: m.acctTokens, n: 4, labels: [4]string{row.AccountID, row.Model, row.Endpoint, "completion"}}).Add(float64(u))
	}
	if a := row.Charge.Amount; a > 0 {
		m.counter(seriesKey{vec: m.acctCharge, n: 3, labels: [4]string{row.AccountID, row.Model, row.Endpoint}}).Add(float64(a))
	}
}
