package console

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// BackendSource reports the backends' health for the operator's page:
// glm serve passes its router's state and per-backend counters
// (docs/design.md §9), so the page needs no metrics scrape.
type BackendSource interface {
	BackendHealth() []BackendHealth
}

// BackendHealth is one backend now.
type BackendHealth struct {
	Name string
	// Circuit is the breaker's state: "closed" (up), "open" or "half-open".
	Circuit  string
	InFlight int
	// Attempts and Failures count since the process started (failover
	// counts each try).
	Attempts, Failures int64
	// LastError is the newest failure's cause ("" when none), with its
	// class, V4 code and time.
	LastError, LastErrorClass, LastErrorCode string
	LastErrorAt                              time.Time
}

// rateWindow is the span request and error rates are measured over.
const rateWindow = time.Minute

// backendRow is a backend with its rates over the last rateWindow (or
// since the console started, when that is shorter).
type backendRow struct {
	BackendHealth
	// PerMin is attempts per minute; ErrorPct the share that failed.
	PerMin, ErrorPct string
	Over             string // the span the rates cover
}

// rateSampler keeps a few readings of each backend's counters, so a rate
// is a difference over time: one reading at least a second apart, the
// oldest kept being the newest one older than rateWindow.
type rateSampler struct {
	mu      sync.Mutex
	samples map[string][]sample
}

type sample struct {
	at                 time.Time
	attempts, failures int64
}

func newRateSampler() *rateSampler { return &rateSampler{samples: map[string][]sample{}} }

// observe adds the readings taken at now and returns each backend's rates.
func (s *rateSampler) observe(now time.Time, hs []BackendHealth) []backendRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]backendRow, 0, len(hs))
	for _, h := range hs {
		row := backendRow{BackendHealth: h, PerMin: "—", ErrorPct: "—"}
		ss := s.samples[h.Name]
		if len(ss) > 0 {
			base := ss[0]
			for _, x := range ss {
				if now.Sub(x.at) >= rateWindow {
					base = x
				}
			}
			if span := now.Sub(base.at); span >= time.Second {
				n, f := h.Attempts-base.attempts, h.Failures-base.failures
				row.PerMin = trimFloat(float64(n) / span.Minutes())
				row.Over = span.Round(time.Second).String()
				if n > 0 {
					row.ErrorPct = trimFloat(100*float64(f)/float64(n)) + "%"
				} else {
					row.ErrorPct = "0%"
				}
			}
		}
		if len(ss) == 0 || now.Sub(ss[len(ss)-1].at) >= time.Second {
			ss = append(ss, sample{at: now, attempts: h.Attempts, failures: h.Failures})
		}
		// Keep the newest reading older than the window and those after it.
		for len(ss) > 1 && now.Sub(ss[1].at) >= rateWindow {
			ss = ss[1:]
		}
		s.samples[h.Name] = ss
		out = append(out, row)
	}
	return out
}

func trimFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', 1, 64)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		return s[:len(s)-2]
	}
	return s
}

type backendsData struct {
	Rows []backendRow
	// Known is false when glm serve passed no backends (a console test).
	Known bool
	Live  string
}

func (c *Console) backendsData() *backendsData {
	d := &backendsData{Known: c.o.Backends != nil, Live: Prefix + "/admin/live/backends"}
	if d.Known {
		d.Rows = c.rates.observe(c.now(), c.o.Backends.BackendHealth())
	}
	return d
}

// adminBackends shows each backend's health, live: the table reloads
// itself every Refresh (data-live).
func (c *Console) adminBackends(q *req) error {
	c.render(q, http.StatusOK, "admin_backends.html", c.backendsData())
	return nil
}

func (c *Console) adminBackendsLive(q *req) error {
	return c.fragment(q, "admin_backends.html", "backends-table", c.backendsData())
}
