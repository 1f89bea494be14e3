package router

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// syncBuffer is a log sink safe for the router's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// families gathers reg by name.
func families(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fs {
		out[f.GetName()] = f
	}
	return out
}

// value is the counter or gauge of name whose label values are labels (in
// the series' label order); -1 when there is none.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	f := families(t, reg)[name]
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		for i, l := range m.GetLabel() {
			if l.GetValue() != labels[i] {
				continue next
			}
		}
		if c := m.GetCounter(); c != nil {
			return c.GetValue()
		}
		return m.GetGauge().GetValue()
	}
	return -1
}

// series counts the series of name.
func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	return len(families(t, reg)[name].GetMetric())
}

// A dead backend is told three ways: a log line per failed attempt with
// its cause, a breaker transition, and per-backend series.
func TestDeadBackendIsLoggedAndCounted(t *testing.T) {
	dead := zhipuaitest.NewServer()
	dead.Close()
	live := cloud(t)
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	r := newRouter(t, Config{Backends: []BackendConfig{zb("dead", dead, 10, 1), zb("live", live, 0, 1)},
		CircuitBreaker: BreakerConfig{Failures: 2, Cooldown: Duration(time.Minute)}},
		WithClock(clk.now), WithMetrics(m), WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	for i := range 2 {
		if _, _, err := r.Chat(context.Background(), chatReq("glm-4", "hi")); err != nil {
			t.Fatalf("call %d: got %v, want the live backend's answer", i, err)
		}
	}
	out := logs.String()
	for _, want := range []string{`msg="upstream attempt failed" backend=dead model=glm-4`, "attempt=1", "class=unavailable",
		"connection refused", `msg="circuit breaker" backend=dead from=closed to=open`} {
		if !strings.Contains(out, want) {
			t.Errorf("log: got\n%s\nwant a line with %q", out, want)
		}
	}
	if got := strings.Count(out, "upstream attempt failed"); got != 2 {
		t.Errorf("failed-attempt lines: got %d, want 2 (one per attempt)", got)
	}
	if got := value(t, reg, "glm_backend_errors_total", "dead", "1234"); got != 2 {
		t.Errorf("glm_backend_errors_total{backend=dead,code=1234}: got %v, want 2", got)
	}
	if got := value(t, reg, "glm_backend_requests_total", "live"); got != 2 {
		t.Errorf("glm_backend_requests_total{backend=live}: got %v, want 2", got)
	}
	if got := value(t, reg, "glm_backend_in_flight", "live"); got != 0 {
		t.Errorf("glm_backend_in_flight{backend=live} after the calls: got %v, want 0", got)
	}
	if n := series(t, reg, "glm_backend_request_duration_seconds"); n != 2 {
		t.Errorf("latency series: got %d, want one per backend (2)", n)
	}
	for backend, want := range map[string]float64{"dead": 2, "live": 0, "builtin": 0} {
		if got := value(t, reg, "glm_backend_circuit_state", backend); got != want {
			t.Errorf("glm_backend_circuit_state{backend=%s}: got %v, want %v", backend, got, want)
		}
	}

	// After the cool-down the probe fails: half-open, then open again.
	clk.add(2 * time.Minute)
	if _, _, err := r.Chat(context.Background(), chatReq("glm-4", "hi")); err != nil {
		t.Fatal(err)
	}
	out = logs.String()
	for _, want := range []string{"from=open to=half-open", "from=half-open to=open"} {
		if !strings.Contains(out, want) {
			t.Errorf("log: got\n%s\nwant a transition %q", out, want)
		}
	}
	if got := value(t, reg, "glm_backend_circuit_transitions_total", "dead", "open"); got != 2 {
		t.Errorf("transitions to open: got %v, want 2", got)
	}
}

// A stream's first chunk is timed per backend and its slot counted until
// it is closed.
func TestStreamTimedPerBackend(t *testing.T) {
	a := cloud(t)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 0, 1)}}, WithMetrics(m))
	s, err := r.ChatStream(context.Background(), chatReq("glm-4", "hi"))
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "glm_backend_in_flight", "a"); got != 1 {
		t.Errorf("in flight during the stream: got %v, want 1", got)
	}
	if got := r.Backends()[0].InFlight; got != 1 {
		t.Errorf("Backends().InFlight during the stream: got %d, want 1", got)
	}
	_ = s.Close()
	if got := value(t, reg, "glm_backend_in_flight", "a"); got != 0 {
		t.Errorf("in flight after Close: got %v, want 0", got)
	}
	if n := series(t, reg, "glm_backend_time_to_first_token_seconds"); n != 1 {
		t.Errorf("time-to-first-token series: got %d, want 1", n)
	}
}
