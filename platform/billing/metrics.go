package billing

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's series on /metrics: how long its usage writes
// and its lease transactions take and how they fail, so an operator sees
// where a metered request's time goes and which background step failed
// (docs/design.md §6 "Seeing the meter"). A nil *Metrics records nothing.
type Metrics struct {
	flush   prometheus.Histogram
	rows    prometheus.Counter
	pending prometheus.Gauge
	lease   *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "glm_billing_flush_seconds",
			Help:    "One write of waiting usage rows (with their request-log rows and lease totals) in one transaction.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "glm_billing_flush_rows_total",
			Help: "Usage rows written."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "glm_billing_pending_rows",
			Help: "Usage rows waiting for the writer after its last write (past --max-pending a request writes its own)."}),
		lease: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "glm_billing_lease_seconds",
			Help:    "A lease transaction a request waited for (its account's credit in memory ran short), by outcome: ok, short (not enough credit), error.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 12)}, []string{"outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_billing_errors_total",
			Help: "Billing failures by step: flush, maintain, return, prices, settle (extra credit at settlement), order (package order refresh)."}, []string{"step"}),
	}
	if reg != nil {
		reg.MustRegister(m.flush, m.rows, m.pending, m.lease, m.errors)
	}
	return m
}

// flushed records one usage write of rows rows that took d, and the rows
// still waiting after it.
func (m *Metrics) flushed(rows int, d time.Duration, waiting int) {
	if m == nil {
		return
	}
	m.flush.Observe(d.Seconds())
	m.rows.Add(float64(rows))
	m.pending.Set(float64(waiting))
}

// leased records a lease transaction on a request's path.
func (m *Metrics) leased(d time.Duration, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	switch {
	case errors.Is(err, errInsufficient):
		outcome = "short"
	case err != nil:
		outcome = "error"
	}
	m.lease.WithLabelValues(outcome).Observe(d.Seconds())
}

// failed counts a failure of a step (the caller logs it).
func (m *Metrics) failed(step string) {
	if m == nil {
		return
	}
	m.errors.WithLabelValues(step).Inc()
}
