package billing

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The engine's figures (docs/design.md §6 "Seeing the meter"): a lease
// transaction per account that had no credit in memory, by outcome; one
// observed write per flushed batch with its rows (a refusal has one too);
// nothing left waiting.
func TestMetricsCountLeasesAndWrites(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) { checkMetrics(t, newRig(t, dsn)) })
}

func checkMetrics(t *testing.T, r *rig) {
	r.topup("acct", "1")
	m := NewMetrics(nil)
	e := r.engine(Config{Metrics: m})
	res, err := reserve(t, e, "a", "glm-4", 100, 100)
	if err != nil {
		t.Fatal(err)
	}
	settle(t, e, res, 100, 100)
	// Far beyond 1 CNY: the lease transaction finds too little.
	if _, err := reserve(t, e, "b", "glm-4", 100_000_000, 100_000_000); err == nil {
		t.Fatal("reserve beyond the balance: got nil error, want a refusal")
	}
	if err := e.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	lease := func(outcome string) uint64 {
		return sampleCount(t, m.lease.WithLabelValues(outcome).(prometheus.Histogram))
	}
	if ok, short, failed := lease("ok"), lease("short"), lease("error"); ok != 1 || short == 0 || failed != 0 {
		t.Errorf("lease transactions: got ok %d, short %d, error %d; want 1, at least 1, 0", ok, short, failed)
	}
	if got := sampleCount(t, m.flush); got != 1 {
		t.Errorf("writes observed: got %d, want 1", got)
	}
	if got := metricValue(t, m.rows); got != 2 {
		t.Errorf("rows written: got %v, want 2 (the charged call's, the refused one's)", got)
	}
	if got := metricValue(t, m.pending); got != 0 {
		t.Errorf("rows waiting after the write: got %v, want 0", got)
	}
	for _, step := range []string{"flush", "maintain", "return", "prices", "settle", "order"} {
		if got := metricValue(t, m.errors.WithLabelValues(step)); got != 0 {
			t.Errorf("errors at %s: got %v, want 0", step, got)
		}
	}
}

func sampleCount(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	return written(t, h).GetHistogram().GetSampleCount()
}

// metricValue is a counter's or a gauge's value.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	out := written(t, m)
	return out.GetCounter().GetValue() + out.GetGauge().GetValue()
}

func written(t *testing.T, m prometheus.Metric) *dto.Metric {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	return &out
}
