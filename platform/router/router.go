// Package router owns the choice of backend for each call: which backends
// serve a model (with aliases), in which order they are tried (priority,
// then weighted random), failover before the first byte, a circuit breaker
// and an optional concurrency cap per backend. The Router itself serves
// every capability (platform.ChatBackend, EmbeddingBackend, ImageBackend)
// and the model catalogue, so its callers use it like any backend.
package router

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/upstream"
	"github.com/glmkit/glmkit/zhipuai"
)

// member is one configured backend with its health and load state. The
// capabilities are asserted once, when the member is added; a target only
// points at a member whose capability its model's kind needs (New checks),
// so the call paths never meet a nil one.
type member struct {
	name    string
	chat    platform.ChatBackend
	embed   platform.EmbeddingBackend
	images  platform.ImageBackend
	tokens  platform.TokenizerBackend // nil: counts nothing exactly
	rerank  platform.RerankBackend
	timeout time.Duration
	sem     chan struct{} // nil = no concurrency cap
	brk     *breaker
	// inFlight counts calls out to the backend, capped or not.
	inFlight atomic.Int64
	// attempts and failures count since start what the per-backend
	// series count, and lastErr is the newest failure, so the console
	// shows rates and causes without a metrics scrape (docs/design.md §9).
	attempts, failures atomic.Int64
	lastErr            atomic.Pointer[BackendError]
	// The member's series, kept once looked up (observer.begin, done).
	series  atomic.Pointer[memberSeries]
	latency atomic.Pointer[memberLatency]
}

// BackendError is a backend's newest failed attempt: when, its class
// (ClassTimeout, …), V4 code and cause.
type BackendError struct {
	At    time.Time
	Class string
	Code  string
	Cause string
}

// target is one way to serve a model: a backend and its name for it.
type target struct {
	m        *member
	upstream string
	priority int
	weight   int
	info     platform.ModelInfo
}

// route is everything that serves one client-facing model name.
type route struct {
	info    platform.ModelInfo
	targets []target // by priority, highest first
}

// Router picks backends for calls; see the package comment.
type Router struct {
	routes  map[string]*route
	list    []platform.ModelInfo
	members []*member
	now     func() time.Time
	obs     observer
	// builtin is the builtin embedding model's own name: a reply it made
	// under an alias says so.
	builtin string

	mu  sync.Mutex // guards rnd
	rnd *rand.Rand
}

var (
	_ platform.ChatBackend      = (*Router)(nil)
	_ platform.EmbeddingBackend = (*Router)(nil)
	_ platform.ImageBackend     = (*Router)(nil)
	_ platform.Catalogue        = (*Router)(nil)
)

// Name implements platform.Backend.
func (r *Router) Name() string { return "router" }

// Model reports whether a model is served here, with its catalogue entry.
// Unknown models are the caller's 1211.
func (r *Router) Model(name string) (platform.ModelInfo, bool) {
	rt, ok := r.routes[name]
	if !ok {
		return platform.ModelInfo{}, false
	}
	info := rt.info
	info.Dimensions = append([]int(nil), info.Dimensions...)
	return info, true
}

// Models lists the served models, sorted by ID.
func (r *Router) Models() []platform.ModelInfo {
	out := make([]platform.ModelInfo, len(r.list))
	for i, m := range r.list {
		m.Dimensions = append([]int(nil), m.Dimensions...)
		out[i] = m
	}
	return out
}

// BackendState is the health of one backend, for the admin API and the
// console.
type BackendState struct {
	Name     string
	Circuit  string // "closed", "open" or "half-open"
	InFlight int    // calls out to the backend now (streams until they end)
	// Attempts and Failures count since start (failover counts each try).
	Attempts, Failures int64
	// LastError is the newest failure (nil: none since start).
	LastError *BackendError
}

// Backends reports every backend's circuit state.
func (r *Router) Backends() []BackendState {
	now := r.now()
	out := make([]BackendState, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, BackendState{Name: m.name, Circuit: m.brk.state(now), InFlight: int(m.inFlight.Load()),
			Attempts: m.attempts.Load(), Failures: m.failures.Load(), LastError: m.lastErr.Load()})
	}
	return out
}

// lookup finds the route of a model and checks it answers this kind of call.
func (r *Router) lookup(model string, kinds ...platform.ModelKind) (*route, error) {
	rt, ok := r.routes[model]
	if !ok {
		return nil, platform.Errorf(platform.CodeUnknownModel, "model %s does not exist", model)
	}
	for _, k := range kinds {
		if rt.info.Kind == k {
			return rt, nil
		}
	}
	return nil, platform.Errorf(platform.CodeUnsupportedMode, "model %s does not support this call (it is a %s model)", model, rt.info.Kind)
}

// plan orders the targets to try: priority groups from the highest; inside
// a group a weighted random order (sampling without replacement), so the
// first pick follows the weights and failover stays in the group before
// going down. Targets whose circuit is open are left out, and so are those
// whose known context is smaller than need tokens. The plan is appended to
// out.
func (r *Router) plan(rt *route, need int, out []*target) []*target {
	now := r.now()
	for i := 0; i < len(rt.targets); {
		j := i
		for j < len(rt.targets) && rt.targets[j].priority == rt.targets[i].priority {
			j++
		}
		group := len(out)
		for k := i; k < j; k++ {
			t := &rt.targets[k]
			if need > 0 && t.info.ContextTokens > 0 && t.info.ContextTokens < need {
				continue
			}
			if t.m.brk.available(now) {
				out = append(out, t)
			}
		}
		r.shuffleWeighted(out[group:])
		i = j
	}
	return out
}

// shuffleWeighted orders g by repeated weighted draws.
func (r *Router) shuffleWeighted(g []*target) []*target {
	if len(g) < 2 {
		return g
	}
	total := 0
	for _, t := range g {
		total += t.weight
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := 0; k < len(g)-1; k++ {
		x := r.rnd.IntN(total)
		for i := k; i < len(g); i++ {
			if x < g[i].weight {
				g[k], g[i] = g[i], g[k]
				break
			}
			x -= g[i].weight
		}
		total -= g[k].weight
	}
	return g
}

// acquire takes a concurrency slot and the breaker's admission.
func (r *Router) acquire(m *member) bool {
	if m.sem != nil {
		select {
		case m.sem <- struct{}{}:
		default:
			return false
		}
	}
	if !m.brk.acquire(r.now()) {
		if m.sem != nil {
			<-m.sem
		}
		return false
	}
	return true
}

// finish reports a call's outcome to the breaker and frees its slot.
func (r *Router) finish(ctx context.Context, m *member, err error) {
	switch {
	case err == nil:
		m.brk.success()
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		m.brk.release() // the client went away: says nothing about the backend
	case upstream.Retryable(err):
		m.brk.failure(r.now())
	default:
		m.brk.success() // a proper answer, e.g. 1214 for a bad request
	}
	if m.sem != nil {
		<-m.sem
	}
}

// attempt runs call on each planned target, within the backend's timeout,
// until one succeeds or fails with an error that another backend would not
// fix.
func attempt[T any](r *Router, ctx context.Context, rt *route, need int, call func(ctx context.Context, t *target) (T, error)) (T, error) {
	return failover(r, ctx, rt, need, upstream.Retryable, func(t *target) (T, error) {
		actx, cancel := context.WithTimeout(ctx, t.m.timeout)
		start := r.now()
		r.obs.begin(t.m)
		v, err := call(actx, t)
		r.obs.done(t.m, r.now().Sub(start))
		if err != nil && ctx.Err() == nil && actx.Err() != nil {
			err = timeoutError(t.m, err)
		}
		cancel()
		r.finish(ctx, t.m, err)
		return v, err
	})
}

// failover is the one loop over a route's plan: for each target whose slot
// it can take it counts the attempt in the trace and runs try, which owns
// the slot from then on (it calls r.finish when the call is over). It stops
// at the first success, or at an error that retry refuses or that comes
// after ctx ended; with no target tried it says why (noBackend).
func failover[T any](r *Router, ctx context.Context, rt *route, need int, retry func(error) bool, try func(t *target) (T, error)) (T, error) {
	var zero T
	tr := traceFrom(ctx)
	var lastErr error
	busy := false
	// The plan is built in a buffer on this frame: no allocation for a
	// model served by up to four backends, i.e. on every call of a usual
	// configuration. It holds pointers into the route (built once, never
	// changed): a stream's handler goroutine runs through this frame on its
	// way to the upstream request, its deepest moment, and keeps the stack
	// that moment grew for while the stream is held (docs/design.md §6);
	// four targets by value made this frame 1 KB.
	var buf [4]*target
	for _, t := range r.plan(rt, need, buf[:0]) {
		if !r.acquire(t.m) {
			busy = true
			continue
		}
		tr.Attempts++
		tr.Backend, tr.UpstreamModel = t.m.name, t.upstream
		start := r.now()
		v, err := try(t)
		if err == nil {
			return v, nil
		}
		r.obs.attemptFailed(ctx, t, rt.info.ID, tr.Attempts, err, r.now().Sub(start))
		lastErr = err
		if ctx.Err() != nil || !retry(err) {
			return zero, err
		}
	}
	if lastErr != nil {
		return zero, lastErr
	}
	return zero, noBackend(rt, need, busy)
}

// timeoutError is a call that ran out of the backend's time.
func timeoutError(m *member, err error) error {
	return &platform.Error{Code: platform.CodeNetwork, Message: "upstream timed out", HTTP: http.StatusGatewayTimeout,
		Err: fmt.Errorf("%w: backend %s: no reply within %s: %w", upstream.ErrRetryable, m.name, m.timeout, err)}
}

// noBackend explains why nothing was tried.
func noBackend(rt *route, need int, busy bool) error {
	if need > 0 && rt.info.ContextTokens > 0 && need > rt.info.ContextTokens {
		return platform.Errorf(platform.CodePromptTooLong, "prompt is too long for model %s", rt.info.ID)
	}
	if busy {
		return platform.Errorf(platform.CodeOverloaded, "model %s is busy, please retry later", rt.info.ID)
	}
	if need > 0 {
		fits := false
		for _, t := range rt.targets {
			fits = fits || t.info.ContextTokens == 0 || t.info.ContextTokens >= need
		}
		if !fits {
			return platform.Errorf(platform.CodePromptTooLong, "prompt is too long for model %s", rt.info.ID)
		}
	}
	return &platform.Error{Code: platform.CodeNetwork, HTTP: http.StatusServiceUnavailable,
		Message: fmt.Sprintf("no backend for model %s is available now, please retry later", rt.info.ID),
		Err:     fmt.Errorf("%w: all backends of %s unavailable", upstream.ErrRetryable, rt.info.ID)}
}

// chatNeed is the context a chat call needs, when any backend of the model
// has a smaller context than another (otherwise the HTTP layer's 1261 check
// already covers it and the estimate is skipped).
func chatNeed(rt *route, req *zhipuai.ChatCompletionRequest) int {
	lo, hi := -1, 0
	for _, t := range rt.targets {
		c := t.info.ContextTokens
		if c == 0 {
			c = 1 << 62
		}
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	if lo == hi {
		return 0
	}
	n := platform.EstimateChatPromptTokens(req)
	if req.MaxTokens != nil {
		n += *req.MaxTokens
	}
	return n
}

// chatRequest is req as target t must see it.
func chatRequest(req platform.ChatRequest, t *target) platform.ChatRequest {
	if req.Req.Model == t.upstream {
		return req
	}
	c := *req.Req
	c.Model = t.upstream
	return platform.ChatRequest{Req: &c, ClientModel: req.Req.Model, PromptTokens: req.PromptTokens}
}

// Chat implements platform.ChatBackend.
func (r *Router) Chat(ctx context.Context, req platform.ChatRequest) (*zhipuai.ChatCompletion, []byte, error) {
	if req.Req == nil {
		return nil, nil, platform.Errorf(platform.CodeMissingField, "missing request")
	}
	rt, err := r.lookup(req.Req.Model, platform.KindChat, platform.KindVision)
	if err != nil {
		return nil, nil, err
	}
	type reply struct {
		c    *zhipuai.ChatCompletion
		body []byte
	}
	out, err := attempt(r, ctx, rt, chatNeed(rt, req.Req), func(ctx context.Context, t *target) (reply, error) {
		c, body, err := t.m.chat.Chat(ctx, chatRequest(req, t))
		return reply{c, body}, err
	})
	if err != nil {
		return nil, nil, err
	}
	return out.c, out.body, nil
}

// Embeddings implements platform.EmbeddingBackend. Vectors of another size than
// asked are refused with 1214 (an engine such as bge-m3 has one size).
func (r *Router) Embeddings(ctx context.Context, req *zhipuai.EmbeddingRequest) (*zhipuai.EmbeddingResponse, error) {
	rt, err := r.lookup(req.Model, platform.KindEmbedding)
	if err != nil {
		return nil, err
	}
	if req.Dimensions != nil && !rt.info.AllowsDimensions(*req.Dimensions) {
		return nil, platform.Errorf(platform.CodeInvalidField, "dimensions %d is not supported by model %s (allowed: %v)",
			*req.Dimensions, req.Model, rt.info.Dimensions)
	}
	answered := req.Model
	resp, err := attempt(r, ctx, rt, 0, func(ctx context.Context, t *target) (*zhipuai.EmbeddingResponse, error) {
		c := *req
		c.Model = t.upstream
		resp, err := t.m.embed.Embeddings(ctx, &c)
		if err != nil {
			return nil, err
		}
		if t.upstream == r.builtin && req.Model != r.builtin {
			answered = r.builtin // an alias: the reply names the model that made the vectors
		}
		want := rt.info.DefaultDimensions()
		if req.Dimensions != nil {
			want = *req.Dimensions
		}
		for i := range resp.Data {
			if n := resp.Data[i].Dims(); want > 0 && n != want {
				return nil, &platform.Error{Code: platform.CodeInvalidField,
					Message: fmt.Sprintf("model %s produces %d-dimensional vectors, not %d", req.Model, n, want),
					Err:     fmt.Errorf("backend %s returned %d dims", t.m.name, n)}
			}
		}
		return resp, nil
	})
	if err != nil {
		return nil, err
	}
	resp.Model = answered
	if resp.Object == "" {
		resp.Object = "list"
	}
	return resp, nil
}

// Images implements platform.ImageBackend.
func (r *Router) Images(ctx context.Context, req *zhipuai.ImageRequest) (*zhipuai.ImagesResponse, error) {
	rt, err := r.lookup(req.Model, platform.KindImage)
	if err != nil {
		return nil, err
	}
	return attempt(r, ctx, rt, 0, func(ctx context.Context, t *target) (*zhipuai.ImagesResponse, error) {
		c := *req
		c.Model = t.upstream
		return t.m.images.Images(ctx, &c)
	})
}
