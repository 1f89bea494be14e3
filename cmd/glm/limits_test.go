package main

// glm limits through real glm serve processes: rules set with the CLI on
// the same database reach a running server within --limits-reload, rules
// set through the admin API at once; refused requests never reach the
// upstream.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// glmFails runs a glm command that must fail and returns its stderr.
func (s *billSite) glmFails(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(glmBinary(t), append(args, s.db...)...)
	cmd.Env = append(append(os.Environ(), "GLMKIT_HOME="), s.env...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("glm %v succeeded (%v): %s", args, err, out)
	}
	return string(ee.Stderr)
}

// adminCall sends an admin API request to a server.
func adminCall(t *testing.T, p *proc, method, path, body string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, p.base+"/admin/v1"+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+billAdminTok)
	resp, err := http.DefaultClient.Do(req)
	return bodyOf(t, resp, err)
}

// enforced is what the server's limiter applies now (GET /admin/v1/limits).
func enforced(t *testing.T, p *proc) limits.Rules {
	t.Helper()
	code, b := adminCall(t, p, "GET", "/limits", "")
	var v struct {
		Enforced struct {
			Rules limits.Rules `json:"rules"`
		} `json:"enforced"`
	}
	if code != 200 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("GET /limits: %d %s", code, b)
	}
	return v.Enforced.Rules
}

func wantEnvelope(t *testing.T, code int, body []byte, status int, errCode string) {
	t.Helper()
	var env zhipuai.ErrorEnvelope
	if code != status || json.Unmarshal(body, &env) != nil || string(env.Error.Code) != errCode || env.Error.Message == "" {
		t.Fatalf("got %d %s, want %d with code %s in the V4 envelope", code, body, status, errCode)
	}
}

// awayFromMinuteEdge waits, if needed, until the wall clock is well inside
// a minute, so a 3-request RPM sequence sits in one window (the limiter's
// sliding window weighs the previous minute; this is a guard, not a timed
// assertion).
func awayFromMinuteEdge() {
	if s := time.Now().Second(); s >= 50 {
		time.Sleep(time.Duration(62-s) * time.Second)
	}
}

func limitsLive(t *testing.T, s *billSite) {
	s.glm(t, "accounts", "create", "acme")
	var k struct{ ID, Key string }
	if err := json.Unmarshal(s.glm(t, "keys", "create", "--account", "acme", "--json"), &k); err != nil || k.ID == "" {
		t.Fatalf("key %+v %v", k, err)
	}
	srv := s.start(t, 0, "--metering=false", "--limits-reload", "500ms")
	const chat = `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`
	if len(enforced(t, srv).Keys) != 0 {
		t.Fatal("limits on by default")
	}

	// rpm = 2 via the CLI while the server runs.
	out := string(s.glm(t, "limits", "set", "--key", k.ID, "--rpm", "2"))
	if !strings.Contains(out, "rpm 2") {
		t.Fatalf("set: %s", out)
	}
	poll(t, "the server to load rpm=2", func() bool { return enforced(t, srv).Keys[k.ID].RPM == 2 })
	awayFromMinuteEdge()
	s.up.Enqueue(zhipuaitest.Text("ok").Times(2))
	seen := len(s.up.Requests())
	for i := 0; i < 2; i++ {
		if code, body := srv.postB(t, "/chat/completions", k.Key, chat); code != 200 {
			t.Fatalf("request %d: %d %s", i+1, code, body)
		}
	}
	code, body := srv.postB(t, "/chat/completions", k.Key, chat)
	wantEnvelope(t, code, body, 429, "1303")
	if n := len(s.up.Requests()); n != seen+2 {
		t.Fatalf("upstream saw %d calls, want %d (the refused one must not reach it)", n, seen+2)
	}
	var list []struct {
		Subject string `json:"subject"`
		ID      string `json:"id"`
		RPM     int64  `json:"rpm"`
	}
	if err := json.Unmarshal(s.glm(t, "limits", "list", "--json"), &list); err != nil || len(list) != 1 || list[0].Subject != "key" || list[0].ID != k.ID || list[0].RPM != 2 {
		t.Fatalf("list %+v %v", list, err)
	}

	// Clear → requests pass again.
	s.glm(t, "limits", "clear", "--key", k.ID)
	poll(t, "the server to drop the rule", func() bool { _, ok := enforced(t, srv).Keys[k.ID]; return !ok })
	s.up.Enqueue(zhipuaitest.Text("ok"))
	if code, body := srv.postB(t, "/chat/completions", k.Key, chat); code != 200 {
		t.Fatalf("after clear: %d %s", code, body)
	}

	// Concurrency = 1: a second request while a slow stream runs gets 1302.
	s.glm(t, "limits", "set", "--key", k.ID, "--concurrency", "1")
	poll(t, "the server to load concurrency=1", func() bool { return enforced(t, srv).Keys[k.ID].MaxConcurrent == 1 })
	s.up.Enqueue(zhipuaitest.Text("slow stream").WithChunks("slow ", "stream").WithDelay(10 * time.Minute))
	ctx, cancel := context.WithCancel(context.Background())
	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.url("/chat/completions"),
			strings.NewReader(`{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"slow"}]}`))
		req.Header.Set("Authorization", "Bearer "+k.Key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	before := len(s.up.Requests())
	poll(t, "the slow stream to reach the upstream", func() bool { return len(s.up.Requests()) == before+1 })
	code, body = srv.postB(t, "/chat/completions", k.Key, chat)
	wantEnvelope(t, code, body, 429, "1302")
	if n := len(s.up.Requests()); n != before+1 {
		t.Fatalf("upstream saw the refused request (%d calls)", n)
	}
	cancel()
	<-slowDone

	// The admin API on the running server: applied at once (no wait),
	// bad input answered with 1210/1213/1214, never 500.
	code, body = adminCall(t, srv, "PUT", "/limits/keys/"+k.ID, `{"rpm":1,"max_concurrent":0}`)
	if code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if r := enforced(t, srv).Keys[k.ID]; r != (limits.Rule{RPM: 1}) {
		t.Fatalf("not applied at once: %+v", r)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PUT", "/limits/keys/" + k.ID, `{"rpm":-1}`, 400, "1214"},
		{"PUT", "/limits/keys/" + k.ID, `{}`, 400, "1213"},
		{"PUT", "/limits/keys/" + k.ID, `"x"`, 400, "1210"},
		{"PUT", "/limits/keys/0123456789abcdef0123456789abcdef", `{"rpm":1}`, 404, "1214"},
		{"PUT", "/limits/accounts/nope", `{"rpm":1}`, 404, "1214"},
	} {
		code, body := adminCall(t, srv, c.method, c.path, c.body)
		wantEnvelope(t, code, body, c.status, c.code)
	}
	if code, body := adminCall(t, srv, "DELETE", "/limits/keys/"+k.ID, ""); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if _, ok := enforced(t, srv).Keys[k.ID]; ok {
		t.Fatal("DELETE not applied at once")
	}

	// The CLI refuses what the API refuses, with the shared wording.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"limits", "set", "--key", k.ID}, "--concurrency, --rpm or --daily-tokens is required"},
		{[]string{"limits", "set", "--key", k.ID, "--rpm", "-1"}, "rpm must be between 0 (off) and"},
		{[]string{"limits", "set", "--account", "acme", "--key", k.ID, "--rpm", "1"}, "give --account or --key"},
		{[]string{"limits", "set", "--account", "nope", "--rpm", "1"}, `no account "nope"`},
		{[]string{"limits", "set", "--key", "zz", "--rpm", "1"}, "want a key id"},
		{[]string{"limits", "clear", "--key", k.ID}, "has no limit rule"},
	} {
		if got := s.glmFails(t, c.args...); !strings.Contains(got, c.want) {
			t.Errorf("glm %v: %q, want %q", c.args, got, c.want)
		}
	}
	billStop(t, srv)
}

// TestLimitsLiveSQLite: glm limits set/clear and the admin API against a
// running glm serve on SQLite.
func TestLimitsLiveSQLite(t *testing.T) { limitsLive(t, newBillSite(t, "")) }

// TestLimitsLivePostgres: the same on PostgreSQL.
func TestLimitsLivePostgres(t *testing.T) { limitsLive(t, newBillSite(t, freshPGSchema(t))) }
