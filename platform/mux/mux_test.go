package mux

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/zhipuai"
)

// ok answers 200 with the pattern that served, so tests see the route.
func ok(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name+" "+r.PathValue("id")) }
}

func serve(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, "http://x"+path, nil))
	return rec
}

// A root mux composed of two mounted muxes routes to each, normalises
// paths first and answers the rest with the V4 envelope: 405 for a known
// path (wildcards included) with another method, 404 otherwise.
func TestMountedMuxes(t *testing.T) {
	api := New(nil)
	api.HandleFunc("POST /v4/chat", ok("chat"))
	api.HandleFunc("GET /v4/tasks/{id}", ok("task"))
	adm := New(nil)
	adm.HandleFunc("DELETE /admin/accounts/{id}/keys", ok("keys"))
	root := New(nil)
	root.Mount(api)
	root.Mount(adm)

	for _, c := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"POST", "/v4/chat", 200, "chat "},
		{"POST", "//v4//chat/", 200, "chat "},
		{"GET", "/v4/tasks/t1", 200, "task t1"},
		{"DELETE", "/admin/accounts/a1/keys", 200, "keys a1"},
	} {
		rec := serve(root, c.method, c.path)
		if rec.Code != c.status || rec.Body.String() != c.body {
			t.Errorf("%s %s: got %d %q, want %d %q", c.method, c.path, rec.Code, rec.Body, c.status, c.body)
		}
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v4/chat", http.StatusMethodNotAllowed},
		{"POST", "/v4/tasks/t1", http.StatusMethodNotAllowed},
		{"GET", "/admin/accounts/a1/keys", http.StatusMethodNotAllowed},
		{"GET", "/v4/tasks", http.StatusNotFound},
		{"GET", "/admin/accounts/a1/other", http.StatusNotFound},
		{"GET", "/", http.StatusNotFound},
	} {
		rec := serve(root, c.method, c.path)
		var env zhipuai.ErrorEnvelope
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %s: body %q: %v", c.method, c.path, rec.Body, err)
		}
		if rec.Code != c.status || env.Error.Code != "1222" || env.RequestID == "" ||
			rec.Header().Get("X-Request-Id") != env.RequestID || rec.Header().Get("Content-Type") != envelope.ContentJSON {
			t.Errorf("%s %s: got %d %s %v, want %d with the 1222 envelope", c.method, c.path, rec.Code, rec.Body, rec.Header(), c.status)
		}
	}
	if got, want := len(root.Routes()), 3; got != want {
		t.Errorf("routes: got %d, want %d", got, want)
	}
}

func TestHandleNeedsMethod(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("got no panic for a pattern without a method, want one")
		}
	}()
	New(nil).HandleFunc("/x", ok("x"))
}

// panicking is a mountable handler whose own ServeHTTP must never run once
// it is mounted: the root routes straight to the route's handler.
type panicking struct{ routes []Route }

func (panicking) ServeHTTP(http.ResponseWriter, *http.Request) { panic("routed twice") }
func (p panicking) Routes() []Route                            { return p.routes }

// A mounted route is matched once, by the root: the mounted handler's own
// router is not run again (a second ServeMux match per request).
func TestMountRoutesOnce(t *testing.T) {
	root := New(nil)
	root.Mount(panicking{routes: []Route{{Pattern: "GET /v4/tasks/{id}", Handler: ok("task")}}})
	rec := serve(root, "GET", "/v4/tasks/t1")
	if got, want := rec.Body.String(), "task t1"; rec.Code != http.StatusOK || got != want {
		t.Fatalf("got %d %q, want 200 %q", rec.Code, got, want)
	}
}
