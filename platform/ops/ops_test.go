package ops

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "http://x"+path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestHealthAndMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "ops_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	var down error
	h := New(Options{Metrics: reg, Health: func(context.Context) error { return down }})

	if code, body := get(t, h, HealthPath); code != 200 || body != `{"status":"ok"}` {
		t.Fatalf("healthz: got %d %s, want 200 ok", code, body)
	}
	if code, body := get(t, h, MetricsPath); code != 200 || !strings.Contains(body, "ops_test_total 1") {
		t.Fatalf("metrics: got %d %.200s, want the registry's series", code, body)
	}
	down = errors.New("dial tcp 10.0.0.7:5432: connection refused")
	code, body := get(t, h, HealthPath)
	if code != 500 || !strings.Contains(body, "not ready") || strings.Contains(body, "10.0.0.7") {
		t.Fatalf("healthz down: got %d %s, want 500 not ready without the cause", code, body)
	}
}

// Without a registry /metrics is not served: the public listener when
// metrics live on the admin one.
func TestHealthOnly(t *testing.T) {
	h := New(Options{})
	if code, _ := get(t, h, MetricsPath); code != http.StatusNotFound {
		t.Fatalf("metrics: got %d, want 404", code)
	}
	if got := h.Routes(); len(got) != 2 || got[0].Pattern != "GET "+HealthPath || got[1].Pattern != "GET "+ReadyPath {
		t.Fatalf("routes: got %v, want only the health and readiness checks", got)
	}
}

// /readyz answers 503 with a body naming what is down, 200 when all is up.
func TestReadyNamesWhatIsDown(t *testing.T) {
	checks := []Check{{Name: "database", OK: true}, {Name: "model glm-4", OK: true}}
	h := New(Options{Ready: func(context.Context) []Check { return checks }})
	if code, body := get(t, h, ReadyPath); code != 200 || !strings.Contains(body, `"status":"ready"`) {
		t.Fatalf("readyz: got %d %s, want 200 ready", code, body)
	}
	checks[1] = Check{Name: "model glm-4", Detail: "no backend up", Down: []string{"vllm-a", "vllm-b"}}
	code, body := get(t, h, ReadyPath)
	want := `{"status":"not ready","checks":[{"name":"database","ok":true},{"name":"model glm-4","ok":false,"detail":"no backend up","down":["vllm-a","vllm-b"]}]}`
	if code != http.StatusServiceUnavailable || body != want {
		t.Fatalf("readyz down: got %d %s, want 503 %s", code, body, want)
	}
}
