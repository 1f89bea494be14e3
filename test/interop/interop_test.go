// Package interop runs real V4 clients against a real `glm serve` process:
// the npm packages `openai` and `zhipuai-sdk-nodejs-v4` (run.mjs) and our own
// Go SDK. glm serve's Zhipu backend points at zhipuaitest, a scripted fake of
// the cloud, so every answer is known in advance.
//
// The tests need Node.js and `npm ci` in this directory, and build cmd/glm, so
// they only run when GLMKIT_INTEROP=1 (./scripts/test sets it and installs
// everything). A plain `go test ./...` skips them.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to create a database for glm serve

	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// The contract with run.mjs (keep both sides in sync).
const (
	embedText  = "interop embeddings 北京今天的天气"
	embedDims  = 1024
	toolOutput = `{"temperature":25,"unit":"c","weather":"晴"}`
	weatherArg = `{"location":"北京","unit":"c"}`
	usageIn    = 11
	usageOut   = 7
)

func expectedText(c string) string {
	return "你好，interop " + c + "：北京今天晴，25°C ☀️。"
}

func toolResultText(id, content string) string { return "工具结果 " + id + ": " + content }

func prompt(c string) string { return "[interop:" + c + "] 北京今天天气怎么样？" }

// nodeCases are the cases run.mjs runs; each must report exactly once.
var nodeCases = []string{
	"openai/chat", "openai/stream", "openai/stream-helper", "openai/tools", "openai/tools-stream",
	"openai/embeddings", "openai/async", "openai/bad-key", "openai/arrears",
	"zhipuai/chat", "zhipuai/stream", "zhipuai/tools", "zhipuai/embeddings", "zhipuai/async", "zhipuai/cached-token", "zhipuai/bad-key", "zhipuai/arrears",
}

// badKey is well formed but unknown to every server here.
const badKey = "ffffffffffffffffffffffffffffffff.NoSuchSecret0000"

// fakeBrokeKey is the fake upstream's stand-in for an account without credit
// (the harness run); against glm serve a real key of an empty account is used.
const fakeBrokeKey = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0.BrokeSecret00000"

const arrearsMessage = "您的账户已欠费，请充值后重试。"

var markerRE = regexp.MustCompile(`\[interop:([A-Za-z0-9/_.-]+)\]`)

// script answers the fake upstream's chat calls by the case marker in the
// prompt; everything else (embeddings) gets the fake's default answer.
func script(req *zhipuaitest.Request) zhipuaitest.Reply {
	if id, _, _ := strings.Cut(fakeBrokeKey, "."); req.KeyID == id {
		return zhipuaitest.Error(http.StatusTooManyRequests, "1113", arrearsMessage)
	}
	cr := req.Chat
	if cr == nil || len(cr.Messages) == 0 {
		return zhipuaitest.Reply{}
	}
	c := ""
	for _, m := range cr.Messages {
		if m.Role == zhipuai.RoleUser {
			if sm := markerRE.FindStringSubmatch(m.Content.String()); sm != nil {
				c = sm[1]
			}
		}
	}
	if c == "" {
		return zhipuaitest.Reply{}
	}
	last := cr.Messages[len(cr.Messages)-1]
	switch {
	case last.Role == zhipuai.RoleTool:
		return zhipuaitest.Text(toolResultText(last.ToolCallID, last.Content.String())).WithUsage(usageIn, usageOut)
	case strings.Contains(c, "tools"):
		return zhipuaitest.ToolCalls(zhipuai.ToolCall{
			Function: zhipuai.FunctionCall{Name: "get_weather", Arguments: weatherArg},
		}).WithUsage(usageIn, usageOut)
	case strings.Contains(c, "async"):
		// Slow enough that a poll sees PROCESSING whichever way the server runs tasks.
		return zhipuaitest.Text(expectedText(c)).WithUsage(usageIn, usageOut).WithDelay(700 * time.Millisecond)
	}
	return zhipuaitest.Text(expectedText(c)).WithUsage(usageIn, usageOut)
}

// ---- environment -----------------------------------------------------------------

func requireInterop(t *testing.T) {
	t.Helper()
	if os.Getenv("GLMKIT_INTEROP") != "1" {
		t.Skip("interop tests skipped: set GLMKIT_INTEROP=1 (./scripts/test does, after installing Node packages with npm ci in test/interop)")
	}
}

func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("interop: node not found on PATH; run ./scripts/test (it installs Node.js packages)")
	}
	for _, p := range []string{"openai", "zhipuai-sdk-nodejs-v4", "@anthropic-ai/sdk"} {
		if _, err := os.Stat(filepath.Join("node_modules", p, "package.json")); err != nil {
			t.Fatalf("interop: node_modules/%s missing; run `npm ci` in test/interop (./scripts/test does)", p)
		}
	}
	return node
}

// env is one world of the tests: a fake upstream and one glm serve in front
// of it, on SQLite or on PostgreSQL.
type env struct {
	name     string
	upstream *zhipuaitest.Server
	serve    *serveProc
	key      string // a key of glm serve, "id.secret"
	brokeKey string // a key of an account with no credit
	dir      string
	dropDB   func()
	once     sync.Once
	err      error
}

var (
	sqliteWorld = &env{name: "sqlite"}
	pgWorld     = &env{name: "postgres"}
	binOnce     sync.Once
	binDir      string
	binPath     string
	binErr      error
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, w := range []*env{sqliteWorld, pgWorld} {
		if w.serve != nil {
			w.serve.stop()
		}
		if w.upstream != nil {
			w.upstream.Close()
		}
		if w.dropDB != nil {
			w.dropDB()
		}
		if w.dir != "" && code == 0 {
			_ = os.RemoveAll(w.dir)
		} else if w.dir != "" {
			fmt.Fprintf(os.Stderr, "interop: kept %s (glm serve log: serve.log)\n", w.dir)
		}
	}
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// glmBinary builds cmd/glm once for all worlds.
func glmBinary() (string, error) {
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "glmkit-interop-bin-")
		if binErr == nil {
			binPath, binErr = buildGLM(binDir)
		}
	})
	return binPath, binErr
}

// setup starts (once) the fake upstream and glm serve on SQLite in front of it.
func setup(t *testing.T) *env {
	t.Helper()
	requireInterop(t)
	return start(t, sqliteWorld, func(dir string) (string, error) { return filepath.Join(dir, "glm.db"), nil })
}

// setupPostgres is setup with glm serve on a fresh database of the
// PostgreSQL server named by GLMKIT_TEST_PG_DSN (./scripts/test starts one).
func setupPostgres(t *testing.T) *env {
	t.Helper()
	requireInterop(t)
	dsn := os.Getenv("GLMKIT_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("GLMKIT_TEST_PG_DSN not set: skipping glm serve on PostgreSQL (./scripts/test sets it)")
	}
	return start(t, pgWorld, func(string) (string, error) {
		db, drop, err := freshDatabase(dsn)
		pgWorld.dropDB = drop
		return db, err
	})
}

func start(t *testing.T, w *env, database func(dir string) (string, error)) *env {
	t.Helper()
	w.once.Do(func() {
		bin, err := glmBinary()
		if err != nil {
			w.err = err
			return
		}
		if w.dir, w.err = os.MkdirTemp("", "glmkit-interop-"+w.name+"-"); w.err != nil {
			return
		}
		db, err := database(w.dir)
		if err != nil {
			w.err = err
			return
		}
		w.upstream = zhipuaitest.NewServer()
		w.upstream.Handle(script)
		w.serve, w.err = startServe(bin, w.dir, db, w.upstream)
		if w.err != nil {
			return
		}
		if w.key, w.err = w.serve.createKey("--name", "interop"); w.err != nil {
			return
		}
		w.brokeKey, w.err = w.serve.createBrokeKey()
	})
	if w.err != nil {
		msg := w.err.Error()
		if w.serve != nil {
			msg += "\n--- glm serve log (tail) ---\n" + w.serve.logTail(60)
		}
		t.Fatalf("interop setup (%s): %s", w.name, msg)
	}
	if d := w.serve.dataRaces(); d != "" {
		t.Fatalf("glm serve reported a data race:\n%s", d)
	}
	return w
}

// freshDatabase creates an empty database next to the one dsn names and
// returns its DSN and a function that drops it.
func freshDatabase(dsn string) (string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("GLMKIT_TEST_PG_DSN: %w", err)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("glmkit_interop_%d", time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database for glm serve: %w", err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		admin.Close()
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}

// ---- glm serve process -------------------------------------------------------------

type serveProc struct {
	dir  string
	bin  string
	db   string
	addr string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	werr error
}

func (s *serveProc) baseURL() string { return "http://" + s.addr + "/api/paas/v4" }

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// buildGLM compiles cmd/glm, with the race detector when this test runs with it,
// so races in the server under real clients fail the test too.
func buildGLM(dir string) (string, error) {
	bin := filepath.Join(dir, "glm")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/glmkit/glmkit/cmd/glm")
	cmd := exec.Command("go", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/glm: %v\n%s", err, out)
	}
	return bin, nil
}

// glmEnv is the environment of every glm process: an isolated HOME and no
// cloud key from the developer's shell (the config file names the upstream).
func glmEnv(dir string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "HOME" || k == "XDG_CONFIG_HOME" || k == "XDG_DATA_HOME" || strings.HasPrefix(k, "ZHIPUAI_") || strings.HasPrefix(k, "GLMKIT_") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, ".config"), "XDG_DATA_HOME="+filepath.Join(dir, ".local", "share"))
}

func startServe(bin, dir, db string, up *zhipuaitest.Server) (*serveProc, error) {
	cfg := map[string]any{
		"backends": []map[string]any{{
			"name":     "fake-cloud",
			"type":     "zhipu",
			"base_url": up.URL(),
			"api_key":  up.APIKey,
		}},
	}
	return startServeWith(bin, dir, db, cfg)
}

// startServeWith starts glm serve with the backends config cfg and extra
// flags, and waits until it is healthy.
func startServeWith(bin, dir, db string, cfg map[string]any, extra ...string) (*serveProc, error) {
	cfgPath := filepath.Join(dir, "config.json")
	b, _ := json.MarshalIndent(cfg, "", "  ")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	s := &serveProc{dir: dir, bin: bin, db: db, addr: addr, log: logf, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"serve", "--addr", addr, "--db", s.db, "--data-dir", dir, "--config", cfgPath}, extra...)...)
	s.cmd.Dir = dir
	s.cmd.Env = glmEnv(dir)
	s.cmd.Stdout = logf
	s.cmd.Stderr = logf
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start glm serve: %w", err)
	}
	go func() { s.werr = s.cmd.Wait(); close(s.done) }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			return s, fmt.Errorf("glm serve exited during start-up: %v", s.werr)
		default:
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			return s, fmt.Errorf("glm serve not healthy on %s after 60s (last: %v)", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createKey runs `glm keys create --json` (plus args) on the server's
// database and returns the full key from its JSON output.
func (s *serveProc) createKey(args ...string) (string, error) {
	args = append([]string{"keys", "create", "--json", "--db", s.db, "--data-dir", s.dir}, args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Env = glmEnv(s.dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("glm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	key := findKey(out)
	if key == "" {
		return "", fmt.Errorf("glm %s: no id.secret key in the output:\n%s", strings.Join(args, " "), out)
	}
	return key, nil
}

// createBrokeKey makes an account with no package and no cash, and a key of it.
func (s *serveProc) createBrokeKey() (string, error) {
	cmd := exec.Command(s.bin, "accounts", "create", "broke", "--name", "no credit", "--db", s.db, "--data-dir", s.dir)
	cmd.Dir = s.dir
	cmd.Env = glmEnv(s.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("glm accounts create broke: %v\n%s", err, out)
	}
	return s.createKey("--account", "broke", "--name", "broke")
}

// findKey looks for the full key in `keys create --json` output: the value of
// "key" (or "api_key"), else any string value shaped like id.secret.
func findKey(out []byte) string {
	var v any
	if err := json.Unmarshal(bytes.TrimSpace(out), &v); err != nil {
		return ""
	}
	shaped := regexp.MustCompile(`^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}$`)
	var found string
	var walk func(any, string)
	walk = func(x any, name string) {
		switch x := x.(type) {
		case map[string]any:
			for _, k := range []string{"key", "api_key", "apikey", "APIKey", "Key"} {
				if s, ok := x[k].(string); ok && shaped.MatchString(s) {
					found = s
					return
				}
			}
			for k, y := range x {
				if found == "" {
					walk(y, k)
				}
			}
		case []any:
			for _, y := range x {
				if found == "" {
					walk(y, name)
				}
			}
		case string:
			if found == "" && shaped.MatchString(x) && !strings.Contains(strings.ToLower(name), "mask") {
				found = x
			}
		}
	}
	walk(v, "")
	return found
}

func (s *serveProc) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	_ = s.log.Close()
}

func (s *serveProc) logText() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "serve.log"))
	return string(b)
}

func (s *serveProc) logTail(n int) string {
	lines := strings.Split(strings.TrimRight(s.logText(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// dataRaces returns the race reports in the server's log, if any.
func (s *serveProc) dataRaces() string {
	text := s.logText()
	i := strings.Index(text, "WARNING: DATA RACE")
	if i < 0 {
		return ""
	}
	return text[i:min(len(text), i+6000)]
}

// ---- the npm clients -----------------------------------------------------------------

type caseResult struct {
	Case   string          `json:"case"`
	OK     bool            `json:"ok"`
	MS     int             `json:"ms"`
	Detail json.RawMessage `json:"detail"`
}

// runNode runs run.mjs against baseURL and returns its results by case.
func runNode(t *testing.T, baseURL, key, brokeKey string) map[string]caseResult {
	t.Helper()
	return runNodeScript(t, "run.mjs", "BASE_URL="+baseURL, "API_KEY="+key, "BROKE_KEY="+brokeKey, "ZHIPUAI_API_KEY=", "ZHIPUAI_BASE_URL=")
}

// runNodeScript runs a case script with env added and returns its results
// by case.
func runNodeScript(t *testing.T, script string, env ...string) map[string]caseResult {
	t.Helper()
	node := requireNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.Bytes())
	}
	results := map[string]caseResult{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var r caseResult
		if err := json.Unmarshal(line, &r); err != nil {
			t.Errorf("node output line is not a result: %s", line)
			continue
		}
		if _, dup := results[r.Case]; dup {
			t.Errorf("case %s reported twice", r.Case)
		}
		results[r.Case] = r
	}
	if len(results) == 0 {
		t.Fatalf("node %s printed no results (exit %v)\nstdout:\n%s\nstderr:\n%s", script, err, out, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Logf("node stderr:\n%s", stderr.Bytes())
	}
	return results
}

// checkNodeResults turns each case's line into a subtest.
func checkNodeResults(t *testing.T, results map[string]caseResult) {
	t.Helper()
	for _, name := range nodeCases {
		t.Run(name, func(t *testing.T) {
			r, ok := results[name]
			if !ok {
				t.Fatalf("run.mjs did not report case %s", name)
			}
			if !r.OK {
				t.Fatalf("%s failed: %s", name, r.Detail)
			}
			if strings.HasSuffix(name, "/embeddings") {
				checkEmbeddingHead(t, r.Detail)
			}
			t.Logf("ok in %d ms: %s", r.MS, r.Detail)
		})
	}
	for name := range results {
		if !slices.Contains(nodeCases, name) {
			t.Errorf("run.mjs reported an unknown case %q (add it to nodeCases)", name)
		}
	}
}

// checkEmbeddingHead checks that the vector the client got is the upstream's
// (the fake's deterministic HashVector), not another model's, from the
// fingerprint run.mjs reports.
func checkEmbeddingHead(t *testing.T, detail json.RawMessage) {
	t.Helper()
	var d struct {
		Dims    int          `json:"dims"`
		Nonzero int          `json:"nonzero"`
		Sample  [][2]float64 `json:"sample"`
	}
	if err := json.Unmarshal(detail, &d); err != nil {
		t.Fatalf("embeddings detail: %v", err)
	}
	want := zhipuaitest.HashVector(embedText, embedDims)
	nonzero := 0
	for _, x := range want {
		if x != 0 {
			nonzero++
		}
	}
	if d.Dims != embedDims || d.Nonzero != nonzero || len(d.Sample) == 0 {
		t.Fatalf("embeddings: dims %d nonzero %d (upstream vector: %d dims, %d nonzero)", d.Dims, d.Nonzero, embedDims, nonzero)
	}
	for _, iv := range d.Sample {
		i, x := int(iv[0]), iv[1]
		if i < 0 || i >= len(want) || math.Abs(x-want[i]) > 1e-7 {
			t.Fatalf("embedding[%d] = %v, upstream sent %v: the vector did not come from the configured backend", i, x, want[min(max(i, 0), len(want)-1)])
		}
	}
}

// TestHarnessAgainstFakeUpstream runs the npm clients straight against the fake
// upstream. It checks the harness itself (and the fake against real clients),
// so that a failure of TestNodeClientsAgainstServe is glm serve's.
func TestHarnessAgainstFakeUpstream(t *testing.T) {
	requireInterop(t)
	requireNode(t)
	up := zhipuaitest.NewServer()
	defer up.Close()
	up.Handle(script)
	up.AddKey(fakeBrokeKey)
	checkNodeResults(t, runNode(t, up.URL(), up.APIKey, fakeBrokeKey))
}

// TestNodeClientsAgainstServe runs the real npm packages
// `openai` and `zhipuai-sdk-nodejs-v4` against glm serve.
func TestNodeClientsAgainstServe(t *testing.T) {
	e := setup(t)
	checkNodeResults(t, runNode(t, e.serve.baseURL(), e.key, e.brokeKey))
	if d := e.serve.dataRaces(); d != "" {
		t.Fatalf("glm serve reported a data race:\n%s", d)
	}
}

// TestNodeClientsAgainstServePostgres runs the same npm cases against glm
// serve on PostgreSQL (keys, metering, async tasks and the request log in
// the database that replicas share).
func TestNodeClientsAgainstServePostgres(t *testing.T) {
	e := setupPostgres(t)
	checkNodeResults(t, runNode(t, e.serve.baseURL(), e.key, e.brokeKey))
	if d := e.serve.dataRaces(); d != "" {
		t.Fatalf("glm serve reported a data race:\n%s", d)
	}
}

// ---- our Go SDK: the same cases ----------------------------------------------------

func goClient(t *testing.T, e *env, opts ...zhipuai.Option) *zhipuai.Client {
	t.Helper()
	base := []zhipuai.Option{zhipuai.WithBaseURL(e.serve.baseURL()), zhipuai.WithAPIKey(e.key), zhipuai.WithTimeout(30 * time.Second)}
	c, err := zhipuai.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var weatherTool = zhipuai.FunctionTool("get_weather", "获取指定城市的天气", map[string]any{
	"type": "object",
	"properties": map[string]any{
		"location": map[string]any{"type": "string", "description": "城市，例如 北京"},
		"unit":     map[string]any{"type": "string", "enum": []string{"c", "f"}},
	},
	"required": []string{"location"},
})

func checkUsage(t *testing.T, u *zhipuai.Usage) {
	t.Helper()
	if u == nil {
		t.Fatal("usage missing")
	}
	if u.PromptTokens != usageIn || u.CompletionTokens != usageOut || u.TotalTokens != usageIn+usageOut {
		t.Fatalf("usage = %+v, want %d + %d", *u, usageIn, usageOut)
	}
}

func checkWeatherCall(t *testing.T, calls []zhipuai.ToolCall) string {
	t.Helper()
	if len(calls) != 1 {
		t.Fatalf("want 1 tool call, got %+v", calls)
	}
	c := calls[0]
	if c.Function.Name != "get_weather" {
		t.Fatalf("tool name %q", c.Function.Name)
	}
	var got, want any
	if err := json.Unmarshal([]byte(c.Function.Arguments), &got); err != nil {
		t.Fatalf("arguments %q: %v", c.Function.Arguments, err)
	}
	_ = json.Unmarshal([]byte(weatherArg), &want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("arguments %s, want %s", c.Function.Arguments, weatherArg)
	}
	if c.ID == "" {
		t.Fatal("tool call without id")
	}
	return c.ID
}

func TestGoSDKAgainstServe(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	chat := func(t *testing.T, c *zhipuai.Client, name string) {
		r, err := c.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{
			Model:    "glm-4",
			Messages: []zhipuai.Message{zhipuai.SystemMessage("你是一个乐于解答各种问题的助手。"), zhipuai.UserMessage(prompt(name))},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Choices[0].Message.Content; got != expectedText(name) {
			t.Fatalf("content %q, want %q", got, expectedText(name))
		}
		if r.Choices[0].FinishReason != "stop" {
			t.Fatalf("finish_reason %q", r.Choices[0].FinishReason)
		}
		checkUsage(t, &r.Usage)
	}
	t.Run("go/chat-jwt", func(t *testing.T) { chat(t, goClient(t, e), "go/chat-jwt") })
	t.Run("go/chat-raw-key", func(t *testing.T) { chat(t, goClient(t, e, zhipuai.WithRawKey()), "go/chat-raw-key") })

	t.Run("go/stream", func(t *testing.T) {
		const name = "go/stream"
		s, err := goClient(t, e).Chat.Completions.Stream(ctx, &zhipuai.ChatCompletionRequest{
			Model: "glm-4", Messages: []zhipuai.Message{zhipuai.UserMessage(prompt(name))},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var acc zhipuai.ChatCompletionAccumulator
		pieces := 0
		for s.Next() {
			ch := s.Current()
			acc.AddChunk(ch)
			if len(ch.Choices) > 0 && ch.Choices[0].Delta.Content != "" {
				pieces++
			}
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if got := acc.Choices[0].Message.Content; got != expectedText(name) {
			t.Fatalf("streamed %q, want %q", got, expectedText(name))
		}
		if pieces < 2 {
			t.Fatalf("want several pieces, got %d", pieces)
		}
		if acc.Choices[0].FinishReason != "stop" {
			t.Fatalf("finish_reason %q", acc.Choices[0].FinishReason)
		}
		checkUsage(t, &acc.Usage)
	})

	t.Run("go/tools", func(t *testing.T) {
		const name = "go/tools"
		c := goClient(t, e)
		msgs := []zhipuai.Message{zhipuai.UserMessage(prompt(name))}
		r1, err := c.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: msgs, Tools: []zhipuai.Tool{weatherTool}, ToolChoice: "auto"})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Choices[0].FinishReason != "tool_calls" {
			t.Fatalf("finish_reason %q", r1.Choices[0].FinishReason)
		}
		id := checkWeatherCall(t, r1.Choices[0].Message.ToolCalls)
		msgs = append(msgs, r1.Choices[0].Message.ToParam(), zhipuai.ToolMessage(id, toolOutput))
		r2, err := c.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: msgs, Tools: []zhipuai.Tool{weatherTool}})
		if err != nil {
			t.Fatal(err)
		}
		if got := r2.Choices[0].Message.Content; got != toolResultText(id, toolOutput) {
			t.Fatalf("answer after tool result %q, want %q", got, toolResultText(id, toolOutput))
		}
	})

	t.Run("go/tools-stream", func(t *testing.T) {
		const name = "go/tools-stream"
		s, err := goClient(t, e).Chat.Completions.Stream(ctx, &zhipuai.ChatCompletionRequest{
			Model: "glm-4", Messages: []zhipuai.Message{zhipuai.UserMessage(prompt(name))}, Tools: []zhipuai.Tool{weatherTool},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var acc zhipuai.ChatCompletionAccumulator
		for s.Next() {
			acc.AddChunk(s.Current())
		}
		if err := s.Err(); err != nil {
			t.Fatal(err)
		}
		if acc.Choices[0].FinishReason != "tool_calls" {
			t.Fatalf("finish_reason %q", acc.Choices[0].FinishReason)
		}
		checkWeatherCall(t, acc.Choices[0].Message.ToolCalls)
	})

	t.Run("go/embeddings", func(t *testing.T) {
		c := goClient(t, e)
		get := func(format string) zhipuai.Vector {
			r, err := c.Embeddings.Create(ctx, &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{embedText}, EncodingFormat: format})
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if len(r.Data) != 1 || len(r.Data[0].Embedding) != embedDims {
				t.Fatalf("%s: got %d vectors of %d dims", format, len(r.Data), len(r.Data[0].Embedding))
			}
			return r.Data[0].Embedding
		}
		fl, b64 := get(zhipuai.EncodingFloat), get(zhipuai.EncodingBase64)
		want := zhipuaitest.HashVector(embedText, embedDims)
		for i := range want {
			if float32(fl[i]) != float32(want[i]) || float32(b64[i]) != float32(want[i]) {
				t.Fatalf("value %d: float %v base64 %v upstream %v", i, fl[i], b64[i], want[i])
			}
		}
	})

	t.Run("go/async", func(t *testing.T) {
		const name = "go/async"
		c := goClient(t, e)
		st, err := c.Chat.AsyncCompletions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: []zhipuai.Message{zhipuai.UserMessage(prompt(name))}})
		if err != nil {
			t.Fatal(err)
		}
		if st.TaskStatus != zhipuai.TaskProcessing || st.ID == "" {
			t.Fatalf("submit: %+v", st)
		}
		var seen []string
		res, err := c.Chat.AsyncCompletions.Wait(ctx, st.ID,
			zhipuai.WithPollInterval(100*time.Millisecond, 300*time.Millisecond),
			zhipuai.WithOnPoll(func(r *zhipuai.AsyncCompletion) { seen = append(seen, r.TaskStatus) }))
		if err != nil {
			t.Fatalf("wait: %v (polls %v)", err, seen)
		}
		if res.TaskStatus != zhipuai.TaskSuccess || len(res.Choices) == 0 || res.Choices[0].Message.Content != expectedText(name) {
			t.Fatalf("result %+v (polls %v)", res, seen)
		}
		checkUsage(t, res.Usage)
		t.Logf("polls: %v", seen)
	})

	badKeyCase := func(t *testing.T, opts ...zhipuai.Option) {
		c := goClient(t, e, append([]zhipuai.Option{zhipuai.WithAPIKey(badKey), zhipuai.WithMaxRetries(0)}, opts...)...)
		_, err := c.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: []zhipuai.Message{zhipuai.UserMessage("hi")}})
		var apiErr *zhipuai.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("want *APIError, got %v", err)
		}
		if apiErr.StatusCode != http.StatusUnauthorized || apiErr.Code != "1002" {
			t.Fatalf("got status %d code %q (%s), want 401 1002", apiErr.StatusCode, apiErr.Code, apiErr.Message)
		}
		if strings.Contains(err.Error(), "NoSuchSecret") {
			t.Fatalf("the error leaks the key secret: %v", err)
		}
	}
	t.Run("go/arrears", func(t *testing.T) {
		c := goClient(t, e, zhipuai.WithAPIKey(e.brokeKey))
		start := time.Now()
		_, err := c.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: []zhipuai.Message{zhipuai.UserMessage(prompt("go/arrears"))}})
		var apiErr *zhipuai.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "1113" {
			t.Fatalf("want 429 / 1113, got %v", err)
		}
		// 1113 cannot be helped by waiting: the SDK must not retry it.
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("1113 took %v: retried?", d)
		}
	})
	t.Run("go/bad-key-jwt", func(t *testing.T) { badKeyCase(t) })
	t.Run("go/bad-key-raw", func(t *testing.T) { badKeyCase(t, zhipuai.WithRawKey()) })

	if d := e.serve.dataRaces(); d != "" {
		t.Fatalf("glm serve reported a data race:\n%s", d)
	}
}

// TestServeModelsAndHealth checks the two plain routes every client probes.
func TestServeModelsAndHealth(t *testing.T) {
	e := setup(t)
	resp, err := http.Get("http://" + e.serve.addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	c := goClient(t, e)
	ml, err := c.Models.List(context.Background())
	if err != nil {
		t.Fatalf("GET /models: %v", err)
	}
	ids := []string{}
	for _, m := range ml.Data {
		ids = append(ids, m.ID)
	}
	for _, want := range []string{"glm-4", "embedding-2"} {
		if !slices.Contains(ids, want) {
			t.Errorf("GET /models lacks %s: %v", want, ids)
		}
	}
}

// TestMeteredUsage follows one sync and one streamed request of our SDK into
// glm serve's usage rows (`glm usage --json`): the upstream's usage is what
// is charged, at the shipped glm-4 price (0.1 CNY per 1K tokens = 100 000
// micros), and what paid for it adds up.
func TestMeteredUsage(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := goClient(t, e)

	var resp *http.Response
	if _, err := c.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{
		Model: "glm-4", Messages: []zhipuai.Message{zhipuai.UserMessage(prompt("go/metered-sync"))},
	}, zhipuai.WithResponseInto(&resp)); err != nil {
		t.Fatal(err)
	}
	syncID := resp.Header.Get("X-Request-Id")

	s, err := c.Chat.Completions.Stream(ctx, &zhipuai.ChatCompletionRequest{
		Model: "glm-4", Messages: []zhipuai.Message{zhipuai.UserMessage(prompt("go/metered-stream"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	streamID := s.Header().Get("X-Request-Id")
	if syncID == "" || streamID == "" {
		t.Fatalf("X-Request-Id missing (sync %q, stream %q)", syncID, streamID)
	}

	type row struct {
		RequestID        string `json:"request_id"`
		Model            string `json:"model"`
		PromptTokens     int64  `json:"prompt_tokens"`
		CompletionTokens int64  `json:"completion_tokens"`
		Outcome          string `json:"outcome"`
		Estimated        bool   `json:"estimated"`
		Charge           struct {
			Amount    int64 `json:"amount"`
			Discount  int64 `json:"discount"`
			Cash      int64 `json:"cash"`
			Shortfall int64 `json:"shortfall"`
		} `json:"charge"`
	}
	want := map[string]bool{syncID: true, streamID: true}
	var found map[string]row
	deadline := time.Now().Add(15 * time.Second)
	for {
		cmd := exec.Command(e.serve.bin, "usage", "--json", "--model", "glm-4", "--db", e.serve.db, "--data-dir", e.serve.dir)
		cmd.Dir = e.serve.dir
		cmd.Env = glmEnv(e.serve.dir)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("glm usage --json: %v\n%s", err, ee.Stderr)
			}
			t.Fatalf("glm usage --json: %v", err)
		}
		var rows []row
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("glm usage --json output: %v\n%s", err, out)
		}
		found = map[string]row{}
		for _, r := range rows {
			if want[r.RequestID] {
				found[r.RequestID] = r
			}
		}
		if len(found) == len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // usage rows are written in batches
	}
	for id := range want {
		r, ok := found[id]
		if !ok {
			t.Errorf("no usage row for request %s (rows are flushed in batches; waited 15s)", id)
			continue
		}
		if r.PromptTokens != usageIn || r.CompletionTokens != usageOut || r.Outcome != "ok" || r.Estimated {
			t.Errorf("usage row %s: %+v, want %d+%d tokens from the upstream, outcome ok, not estimated", id, r, usageIn, usageOut)
		}
		const price = 100_000 // micros per 1K tokens, glm-4
		if wantAmount := int64((usageIn+usageOut)*price+999) / 1000; r.Charge.Amount != wantAmount {
			t.Errorf("usage row %s: amount %d micros, want %d", id, r.Charge.Amount, wantAmount)
		}
		if r.Charge.Discount+r.Charge.Cash+r.Charge.Shortfall != r.Charge.Amount {
			t.Errorf("usage row %s: parts %+v do not add up to the amount", id, r.Charge)
		}
	}
}
