// Package ops serves the operational endpoints of glm serve: GET /healthz
// (liveness: the process answers and its database pings), GET /readyz
// (readiness, with a JSON body naming what is down) and GET /metrics (the
// Prometheus exposition). They are a handler of their own so that cmd/glm
// can put them beside the public API or on the private admin listener.
package ops

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/mux"
)

// Paths of the operational endpoints.
const (
	HealthPath  = "/healthz"
	MetricsPath = "/metrics"
)

// healthTimeout bounds a readiness check: a probe that hangs is worse than
// one that says "not ready".
const healthTimeout = 2 * time.Second

// Options choose what the handler serves.
type Options struct {
	// Health reports liveness (e.g. a database ping); nil is always ok.
	Health func(ctx context.Context) error
	// Ready runs the readiness checks; nil serves /readyz as Health.
	Ready func(ctx context.Context) []Check
	// Metrics, when set, is served on /metrics; nil leaves /metrics out
	// (the public listener when metrics live on the admin one).
	Metrics prometheus.Gatherer
	// Now stamps request ids of the 404/405 answers (time.Now when nil).
	Now func() time.Time
}

// New returns the handler: /healthz, /readyz and, when configured, /metrics.
func New(o Options) *mux.Mux {
	h := mux.New(o.Now)
	h.HandleFunc("GET "+HealthPath, func(w http.ResponseWriter, r *http.Request) {
		if o.Health != nil {
			ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
			defer cancel()
			if err := o.Health(ctx); err != nil {
				// The cause stays in the server: it may name hosts or files.
				envelope.WriteError(w, "", platform.Wrap(platform.CodeInternal, "not ready", err))
				return
			}
		}
		envelope.WriteJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	ready := o.Ready
	if ready == nil {
		ready = func(ctx context.Context) []Check {
			if o.Health != nil && o.Health(ctx) != nil {
				return []Check{{Name: "health", Detail: "not ready"}}
			}
			return []Check{{Name: "health", OK: true}}
		}
	}
	h.HandleFunc("GET "+ReadyPath, serveReady(ready))
	if o.Metrics != nil {
		h.Handle("GET "+MetricsPath, promhttp.HandlerFor(o.Metrics, promhttp.HandlerOpts{}))
	}
	return h
}
