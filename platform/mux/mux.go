// Package mux is the router every glm serve listener is built on. The V4
// API, the admin API and the operational endpoints each own a Mux of their
// routes; cmd/glm mounts them onto one root Mux per listener. A Mux
// normalises paths before routing and answers what no route serves with
// the V4 envelope (docs/v4.md §6): 404 for an unknown path, 405 for a
// known path with another method — instead of net/http's plain text.
package mux

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/envelope"
)

// Handler is a handler that can be mounted: it serves the routes it lists.
type Handler interface {
	http.Handler
	// Routes are the routes served, each with the handler of its own
	// pattern, so that a root Mux routes a request once, straight to it.
	Routes() []Route
}

// Route is one pattern, in http.ServeMux syntax with a method
// ("POST /api/paas/v4/chat/completions", "GET /x/{id}"), and its handler.
type Route struct {
	Pattern string
	Handler http.Handler
}

// Mux routes requests by method and path.
type Mux struct {
	mux *http.ServeMux
	now func() time.Time

	// mu guards routes and paths: a handler may be mounted on a Mux that
	// already serves (http.ServeMux allows it too).
	mu     sync.RWMutex
	routes []Route
	// paths are the registered paths split into segments, "{…}" matching
	// any one segment: the paths that answer 405 rather than 404.
	paths [][]string
}

// New returns an empty Mux; now stamps the request ids of its 404/405
// answers (time.Now when nil).
func New(now func() time.Time) *Mux {
	if now == nil {
		now = time.Now
	}
	m := &Mux{mux: http.NewServeMux(), now: now}
	m.mux.HandleFunc("/", m.unknown)
	return m
}

// Handle registers h for pattern ("METHOD /path"). It panics on a pattern
// without a method or one that conflicts with another, as http.ServeMux
// does: both are wiring mistakes.
func (m *Mux) Handle(pattern string, h http.Handler) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || method == "" || !strings.HasPrefix(path, "/") {
		panic("mux: pattern " + pattern + " needs a method and a path")
	}
	m.mux.Handle(pattern, h)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes = append(m.routes, Route{Pattern: pattern, Handler: h})
	m.paths = append(m.paths, segments(path))
}

// HandleFunc registers f for pattern (see Handle).
func (m *Mux) HandleFunc(pattern string, f http.HandlerFunc) { m.Handle(pattern, f) }

// Mount registers every route of h with the route's own handler: a
// request to a mounted route is matched once, by m.
func (m *Mux) Mount(h Handler) {
	for _, r := range h.Routes() {
		m.Handle(r.Pattern, r.Handler)
	}
}

// Routes lists the registered routes, so that a Mux can itself be mounted
// onto another.
func (m *Mux) Routes() []Route {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]Route(nil), m.routes...)
}

// ServeHTTP normalises the path (clients join base URL and path in several
// ways, docs/v4.md §1: repeated and trailing slashes must not matter) and
// routes.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; strings.Contains(p, "//") || (len(p) > 1 && strings.HasSuffix(p, "/")) {
		for strings.Contains(p, "//") {
			p = strings.ReplaceAll(p, "//", "/")
		}
		if len(p) > 1 {
			p = strings.TrimSuffix(p, "/")
		}
		r.URL.Path = p
		r.URL.RawPath = ""
	}
	m.mux.ServeHTTP(w, r)
}

// unknown answers requests no route serves.
func (m *Mux) unknown(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	id := platform.NewID(m.now())
	w.Header().Set("X-Request-Id", id)
	if m.known(p) {
		envelope.WriteError(w, id, &platform.Error{Code: platform.CodeAPINotFound, HTTP: http.StatusMethodNotAllowed,
			Message: "method " + r.Method + " not allowed on " + p})
		return
	}
	envelope.WriteError(w, id, &platform.Error{Code: platform.CodeAPINotFound, Message: "no such API: " + envelope.Quote(p)})
}

// known reports whether some route serves path with another method.
func (m *Mux) known(path string) bool {
	got := segments(path)
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, want := range m.paths {
		if matches(want, got) {
			return true
		}
	}
	return false
}

// segments splits a path; a trailing "{$}" (an exact-path pattern such as
// "GET /{$}") matches what its path without it matches.
func segments(path string) []string {
	return strings.Split(strings.Trim(strings.TrimSuffix(path, "{$}"), "/"), "/")
}

func matches(pattern, path []string) bool {
	if len(pattern) != len(path) {
		return false
	}
	for i, s := range pattern {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			if path[i] == "" {
				return false
			}
			continue
		}
		if s != path[i] {
			return false
		}
	}
	return true
}
