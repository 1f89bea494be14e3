package anthropic

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
)

// DefaultPrefix is where the Messages API lives, as on the Zhipu cloud
// (docs/anthropic.md §1): clients set ANTHROPIC_BASE_URL to
// http://HOST:PORT/api/anthropic and call …/v1/messages.
const DefaultPrefix = "/api/anthropic"

// Endpoints as recorded in the request log (docs/anthropic.md §8).
const (
	EndpointMessages    = "anthropic.messages"
	EndpointCountTokens = "anthropic.count_tokens"
	EndpointModels      = "anthropic.models"
)

// DefaultMaxBodyBytes bounds request bodies: images arrive as base64
// inside the JSON, and an agent's conversation with its tool results can
// be long.
const DefaultMaxBodyBytes = 16 << 20

// DefaultWriteTimeout bounds the write of one stream event (docs/design.md
// §3 "Every connection is bounded").
const DefaultWriteTimeout = 30 * time.Second

// Authenticator turns an Authorization header into the caller
// (platform/auth.Authenticator implements it); the x-api-key header is
// handed over as a bearer credential, since the keys are the same.
type Authenticator interface {
	Authenticate(ctx context.Context, header string) (platform.Principal, error)
}

// Calls starts the metered call of every request
// (platform/metered.Service implements it).
type Calls interface {
	Begin(c *metered.Call, id, endpoint string, start time.Time)
}

// Options wire the handler. Models, Auth and Calls are required.
type Options struct {
	Models *Models
	Auth   Authenticator
	Calls  Calls
	// Prefixes the routes are served under (default DefaultPrefix); each
	// gets /v1/messages, /v1/messages/count_tokens and /v1/models.
	Prefixes     []string
	MaxBodyBytes int64
	// WriteTimeout bounds each stream event's write (default
	// DefaultWriteTimeout; negative: none). The body's time is bounded by
	// the listener's conns.Guard.
	WriteTimeout time.Duration
	// Registerer receives the handler's series (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Server is the Messages API handler, mountable on a platform/mux root.
type Server struct {
	opts     Options
	models   *Models
	mux      *mux.Mux
	metrics  *metrics
	log      *slog.Logger
	now      func() time.Time
	started  string
	draining atomic.Bool
}

// New builds the handler.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if len(opts.Prefixes) == 0 {
		opts.Prefixes = []string{DefaultPrefix}
	}
	s := &Server{opts: opts, models: opts.Models, mux: mux.New(opts.Now), metrics: newMetrics(opts.Registerer),
		log: opts.Logger, now: opts.Now, started: opts.Now().UTC().Format(time.RFC3339)}
	for _, p := range opts.Prefixes {
		p = "/" + strings.Trim(p, "/")
		if p == "/" {
			p = ""
		}
		s.route("POST", p+"/v1/messages", EndpointMessages, s.handleMessages)
		s.route("POST", p+"/v1/messages/count_tokens", EndpointCountTokens, s.handleCountTokens)
		s.route("GET", p+"/v1/models", EndpointModels, s.handleModels)
	}
	return s
}

func (s *Server) route(method, pattern, endpoint string, h func(x *exchange)) {
	s.mux.HandleFunc(method+" "+pattern, func(w http.ResponseWriter, r *http.Request) {
		var x exchange
		s.begin(&x, w, r, endpoint)
		defer x.finish()
		defer x.recoverPanic()
		if !x.authenticate() {
			return
		}
		h(&x)
	})
}

// ServeHTTP serves the routes (alone, in tests; mounted, the root mux
// matches them).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Routes lists the patterns, for mounting (mux.Handler).
func (s *Server) Routes() []mux.Route { return s.mux.Routes() }

// SetDraining makes streams cut by the drain timeout end with an error
// event that says the server is shutting down.
func (s *Server) SetDraining() { s.draining.Store(true) }

// handleModels serves GET /v1/models: the mapped names and the served
// chat models (docs/anthropic.md §6).
func (s *Server) handleModels(x *exchange) {
	list := s.models.List(s.started)
	out := ModelList{Data: list}
	if len(list) > 0 {
		out.FirstID, out.LastID = &list[0].ID, &list[len(list)-1].ID
	} else {
		out.Data = []ModelInfo{}
	}
	x.writeJSON(http.StatusOK, out)
}

// metrics are the handler's own series; the metered call counts tokens
// and backend errors on the API's series like every other caller.
type metrics struct {
	requests *prometheus.CounterVec
	cuts     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_anthropic_requests_total",
			Help: "Anthropic Messages API requests by endpoint, HTTP status and V4 error code (\"\" = success)."},
			[]string{"endpoint", "status", "code"}),
		cuts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_anthropic_streams_cut_total",
			Help: "Anthropic message streams that ended early, by reason."}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.cuts)
	}
	return m
}
