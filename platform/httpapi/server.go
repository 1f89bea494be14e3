// Package httpapi serves the V4 API of glm serve under /api/paas/v4: the
// routes, the auth middleware, body reading, request validation and the
// SSE relay. The metered part of each request (limits → reserve → backend →
// settle → request log) is platform/metered's call; this package adds what
// only HTTP knows (statuses, envelopes, a client that hangs up). The Server
// is a mountable handler (platform/mux): cmd/glm composes it with the admin
// API and the operational endpoints.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
)

// DefaultPrefix is where the V4 routes live (docs/v4.md §0).
const DefaultPrefix = "/api/paas/v4"

// DefaultMaxBodyBytes bounds request bodies: GLM-4V images arrive as
// base64 inside the JSON (≤5 MB each, docs/v4.md §3), so 16 MiB leaves room for
// a few of them.
const DefaultMaxBodyBytes = 16 << 20

// DefaultWriteTimeout bounds the write of one stream event to a client:
// one that reads nothing for this long is cut (docs/design.md §3 "Every
// connection is bounded").
const DefaultWriteTimeout = 30 * time.Second

// Authenticator turns an Authorization header into the caller
// (platform/auth.Authenticator implements it).
type Authenticator interface {
	// Authenticate answers a *platform.Error with 1001–1004 on failure.
	Authenticate(ctx context.Context, header string) (platform.Principal, error)
}

// Tasks is the async task queue (platform/tasks.Pool implements it).
type Tasks interface {
	// Submit stores a queued task and wakes a worker.
	Submit(ctx context.Context, t platform.Task) error
	// Get returns the account's task; another account's is ErrNotFound.
	Get(ctx context.Context, accountID, id string) (platform.Task, error)
}

// Calls starts the metered call of every API request: it runs limits,
// reservation, the backend, settlement and the request-log row
// (platform/metered.Service implements it). Requests that call no model
// go through it too, for their row.
type Calls interface {
	Begin(c *metered.Call, id, endpoint string, start time.Time)
}

// Options wire the API to the rest of the platform. Catalogue, Auth,
// Tasks and Calls are required; the rest have defaults.
type Options struct {
	// Catalogue resolves and lists the served models (platform/router).
	Catalogue platform.Catalogue
	// Prices, when set, puts each model's list price into GET /models.
	Prices platform.PriceLister
	Auth   Authenticator
	Tasks  Tasks
	Calls  Calls
	// Files and Batches, when set, serve the Files and Batch APIs
	// (docs/v4.md §12); BatchWaker hears of each new batch.
	Files      Files
	Batches    Batches
	BatchWaker BatchWaker
	// Metrics are the API's series (platform/ops serves them); give the
	// metered service the same value so its token and backend-error counts
	// appear there too.
	Metrics *Metrics
	// Prefixes the V4 routes are served under (default DefaultPrefix);
	// docs/v4.md §8.2 asks for a user-chosen prefix too.
	Prefixes     []string
	MaxBodyBytes int64
	// WriteTimeout bounds the write of each stream event (default
	// DefaultWriteTimeout; negative: none). The time a request body may
	// take is not bounded here but by the listener's conns.Guard, which
	// every listener serving this handler must have.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Server is the V4 HTTP API.
type Server struct {
	opts      Options
	catalogue platform.Catalogue
	calls     Calls
	metrics   *Metrics
	log       *slog.Logger
	now       func() time.Time
	mux       *mux.Mux
	draining  atomic.Bool
	started   int64
}

// New builds the API handler.
func New(opts Options) *Server {
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics()
	}
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
	s := &Server{opts: opts, catalogue: opts.Catalogue, calls: opts.Calls, metrics: opts.Metrics, log: opts.Logger,
		now: opts.Now, mux: mux.New(opts.Now), started: opts.Now().Unix()}
	for _, p := range opts.Prefixes {
		p = "/" + strings.Trim(p, "/")
		if p == "/" {
			p = ""
		}
		s.route("POST", p+"/chat/completions", platform.EndpointChat, s.handleChat)
		s.route("POST", p+"/async/chat/completions", platform.EndpointAsyncSubmit, s.handleAsyncSubmit)
		s.route("GET", p+"/async-result/{id}", platform.EndpointAsyncResult, s.handleAsyncResult)
		s.route("POST", p+"/embeddings", platform.EndpointEmbeddings, s.handleEmbeddings)
		s.route("POST", p+"/images/generations", platform.EndpointImages, s.handleImages)
		s.route("GET", p+"/models", platform.EndpointModels, s.handleModels)
		s.route("POST", p+"/tokenizer", platform.EndpointTokenizer, s.handleTokenizer)
		s.route("POST", p+"/rerank", platform.EndpointRerank, s.handleRerank)
		if opts.Files != nil {
			s.route("POST", p+"/files", platform.EndpointFiles, s.handleFileCreate)
			s.route("GET", p+"/files", platform.EndpointFiles, s.handleFileList)
			s.route("GET", p+"/files/{id}", platform.EndpointFiles, s.handleFileGet)
			s.route("GET", p+"/files/{id}/content", platform.EndpointFiles, s.handleFileContent)
			s.route("DELETE", p+"/files/{id}", platform.EndpointFiles, s.handleFileDelete)
		}
		if opts.Batches != nil {
			s.route("POST", p+"/batches", platform.EndpointBatches, s.handleBatchCreate)
			s.route("GET", p+"/batches", platform.EndpointBatches, s.handleBatchList)
			s.route("GET", p+"/batches/{id}", platform.EndpointBatches, s.handleBatchGet)
			s.route("POST", p+"/batches/{id}/cancel", platform.EndpointBatches, s.handleBatchCancel)
		}
	}
	return s
}

// handler is an API route body: it runs after authentication with the
// exchange that records the request.
type handler func(x *exchange)

func (s *Server) route(method, pattern, endpoint string, h handler) {
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

// ServeHTTP serves the V4 routes. Alone (tests, embedding) it answers
// unknown paths and normalises paths itself; mounted on a root mux, the
// root does both before the request gets here.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Routes lists the V4 patterns, for mounting (mux.Handler).
func (s *Server) Routes() []mux.Route { return s.mux.Routes() }

// SetDraining makes new requests see a shutting-down server: streams cut
// by the drain timeout get an in-band error that says so.
func (s *Server) SetDraining() { s.draining.Store(true) }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }
