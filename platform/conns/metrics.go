package conns

import (
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the connection series; one value serves every listener
// (the listener label tells them apart).
type Metrics struct {
	open    *prometheus.GaugeVec
	refused *prometheus.CounterVec
	cut     *prometheus.CounterVec
}

// NewMetrics makes the series and registers them on reg (nil: kept
// unregistered, for tests and embedding).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "glm_conns_open",
			Help: "Client connections open, by listener."}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_conns_refused_total",
			Help: "Connections or requests refused with 429/1302 by a connection cap, by listener and reason."},
			[]string{"listener", "reason"}),
		cut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_conns_cut_total",
			Help: "Connections ended by a bound (header_timeout, idle_timeout, body_timeout, unread_body, shutdown), by listener and reason."},
			[]string{"listener", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.open, m.refused, m.cut)
	}
	return m
}

// Cut counts n connections ended for reason (e.g. ReasonShutdown).
func (m *Metrics) Cut(listener, reason string, n int) {
	m.cut.WithLabelValues(listener, reason).Add(float64(n))
}

// logEvery is the most often one reason is logged: a flood of refusals
// must not become a flood of log lines.
const logEvery = 5 * time.Second

// logLimiter logs one line per reason per logEvery; the next line says
// how many were left out.
type logLimiter struct {
	log *slog.Logger

	mu      sync.Mutex
	last    map[string]time.Time
	skipped map[string]int
}

func newLogLimiter(log *slog.Logger) *logLimiter {
	return &logLimiter{log: log, last: map[string]time.Time{}, skipped: map[string]int{}}
}

func (l *logLimiter) warn(reason, msg string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.last[reason]) < logEvery {
		l.skipped[reason]++
		l.mu.Unlock()
		return
	}
	l.last[reason] = now
	skipped := l.skipped[reason]
	l.skipped[reason] = 0
	l.mu.Unlock()
	if skipped > 0 {
		args = append(args, "more_since_last_line", skipped)
	}
	l.log.Warn(msg, args...)
}
