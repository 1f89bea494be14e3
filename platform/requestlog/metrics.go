package requestlog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the request-log writer's series on /metrics: how long its
// writes take and how often they fail (each failure also logs its cause
// and is retried). A nil *Metrics records nothing.
type Metrics struct {
	flush  prometheus.Histogram
	rows   prometheus.Counter
	errors prometheus.Counter
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "glm_request_log_flush_seconds",
			Help:    "One write of request-log rows (unmetered calls, failures; a charged call's row is written with its usage row).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12)}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "glm_request_log_rows_total",
			Help: "Request-log rows the writer stored."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "glm_request_log_errors_total",
			Help: "Failed request-log writes (each is retried until it succeeds)."}),
	}
	if reg != nil {
		reg.MustRegister(m.flush, m.rows, m.errors)
	}
	return m
}

func (m *Metrics) flushed(rows int, d time.Duration) {
	if m == nil {
		return
	}
	m.flush.Observe(d.Seconds())
	m.rows.Add(float64(rows))
}

func (m *Metrics) failed() {
	if m == nil {
		return
	}
	m.errors.Inc()
}
