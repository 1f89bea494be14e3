package zhipuaitest_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func TestBadRequests(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	cases := []struct {
		name, path, body, code string
		status                 int
	}{
		{"bad json", "/chat/completions", `{"model":`, "1210", 400},
		{"empty body", "/chat/completions", ``, "1210", 400},
		{"no model", "/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, "1213", 400},
		{"no messages", "/chat/completions", `{"model":"glm-4","messages":[]}`, "1213", 400},
		{"async no model", "/async/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`, "1213", 400},
		{"embedding no input", "/embeddings", `{"model":"embedding-2"}`, "1213", 400},
		{"embedding-3 bad dims", "/embeddings", `{"model":"embedding-3","input":"x","dimensions":300}`, "1214", 400},
		{"image no prompt", "/images/generations", `{"model":"cogview-3"}`, "1213", 400},
		{"unknown route", "/nope", `{}`, "1222", 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := call(t, srv, "POST", c.path, bearer(srv), c.body)
			wantError(t, resp, body, c.status, c.code)
		})
	}
}

func TestTolerantPaths(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	for _, p := range []string{"//chat/completions", "/chat/completions/"} {
		resp, body := call(t, srv, "POST", p, bearer(srv), chatReq("hi", false))
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
	for _, r := range srv.Requests() {
		if r.Path != "/chat/completions" || !strings.HasPrefix(r.FullPath, "/api/paas/v4/") {
			t.Errorf("recorded Path %q FullPath %q", r.Path, r.FullPath)
		}
	}
}

func TestRoutingEdges(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	// Wrong method on a known route.
	resp, body := call(t, srv, "GET", "/chat/completions", bearer(srv), nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "1222")
	// The coding plan's base serves the same routes (docs/v4.md §1).
	req, _ := http.NewRequest("POST", srv.RootURL()+"/api/coding/paas/v4/chat/completions",
		strings.NewReader(`{"model":"glm-4","messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", srv.APIKey)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Errorf("coding base: %d", r2.StatusCode)
	}
	// Outside the V4 base nothing is served.
	r3, err := http.Post(srv.RootURL()+"/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusNotFound {
		t.Errorf("outside the base: %d", r3.StatusCode)
	}
}

func TestReplyEdges(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	base := zhipuaitest.Text("shared")
	srv.Enqueue(
		zhipuaitest.Error(0, "500", "bad status given"), // an invalid status becomes 500
		base.WithHeader("X-A", "1"),
		base.WithHeader("X-B", "2").WithDelay(time.Millisecond),
		zhipuaitest.Text("once").Times(0),
	)
	resp, body := call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("x", false))
	wantError(t, resp, body, 500, "500")
	// Value receivers: the two derived replies do not share headers.
	resp, _ = call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("x", false))
	if resp.Header.Get("X-A") != "1" || resp.Header.Get("X-B") != "" {
		t.Errorf("first derived reply headers %v", resp.Header)
	}
	resp, body = call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("x", false))
	if resp.Header.Get("X-B") != "2" || resp.Header.Get("X-A") != "" || !bytes.Contains(body, []byte(`"shared"`)) {
		t.Errorf("second derived reply headers %v body %s", resp.Header, body)
	}
	if srv.Pending() != 1 {
		t.Errorf("Times(0) enqueued %d replies, want 1", srv.Pending())
	}
}
