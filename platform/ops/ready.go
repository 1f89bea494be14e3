package ops

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/glmkit/glmkit/platform/envelope"
)

// ReadyPath is the readiness check: the process can serve (its database
// answers and every configured model has a backend that is not down).
// HealthPath stays the liveness check.
const ReadyPath = "/readyz"

// Check is one part of readiness: its name, whether it passes and, when
// not, what an operator needs to find it (which backends are down). A
// check never puts a raw cause here (it may name hosts or files): the
// cause goes to the log.
type Check struct {
	Name   string   `json:"name"`
	OK     bool     `json:"ok"`
	Detail string   `json:"detail,omitempty"`
	Down   []string `json:"down,omitempty"`
}

// readiness is the /readyz body.
type readiness struct {
	Status string  `json:"status"` // "ready" or "not ready"
	Checks []Check `json:"checks"`
}

func serveReady(ready func(ctx context.Context) []Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
		defer cancel()
		out := readiness{Status: "ready", Checks: ready(ctx)}
		status := http.StatusOK
		for _, c := range out.Checks {
			if !c.OK {
				out.Status, status = "not ready", http.StatusServiceUnavailable
			}
		}
		b, _ := json.Marshal(out)
		envelope.WriteJSON(w, status, b)
	}
}
