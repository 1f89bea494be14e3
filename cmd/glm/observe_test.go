package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// A backend on a dead port, as an operator meets it: the client's 502
// 1234, the server's log line with the cause, /readyz naming the backend,
// the per-backend series, and glm logs --status 502 showing the cause.
func TestDeadBackendIsVisible(t *testing.T) {
	dead := zhipuaitest.NewServer()
	deadURL := dead.URL()
	dead.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "backends.json")
	body := fmt.Sprintf(`{"backends":[{"name":"vllm-dead","type":"zhipu","base_url":%q,"api_key":"x.y","models":["glm-4"]}],
		"circuit_breaker":{"failures":2,"cooldown":"10m"}}`, deadURL)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServe(t, data, cfg, "--access-log")
	if code, b := status(t, "GET", p.base+"/readyz", ""); code != 200 || !strings.Contains(b, `"status":"ready"`) {
		t.Fatalf("readyz before any call: got %d %s, want 200 ready", code, b)
	}
	var ids []string
	for range 2 {
		resp, err := p.post("/chat/completions", p.key, `{"model":"glm-4","request_id":"client-id-1","messages":[{"role":"user","content":"hi"}]}`)
		code, b := bodyOf(t, resp, err)
		if code < 500 || !strings.Contains(string(b), `"1234"`) {
			t.Fatalf("chat on a dead backend: got %d %s, want 5xx with code 1234", code, b)
		}
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}

	// The log line: backend, model, attempt, class and the cause.
	poll(t, "the failed-attempt log line", func() bool {
		return strings.Contains(p.logText(), `msg="upstream attempt failed" backend=vllm-dead model=glm-4`)
	})
	poll(t, "the access-log line", func() bool { return strings.Contains(p.logText(), `msg=access request_id=`+ids[1]) })
	for _, want := range []string{"class=unavailable", "connection refused", `msg="circuit breaker" backend=vllm-dead from=closed to=open`,
		"client_request_id=client-id-1 endpoint=chat/completions status=502 code=1234"} {
		if !strings.Contains(p.logText(), want) {
			t.Errorf("server log: got\n%s\nwant %q", p.logText(), want)
		}
	}

	// /readyz: 503, naming the model and its down backend.
	code, b := status(t, "GET", p.base+"/readyz", "")
	var ready struct {
		Status string
		Checks []struct {
			Name string
			OK   bool
			Down []string
		}
	}
	if err := json.Unmarshal([]byte(b), &ready); err != nil {
		t.Fatalf("readyz body %s: %v", b, err)
	}
	named := false
	for _, c := range ready.Checks {
		named = named || (c.Name == "model glm-4" && !c.OK && len(c.Down) == 1 && c.Down[0] == "vllm-dead")
	}
	if code != 503 || ready.Status != "not ready" || !named {
		t.Fatalf("readyz with the backend down: got %d %s, want 503 naming vllm-dead for glm-4", code, b)
	}
	if code, _ := status(t, "GET", p.base+"/healthz", ""); code != 200 {
		t.Fatalf("healthz: got %d, want 200 (the process is alive)", code)
	}

	// The per-backend series.
	_, metrics := status(t, "GET", p.base+"/metrics", "")
	for _, want := range []string{`glm_backend_errors_total{backend="vllm-dead",code="1234"} 2`,
		`glm_backend_circuit_state{backend="vllm-dead"} 2`, `glm_backend_requests_total{backend="vllm-dead"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics: want %q in\n%s", want, grepLines(metrics, "glm_backend_"))
		}
	}

	// glm logs --status 5xx shows the cause; --request-id finds a row by
	// either id.
	poll(t, "the request-log rows", func() bool {
		return strings.Count(string(runGLM(t, "logs", "--data-dir", data, "--status", "5xx")), "connection refused") == 2
	})
	out := string(runGLM(t, "logs", "--data-dir", data, "--status", "5xx"))
	for _, want := range []string{"STATUS", "1234", "vllm-dead", "connection refused", "client-id-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("glm logs: got\n%s\nwant %q", out, want)
		}
	}
	for _, id := range []string{ids[0], "client-id-1"} {
		var rows []logView
		if err := json.Unmarshal(runGLM(t, "logs", "--data-dir", data, "--request-id", id, "--json"), &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 || rows[0].RequestID != "client-id-1" || !strings.Contains(rows[0].ErrorDetail, "connection refused") {
			t.Fatalf("glm logs --request-id %s: got %+v, want the row with its cause", id, rows)
		}
	}
}

// grepLines keeps the lines of s holding sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Tokens are counted per account and model for every caller: a sync
// request and an async task alike.
func TestTokensCountedForEveryCaller(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	s := startInProcess(t, filepath.Join(dir, "data"), writeConfig(t, dir, up))
	p := &proc{t: t, base: s.base}
	up.Enqueue(zhipuaitest.Text("sync").WithUsage(7, 2))
	if code, b := p.postB(t, "/chat/completions", s.key, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("chat: got %d %s", code, b)
	}
	up.Enqueue(zhipuaitest.Text("async").WithUsage(11, 5))
	code, b := p.postB(t, "/async/chat/completions", s.key, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	if code != 200 {
		t.Fatalf("async submit: got %d %s", code, b)
	}
	want := []string{
		`glm_account_tokens_total{account="default",endpoint="chat/completions",kind="prompt",model="glm-4"} 7`,
		`glm_account_tokens_total{account="default",endpoint="async-task",kind="prompt",model="glm-4"} 11`,
		`glm_account_tokens_total{account="default",endpoint="async-task",kind="completion",model="glm-4"} 5`,
	}
	var metrics string
	poll(t, "the async task's tokens in /metrics", func() bool {
		_, metrics = status(t, "GET", s.base+"/metrics", "")
		return strings.Contains(metrics, want[1])
	})
	for _, w := range want {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics: want %q in\n%s", w, grepLines(metrics, "glm_account_"))
		}
	}
}

// The meter's own figures on /metrics (docs/design.md §6 "Seeing the
// meter"): a charged call's lease transaction and its usage row's write,
// and the request-log writer's write of a refused call's row.
func TestMeterIsVisible(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	p := startServe(t, filepath.Join(dir, "data"), writeConfig(t, dir, up))
	if code, b := p.postB(t, "/chat/completions", p.key, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("chat: got %d %s, want 200", code, b)
	}
	if code, b := p.postB(t, "/chat/completions", p.key, `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`); code != 400 {
		t.Fatalf("chat on an unknown model: got %d %s, want 400", code, b)
	}
	wants := []string{
		`glm_billing_lease_seconds_count{outcome="ok"} 1`,
		"glm_billing_flush_rows_total 1",
		"glm_billing_flush_seconds_count 1",
		"glm_billing_pending_rows 0",
		"glm_request_log_rows_total 1",
		"glm_request_log_flush_seconds_count 1",
		"glm_request_log_errors_total 0",
	}
	var metrics, missing string
	deadline := time.Now().Add(60 * time.Second) // a hang guard, not a speed assertion
	for {
		_, metrics = status(t, "GET", p.base+"/metrics", "")
		missing = ""
		for _, w := range wants {
			if !strings.Contains(metrics, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics: got\n%s\nwant a line %q", metrics, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(metrics, "glm_billing_errors_total{") {
		t.Errorf("/metrics: got billing errors after two clean calls:\n%s", metrics)
	}
}
