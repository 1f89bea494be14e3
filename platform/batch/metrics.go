package batch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the batch workers' series on /metrics.
type Metrics struct {
	lines      *prometheus.CounterVec
	lineErrors *prometheus.CounterVec
	batches    *prometheus.CounterVec
	errors     *prometheus.CounterVec
}

// NewMetrics registers the series on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		lines: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_batch_lines_total",
			Help: "Batch lines by outcome: done, failed, requeued (a limit sent it back), recovered (its worker died)."}, []string{"outcome"}),
		lineErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_batch_line_errors_total",
			Help: "Batch lines that failed, by V4 code."}, []string{"code"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_batches_finished_total",
			Help: "Batches finished, by final status."}, []string{"status"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_batch_worker_errors_total",
			Help: "Batch worker failures by stage (claim, run, settle, finish, finalize, renew, recover, expire)."}, []string{"stage"}),
	}
	if reg != nil {
		reg.MustRegister(m.lines, m.lineErrors, m.batches, m.errors)
	}
	return m
}
