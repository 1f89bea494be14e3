package billing

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/internal/promtest"
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
		return promtest.Count(t, m.lease.WithLabelValues(outcome).(prometheus.Histogram))
	}
	if ok, short, failed := lease("ok"), lease("short"), lease("error"); ok != 1 || short == 0 || failed != 0 {
		t.Errorf("lease transactions: got ok %d, short %d, error %d; want 1, at least 1, 0", ok, short, failed)
	}
	if got := promtest.Count(t, m.flush); got != 1 {
		t.Errorf("writes observed: got %d, want 1", got)
	}
	if got := promtest.Value(t, m.rows); got != 2 {
		t.Errorf("rows written: got %v, want 2 (the charged call's, the refused one's)", got)
	}
	if got := promtest.Value(t, m.pending); got != 0 {
		t.Errorf("rows waiting after the write: got %v, want 0", got)
	}
	for _, step := range []string{"flush", "maintain", "return", "prices", "settle", "order"} {
		if got := promtest.Value(t, m.errors.WithLabelValues(step)); got != 0 {
			t.Errorf("errors at %s: got %v, want 0", step, got)
		}
	}
}
