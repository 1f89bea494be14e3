// Package promtest reads a Prometheus series' value in tests, without
// client_golang's testutil (and the modules it pulls in).
package promtest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value is a counter's or a gauge's value.
func Value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	out := read(t, m)
	return out.GetCounter().GetValue() + out.GetGauge().GetValue()
}

// Count is how many observations a histogram holds.
func Count(t testing.TB, h prometheus.Histogram) uint64 {
	t.Helper()
	return read(t, h).GetHistogram().GetSampleCount()
}

func read(t testing.TB, m prometheus.Metric) *dto.Metric {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	return &out
}
