package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// served is a glm serve started in-process by startInProcess.
type served struct {
	base, admin string // base URLs; admin is base without --admin-addr
	key         string // printed on first start
	term        func() // starts the drain, as SIGTERM does
	wait        func() // returns once the server has drained and closed
}

// stop drains and closes the server.
func (s *served) stop() { s.term(); s.wait() }

// startInProcess builds glm serve from flags as the command does, on
// 127.0.0.1:0 (and, with --admin-addr, a second loopback port), and
// returns its base URLs. stop runs at cleanup if the test did not.
func startInProcess(t *testing.T, dataDir, config string, extra ...string) *served {
	t.Helper()
	// The process environment must not choose backends, keys or tokens.
	for _, k := range []string{"ZHIPUAI_API_KEY", "GLMKIT_HOME", "GLMKIT_MASTER_KEY", envAdminToken} {
		t.Setenv(k, "")
	}
	o := &serveOptions{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.register(fs)
	args := append([]string{"--addr", "127.0.0.1:0", "--data-dir", dataDir, "--config", config, "--log-level", "warn"}, extra...)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	app, err := newServeApp(o, &out, &lockedWriter{w: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := app.Start(ctx); err != nil {
		cancel()
		app.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		app.Wait(ctx)
		app.Close()
	}()
	s := &served{base: app.URL(), admin: app.AdminURL(), term: cancel, wait: func() { <-done }}
	t.Cleanup(s.stop)
	listening := ""
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "    ") && strings.Contains(line, ".") {
			s.key = strings.TrimSpace(line)
		}
		if m := listenRE.FindStringSubmatch(line); m != nil {
			listening = m[1]
		}
	}
	if listening != s.base {
		t.Fatalf("got listening line for %q, want %s in:\n%s", listening, s.base, out.String())
	}
	if got, want := strings.Contains(out.String(), "glm serve: admin API and metrics on "+s.admin+"\n"), s.admin != s.base; got != want {
		t.Fatalf("got admin line %v, want %v (admin %s) in:\n%s", got, want, s.admin, out.String())
	}
	return s
}

// status sends a request and returns its status and body.
func status(t *testing.T, method, url, authz string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", "Bearer "+authz)
	}
	resp, err := http.DefaultClient.Do(req)
	code, b := bodyOf(t, resp, err)
	return code, string(b)
}

// The first-start key works on the V4 API of a server started in-process
// (the same check as TestServeFirstStartKeysAndRevoke's first request,
// without a process), and a restart on the same data prints no new key.
func TestServeInProcessFirstStart(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data, cfg := filepath.Join(dir, "data"), writeConfig(t, dir, up)
	s := startInProcess(t, data, cfg)
	if s.key == "" {
		t.Fatal("first start printed no key")
	}
	up.Enqueue(zhipuaitest.Text("hello").WithUsage(3, 1))
	p := &proc{t: t, base: s.base}
	if code, b := p.postB(t, "/chat/completions", s.key, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`); code != 200 || !strings.Contains(string(b), "hello") {
		t.Fatalf("chat: got %d %s, want 200 with the upstream's text", code, b)
	}
	s.stop()
	if s2 := startInProcess(t, data, cfg); s2.key != "" {
		t.Fatal("second start printed another key")
	}
}

// Without --admin-addr one listener serves everything; with it, the admin
// API and /metrics move to the second listener and are 404 on the public
// one, /healthz is on both, and the V4 API stays public only.
func TestServeAdminAddr(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	for _, split := range []bool{false, true} {
		t.Run(map[bool]string{false: "shared", true: "separate"}[split], func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			var extra []string
			if split {
				extra = []string{"--admin-addr", "127.0.0.1:0"}
			}
			s := startInProcess(t, data, writeConfig(t, dir, up), extra...)
			if split == (s.admin == s.base) {
				t.Fatalf("admin URL %s, public %s: want them distinct only with --admin-addr", s.admin, s.base)
			}
			token := adminTokenOf(t, data)
			want := func(base, method, path, authz string, code int, has string) {
				t.Helper()
				got, body := status(t, method, base+path, authz)
				if got != code || !strings.Contains(body, has) {
					t.Errorf("%s %s%s: got %d %.120s, want %d containing %q", method, base, path, got, body, code, has)
				}
			}
			want(s.base, "GET", "/healthz", "", 200, `"ok"`)
			want(s.admin, "GET", "/healthz", "", 200, `"ok"`)
			want(s.admin, "GET", "/metrics", "", 200, "glm_streams_in_flight")
			want(s.admin, "GET", "/admin/v1/accounts", token, 200, `"default"`)
			want(s.admin, "GET", "/admin/v1/accounts", "", 401, `"1001"`)
			want(s.admin, "DELETE", "/admin/v1/accounts", token, 405, `"1222"`)
			want(s.base, "GET", "/api/paas/v4/models", s.key, 200, `"list"`)
			want(s.base, "GET", "//api/paas/v4//models/", s.key, 200, `"list"`)
			want(s.base, "DELETE", "/api/paas/v4/models", s.key, 405, `"1222"`)
			want(s.base, "GET", "/nowhere", "", 404, `"1222"`)
			if split {
				want(s.base, "GET", "/metrics", "", 404, `"1222"`)
				want(s.base, "GET", "/admin/v1/accounts", token, 404, `"1222"`)
				want(s.admin, "GET", "/api/paas/v4/models", s.key, 404, `"1222"`)
			}
		})
	}
}

// adminTokenOf reads the admin token glm serve created in the data dir.
func adminTokenOf(t *testing.T, dataDir string) string {
	t.Helper()
	tok, created, err := billAdminToken(dataDir)
	if err != nil || created {
		t.Fatalf("admin token: got created=%v err=%v, want the server's existing token", created, err)
	}
	return tok
}
