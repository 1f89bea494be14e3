package router

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/upstream"
)

// Option configures New.
type Option func(*options)

type options struct {
	now          func() time.Time
	rnd          *rand.Rand
	getenv       func(string) string
	httpClient   *http.Client
	streamClient *http.Client // nil: httpClient
	streamIdle   time.Duration
	log          *slog.Logger
	metrics      *Metrics
}

// WithLogger sets where failed attempts and breaker transitions are told
// (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithMetrics sets the per-backend series (NewMetrics); one Metrics serves
// one Router.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithClock sets the clock of the circuit breakers (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRand sets the random source of weighted choice (tests use a seed).
func WithRand(r *rand.Rand) Option { return func(o *options) { o.rnd = r } }

// WithGetenv sets how api_key_env is resolved (default os.Getenv).
func WithGetenv(getenv func(string) string) Option { return func(o *options) { o.getenv = getenv } }

// WithHTTPClient sets the HTTP client of all backends, sync calls and
// streams (default: one shared upstream.NewHTTPClient() for sync calls and
// one upstream.NewStreamHTTPClient() for streams).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithStreamIdleTimeout cuts a backend stream that sends no byte for d
// after its first (default upstream.DefaultStreamIdle; negative: never).
func WithStreamIdleTimeout(d time.Duration) Option { return func(o *options) { o.streamIdle = d } }

// New builds the router for cfg. The builtin offline embedding backend is
// always added under its own name (platform.BuiltinEmbedModel), and under
// the aliases of cfg.Builtin that no configured backend serves: none
// unless the operator names them, so a name such as embedding-2 never
// silently means another model's vectors.
func New(ctx context.Context, cfg Config, opts ...Option) (*Router, error) {
	o := options{now: time.Now, getenv: os.Getenv}
	for _, f := range opts {
		f(&o)
	}
	if o.rnd == nil {
		o.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.httpClient == nil {
		// Streams get connections of their own, with a smaller write
		// buffer (upstream.NewStreamHTTPClient); a client the caller gives
		// serves both.
		o.httpClient = upstream.NewHTTPClient()
		o.streamClient = upstream.NewStreamHTTPClient()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	failures := cfg.CircuitBreaker.Failures
	if failures == 0 {
		failures = DefaultBreakerFailures
	}
	cooldown := time.Duration(cfg.CircuitBreaker.Cooldown)
	if cooldown == 0 {
		cooldown = DefaultBreakerCooldown
	}
	r := &Router{routes: map[string]*route{}, now: o.now, rnd: o.rnd, obs: observer{log: o.log, m: o.metrics}}
	if o.metrics != nil {
		o.metrics.state.r.Store(r)
	}
	for i := range cfg.Backends {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.addBackend(&cfg.Backends[i], &o, failures, cooldown); err != nil {
			return nil, err
		}
	}
	if err := r.addBuiltin(cfg.Builtin, failures, cooldown); err != nil {
		return nil, err
	}
	r.index()
	return r, nil
}

// addBackend builds one configured backend through its type's entry and
// adds a target for each model it serves.
func (r *Router) addBackend(bc *BackendConfig, o *options, failures int, cooldown time.Duration) error {
	key := bc.APIKey
	if bc.APIKeyEnv != "" {
		key = o.getenv(bc.APIKeyEnv)
		if key == "" {
			return fmt.Errorf("backend config: backend %q: environment variable %s is empty", bc.Name, bc.APIKeyEnv)
		}
	}
	typ, _ := upstream.LookupType(bc.Type) // Validate checked the type
	st := bc.settings(key, o.httpClient)
	st.StreamIdle = o.streamIdle
	st.StreamClient = o.streamClient
	be, err := typ.New(st)
	if err != nil {
		return fmt.Errorf("backend config: backend %q: %w", bc.Name, err)
	}
	m := r.addMember(be, time.Duration(bc.Timeout), bc.MaxConcurrency, failures, cooldown)
	models := bc.Models
	if len(models) == 0 && typ.DefaultModels != nil {
		for _, info := range typ.DefaultModels() {
			models = append(models, ModelConfig{Name: info.ID})
		}
	}
	weight := bc.Weight
	if weight == 0 {
		weight = 1
	}
	for _, mc := range models {
		info, err := mc.info()
		if err != nil {
			return fmt.Errorf("backend config: backend %q: model %q: %w", bc.Name, mc.Name, err)
		}
		if !platform.Serves(be, info.Kind) {
			return fmt.Errorf("backend config: backend %q: model %q: a %s backend cannot serve %s models",
				bc.Name, mc.Name, bc.Type, info.Kind)
		}
		up := mc.Upstream
		if up == "" {
			up = mc.Name
		}
		if err := r.addTarget(info, target{m: m, upstream: up, priority: bc.Priority, weight: weight, info: info}); err != nil {
			return fmt.Errorf("backend config: backend %q: %w", bc.Name, err)
		}
	}
	return nil
}

// addBuiltin adds the builtin embedding backend: its own model name
// always, the aliases only where no configured backend serves the name.
func (r *Router) addBuiltin(cfg BuiltinConfig, failures int, cooldown time.Duration) error {
	r.builtin = upstream.BuiltinModelInfo().ID
	bm := r.addMember(upstream.NewBuiltin(), 0, 0, failures, cooldown)
	binfo := upstream.BuiltinModelInfo()
	if err := r.addTarget(binfo, target{m: bm, upstream: binfo.ID, weight: 1, info: binfo}); err != nil {
		return err
	}
	var aliases []string
	if cfg.Aliases != nil {
		aliases = *cfg.Aliases
	}
	for _, a := range aliases {
		if _, taken := r.routes[a]; taken {
			continue
		}
		info := binfo
		info.ID = a
		// /models says what answers the alias (docs/design.md §9
		// "Embeddings with an identity").
		info.OwnedBy = AliasOwner(binfo.ID)
		if z, ok := platform.LookupZhipuModel(a); ok && z.Kind == platform.KindEmbedding {
			// Keep the V4 model's limits and sizes where the builtin model
			// can produce them (it can produce any of 256…2048).
			info.ContextTokens = z.ContextTokens
			info.Dimensions = z.Dimensions
		}
		if err := r.addTarget(info, target{m: bm, upstream: binfo.ID, weight: 1, info: info}); err != nil {
			return err
		}
	}
	return nil
}

// index settles each route's target order and catalogue entry, and the
// sorted model list.
func (r *Router) index() {
	for _, rt := range r.routes {
		sort.SliceStable(rt.targets, func(i, j int) bool { return rt.targets[i].priority > rt.targets[j].priority })
		// The catalogue entry is the first (highest-priority) backend's,
		// with the largest context any backend offers: the HTTP layer's
		// 1261 check then lets through what some backend can take, and the
		// router skips backends too small for the prompt.
		rt.info = rt.targets[0].info
		for _, t := range rt.targets {
			rt.info.ContextTokens = maxContext(rt.info.ContextTokens, t.info.ContextTokens)
		}
		r.list = append(r.list, rt.info)
	}
	sort.Slice(r.list, func(i, j int) bool { return r.list[i].ID < r.list[j].ID })
}

// maxContext treats 0 as unknown (unbounded).
func maxContext(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	return max(a, b)
}

func (r *Router) addMember(be platform.Backend, timeout time.Duration, maxConc, failures int, cooldown time.Duration) *member {
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	m := &member{name: be.Name(), timeout: timeout, brk: newBreaker(failures, cooldown)}
	m.brk.notify = func(from, to string) { r.obs.transition(m.name, from, to) }
	m.chat, _ = be.(platform.ChatBackend)
	m.embed, _ = be.(platform.EmbeddingBackend)
	m.images, _ = be.(platform.ImageBackend)
	m.tokens, _ = be.(platform.TokenizerBackend)
	m.rerank, _ = be.(platform.RerankBackend)
	if maxConc > 0 {
		m.sem = make(chan struct{}, maxConc)
	}
	r.members = append(r.members, m)
	return m
}

func (r *Router) addTarget(info platform.ModelInfo, t target) error {
	rt := r.routes[info.ID]
	if rt == nil {
		r.routes[info.ID] = &route{info: info, targets: []target{t}}
		return nil
	}
	if rt.info.Kind != info.Kind {
		return fmt.Errorf("model %q is %s here but %s on backend %q", info.ID, info.Kind, rt.info.Kind, rt.targets[0].m.name)
	}
	rt.targets = append(rt.targets, t)
	return nil
}

// AliasOwner is the owned_by of a model name served by another model: the
// /models entry of an alias names the model that really answers it.
func AliasOwner(real string) string { return "glmkit (alias of " + real + ")" }
