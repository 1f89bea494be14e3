package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/tasks"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// These tests run the real glm binary: restarts, kill -9 and signals need
// a process. The scripted Zhipu cloud (zhipuaitest) is the only stand-in.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func glmBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "glm-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "glm")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://host:port
	key    string // printed on first start
	stderr *strings.Builder
	errw   *lockedWriter // guards stderr while the process runs
	done   chan error
}

// logText is the server's log so far, safe while it runs.
func (p *proc) logText() string {
	p.errw.mu.Lock()
	defer p.errw.mu.Unlock()
	return p.stderr.String()
}

var listenRE = regexp.MustCompile(`^glm serve: listening on (http://\S+)$`)

// startServe runs glm serve on a free port and waits for its address line.
func startServe(t *testing.T, dataDir, config string, extra ...string) *proc {
	t.Helper()
	return startServeEnv(t, []string{"GLMKIT_MASTER_KEY="}, dataDir, config, extra...)
}

func startServeEnv(t *testing.T, env []string, dataDir, config string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--config", config}, extra...)
	cmd := exec.Command(glmBinary(t), args...)
	cmd.Env = append(append(os.Environ(), "ZHIPUAI_API_KEY=", "GLMKIT_HOME="), env...)
	p := &proc{t: t, cmd: cmd, stderr: &strings.Builder{}, done: make(chan error, 1)}
	p.errw = &lockedWriter{w: p.stderr}
	cmd.Stderr = p.errw
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		p.done <- cmd.Wait()
	}()
	for line := range lines {
		if strings.HasPrefix(line, "    ") && strings.Contains(line, ".") && p.key == "" {
			p.key = strings.TrimSpace(line)
		}
		if m := listenRE.FindStringSubmatch(line); m != nil {
			p.base = m[1]
			go func() {
				for range lines {
				}
			}()
			return p
		}
	}
	t.Fatalf("glm serve exited before listening: %s", p.stderr.String())
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) url(path string) string { return p.base + "/api/paas/v4" + path }

func (p *proc) post(path, key, body string) (*http.Response, error) {
	req, _ := http.NewRequest("POST", p.url(path), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return http.DefaultClient.Do(req)
}

func (p *proc) get(path, key string) (*http.Response, error) {
	req, _ := http.NewRequest("GET", p.url(path), nil)
	req.Header.Set("Authorization", key)
	return http.DefaultClient.Do(req)
}

func (p *proc) postB(t *testing.T, path, key, body string) (int, []byte) {
	resp, err := p.post(path, key, body)
	return bodyOf(t, resp, err)
}

func (p *proc) getB(t *testing.T, path, key string) (int, []byte) {
	resp, err := p.get(path, key)
	return bodyOf(t, resp, err)
}

func bodyOf(t *testing.T, resp *http.Response, err error) (int, []byte) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func writeConfig(t *testing.T, dir string, up *zhipuaitest.Server) string {
	t.Helper()
	cfg := fmt.Sprintf(`{"backends":[{"name":"cloud","type":"zhipu","base_url":%q,"api_key":%q}]}`, up.URL(), up.APIKey)
	path := filepath.Join(dir, "backends.json")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runGLM(t *testing.T, args ...string) []byte {
	t.Helper()
	return runGLMEnv(t, []string{"GLMKIT_MASTER_KEY="}, args...)
}

func runGLMEnv(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(glmBinary(t), args...)
	cmd.Env = append(append(os.Environ(), "GLMKIT_HOME="), env...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("glm %v: %v: %s", args, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return out
}

func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a hang guard, not a speed assertion
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openData(t *testing.T, dataDir string) *store.SQL {
	t.Helper()
	key, err := store.LoadMasterKey(func(string) string { return "" }, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(context.Background(), filepath.Join(dataDir, "glm.db"), store.Options{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestServeFirstStartKeysAndRevoke(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p := startServe(t, data, writeConfig(t, dir, up), "--key-recheck", "200ms")
	if p.key == "" {
		t.Fatal("first start printed no key")
	}
	up.Enqueue(zhipuaitest.Text("hello").WithUsage(3, 1).Times(3))
	if code, b := p.postB(t, "/chat/completions", p.key, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`); code != 200 || !strings.Contains(string(b), "hello") {
		t.Fatalf("%d %s", code, b)
	}
	// A key created by the CLI while the server runs works at once.
	var created struct{ ID, Key, Masked string }
	if err := json.Unmarshal(runGLM(t, "keys", "create", "--data-dir", data, "--name", "ci", "--json"), &created); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Key, created.ID+".") || created.Masked != created.ID[:4]+"..."+created.Key[len(created.Key)-4:] {
		t.Fatalf("created %+v", created)
	}
	if code, b := p.postB(t, "/chat/completions", created.Key, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("new key: %d %s", code, b)
	}
	var list []struct {
		ID, Masked, Name string
		LastUsedAt       *time.Time `json:"last_used_at"`
	}
	poll(t, "last-used time", func() bool {
		list = nil
		json.Unmarshal(runGLM(t, "keys", "list", "--data-dir", data, "--json"), &list)
		return len(list) == 2 && list[0].LastUsedAt != nil
	})
	if strings.Contains(string(runGLM(t, "keys", "list", "--data-dir", data)), created.Key) {
		t.Fatal("keys list shows a full key")
	}
	// Revoked by another process: refused within the stated bound.
	runGLM(t, "keys", "revoke", "--data-dir", data, created.ID)
	poll(t, "the revoke to reach the server", func() bool {
		code, _ := p.postB(t, "/chat/completions", created.Key, `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
		return code == 401
	})
	// Second start: no new key printed.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	p2 := startServe(t, data, writeConfig(t, dir, up))
	if p2.key != "" {
		t.Fatal("second start printed another key")
	}
}

func TestServeRestartWithAsyncTasksInFlight(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := writeConfig(t, dir, up)
	p := startServe(t, data, cfg, "--workers", "1", "--task-lease", "1s")
	up.Enqueue(zhipuaitest.Text("never finishes").WithDelay(10 * time.Minute))
	submit := func(p *proc, text string) string {
		code, b := p.postB(t, "/async/chat/completions", p.key, `{"model":"glm-4","messages":[{"role":"user","content":"`+text+`"}]}`)
		var s zhipuai.AsyncTaskStatus
		if code != 200 || json.Unmarshal(b, &s) != nil || s.TaskStatus != "PROCESSING" {
			t.Fatalf("submit: %d %s", code, b)
		}
		return s.ID
	}
	running := submit(p, "first")
	poll(t, "the first task to reach the upstream", func() bool { return len(up.Requests()) == 1 })
	queued := []string{submit(p, "second"), submit(p, "third")}

	// kill -9: no drain, no cleanup.
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done
	up.Enqueue(zhipuaitest.Text("done").WithUsage(2, 1).Times(2))
	p2 := startServe(t, data, cfg, "--workers", "1", "--task-lease", "1s")

	result := func(id string) zhipuai.AsyncCompletion {
		code, b := p2.getB(t, "/async-result/"+id, p.key)
		var r zhipuai.AsyncCompletion
		if code != 200 || json.Unmarshal(b, &r) != nil {
			t.Fatalf("poll %s: %d %s", id, code, b)
		}
		return r
	}
	for _, id := range queued {
		var r zhipuai.AsyncCompletion
		poll(t, "queued task "+id, func() bool { r = result(id); return r.TaskStatus != "PROCESSING" })
		if r.TaskStatus != "SUCCESS" || r.Choices[0].Message.Content != "done" || r.Usage == nil || r.Usage.TotalTokens != 3 {
			t.Fatalf("resumed task %s: %+v", id, r)
		}
	}
	var r zhipuai.AsyncCompletion
	poll(t, "the interrupted task", func() bool { r = result(running); return r.TaskStatus != "PROCESSING" })
	if r.TaskStatus != "FAIL" || r.Error == nil || r.Error.Message != tasks.MsgWorkerLost {
		t.Fatalf("interrupted task: %+v", r)
	}
	// Never run twice: the upstream saw "first" once, the others once each.
	seen := map[string]int{}
	for _, rq := range up.Requests() {
		if rq.Chat != nil {
			seen[rq.Chat.Messages[0].Content.Text]++
		}
	}
	if seen["first"] != 1 || seen["second"] != 1 || seen["third"] != 1 {
		t.Fatalf("upstream calls per task: %v", seen)
	}
}

// serveMode starts glm serve for a test one way: as a process (exec) or
// in-process. term starts the drain as SIGTERM does; wait returns once the
// server has exited, with its exit error.
type serveMode struct {
	name  string
	start func(t *testing.T, dataDir, config string, extra ...string) (p *proc, term func(), wait func() error)
}

var serveModes = []serveMode{
	{"exec", func(t *testing.T, dataDir, config string, extra ...string) (*proc, func(), func() error) {
		p := startServe(t, dataDir, config, extra...)
		return p, func() { p.cmd.Process.Signal(syscall.SIGTERM) }, func() error { return <-p.done }
	}},
	{"in-process", func(t *testing.T, dataDir, config string, extra ...string) (*proc, func(), func() error) {
		s := startInProcess(t, dataDir, config, extra...)
		return &proc{t: t, base: s.base, key: s.key, stderr: &strings.Builder{}}, s.term, func() error { s.wait(); return nil }
	}},
}

func TestServeGracefulShutdownDrainsStream(t *testing.T) {
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) { testGracefulShutdownDrainsStream(t, m) })
	}
}

func testGracefulShutdownDrainsStream(t *testing.T, m serveMode) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	p, term, wait := m.start(t, data, writeConfig(t, dir, up))
	up.Enqueue(zhipuaitest.Text("").WithChunks("a", "b", "c", "d").WithDelay(150*time.Millisecond).WithUsage(5, 4))
	resp, err := p.post("/chat/completions", p.key, `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	rd := sse.NewReader(resp.Body)
	var events []string
	ev, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	events = append(events, string(ev.Data))
	// SIGTERM mid-stream: the stream must still complete.
	term()
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, string(ev.Data))
	}
	resp.Body.Close()
	if len(events) != 6 || events[5] != "[DONE]" || !strings.Contains(events[4], `"total_tokens":9`) {
		t.Fatalf("events %q", events)
	}
	if err := wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr)
	}
	// The drained request was logged (flushed on shutdown) exactly once.
	rows, err := openData(t, data).ListRequestLogs(context.Background(), platform.RequestLogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Usage.TotalTokens != 9 || !rows[0].Stream {
		t.Fatalf("rows %+v", rows)
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--addr", "nonsense"}, "--addr"},
		{[]string{"serve", "--admin-addr", "nonsense"}, "--admin-addr"},
		{[]string{"serve", "--workers", "0"}, "--workers"},
		{[]string{"serve", "--body-timeout", "0s"}, "--body-timeout"},
		{[]string{"serve", "--write-timeout", "-1s"}, "--write-timeout"},
		{[]string{"serve", "--max-conns-per-ip", "-1"}, "--max-conns-per-ip"},
		{[]string{"serve", "--gc-headroom", "-1"}, "--gc-headroom"},
		{[]string{"serve", "--config", "/nonexistent/backends.json"}, "--config"},
		{[]string{"keys", "revoke", "xyz"}, "not a key id"},
	} {
		cmd := exec.Command(glmBinary(t), append(c.args, "--data-dir", t.TempDir())...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("glm %v: err %v, output %s; want a message naming %s", c.args, err, out, c.want)
		}
	}
}

func TestServeDrainTimeoutCutsStreamInBand(t *testing.T) {
	// A scripted stream that sends one chunk and then nothing.
	upstreamGone := make(chan struct{})
	var once sync.Once
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream;charset=UTF-8")
		sse.NewWriter(w).WriteData([]byte(`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"partial"}}]}`))
		<-r.Context().Done()
		once.Do(func() { close(upstreamGone) })
	}))
	defer slow.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "backends.json")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`{"backends":[{"name":"slow","type":"zhipu","base_url":%q,"api_key":"0123456789abcdef0123456789abcdef.abcdefghijklmnop","models":["glm-4"]}]}`,
		slow.URL+"/api/paas/v4")), 0o600)
	p := startServe(t, data, cfg, "--drain-timeout", "300ms")
	resp, err := p.post("/chat/completions", p.key, `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	rd := sse.NewReader(resp.Body)
	if ev, err := rd.Next(); err != nil || !strings.Contains(string(ev.Data), "partial") {
		t.Fatalf("first event %q %v", ev.Data, err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	var last []byte
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		last = append([]byte(nil), ev.Data...)
	}
	resp.Body.Close()
	var env zhipuai.ErrorEnvelope
	if json.Unmarshal(last, &env) != nil || env.Error.Code != platform.CodeOverloaded {
		t.Fatalf("last event %q; want an in-band 1305 saying the server shut down", last)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr)
	}
	select {
	case <-upstreamGone:
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the upstream stream was not cancelled")
	}
	rows, err := openData(t, data).ListRequestLogs(context.Background(), platform.RequestLogFilter{})
	if err != nil || len(rows) != 1 || rows[0].ErrorCode != platform.CodeOverloaded || !rows[0].Estimated {
		t.Fatalf("rows %+v %v", rows, err)
	}
}
