package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment of the baseline child process: the load tool runs the bare
// reverse proxy as a copy of itself, so the baseline is a separate process
// like glm serve and the two RSS and CPU figures compare like with like.
const (
	envRole     = "GLMLOAD_ROLE"
	envUpstream = "GLMLOAD_UPSTREAM"
	roleProxy   = "baseline-proxy"
)

// chatPath is where both targets serve chat completions.
const chatPath = "/api/paas/v4/chat/completions"

// embedPath is where both targets serve embeddings.
const embedPath = "/api/paas/v4/embeddings"

// proc is a server process under test.
type proc struct {
	name   string
	cmd    *exec.Cmd
	base   string // http://host:port
	key    string // API key printed by glm serve on first start
	stderr string // file with the process's stderr, shown when it fails
	done   chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the process to drain (SIGTERM) and kills it if it does not.
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the end of the process's stderr for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.stderr)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// startProc runs cmd, sends its stderr to a file in dir and waits until a
// stdout line starts with listenPrefix followed by the base URL; lines
// indented by four spaces before it are taken as the API key (glm serve's
// first-start banner).
func startProc(ctx context.Context, name string, cmd *exec.Cmd, dir, listenPrefix string) (*proc, error) {
	errPath := filepath.Join(dir, name+".stderr")
	ef, err := os.Create(errPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer ef.Close() // the child keeps its own descriptor
	cmd.Stderr = ef
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// A child outliving a killed load tool would keep a port and a CPU
	// share on a machine others use; the kernel ends it with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, stderr: errPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()

	type ready struct{ base, key string }
	got := make(chan ready, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var key string
		found := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case found:
			case key == "" && isKeyLine(line):
				key = strings.TrimSpace(line)
			case strings.HasPrefix(line, listenPrefix):
				found = true
				got <- ready{base: strings.TrimSpace(strings.TrimPrefix(line, listenPrefix)), key: key}
			}
		}
		// Keep draining so a chatty child never blocks on a full pipe.
		io.Copy(io.Discard, out)
	}()
	// Start-up includes opening and migrating SQLite, slow on a busy machine.
	wait := time.NewTimer(90 * time.Second)
	defer wait.Stop()
	select {
	case r := <-got:
		p.base, p.key = r.base, r.key
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited during start-up: %s", name, p.tail())
	case <-wait.C:
		p.stop()
		return nil, fmt.Errorf("%s did not start within 90s: %s", name, p.tail())
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
}

// isKeyLine matches the banner's key line: indented, one "id.secret" word.
func isKeyLine(line string) bool {
	k := strings.TrimSpace(line)
	id, secret, ok := strings.Cut(k, ".")
	return strings.HasPrefix(line, "    ") && ok && id != "" && secret != "" &&
		!strings.ContainsAny(k, " \t") && !strings.Contains(secret, ".")
}

// startBaseline runs this program again as a bare httputil.ReverseProxy in
// front of upstream.
func startBaseline(ctx context.Context, dir, upstream string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envRole+"="+roleProxy, envUpstream+"="+upstream)
	return startProc(ctx, "baseline", cmd, dir, "glmload baseline: listening on ")
}

// glmConfig is the backends file: one zhipu backend at the instant upstream.
func glmConfig(upstream string, models []string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"backends": []any{map[string]any{
			"name": "instant", "type": "zhipu",
			"base_url": upstream + "/api/paas/v4",
			"api_key":  "glmload.instant-upstream",
			"models":   models,
		}},
	}, "", "  ")
}

// startGlm runs `glm serve` on a fresh data directory (SQLite) with extra
// flags, and returns it with the API key it created.
func startGlm(ctx context.Context, name, bin, dir, upstream string, models []string, extra []string) (*proc, error) {
	data := filepath.Join(dir, name)
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cfg, err := glmConfig(upstream, models)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(data, "backends.json")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", data, "--config", cfgPath}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = cleanEnv()
	p, err := startProc(ctx, name, cmd, dir, "glm serve: listening on ")
	if err != nil {
		return nil, err
	}
	if p.key == "" {
		p.stop()
		return nil, fmt.Errorf("%s: no API key in the first-start banner", name)
	}
	return p, nil
}

// cleanEnv drops the variables that would point glm serve at another data
// directory, master key or upstream than the ones of this run.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "GLMKIT_HOME", "GLMKIT_MASTER_KEY", "ZHIPUAI_API_KEY", "ZHIPUAI_BASE_URL":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// buildGlm builds cmd/glm of the module the tool is run from.
func buildGlm(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "glm")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/glmkit/glmkit/cmd/glm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build glm (run from inside the module, or pass -glm): %w\n%s", err, out)
	}
	return bin, nil
}

// runBaselineProxy is the child role: a bare ReverseProxy, the thing any
// gateway is measured against. Its transport keeps as many idle upstream
// connections as glm serve's (upstream.NewHTTPClient), because the default
// of 2 per host would make the baseline dial per request under load and
// flatter every target.
func runBaselineProxy() {
	target, err := url.Parse(os.Getenv(envUpstream))
	if err != nil || target.Host == "" {
		log.Fatalf("glmload baseline: bad %s %q", envUpstream, os.Getenv(envUpstream))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 512
	tr.MaxIdleConnsPerHost = 128
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     tr,
		FlushInterval: -1, // flush every write, as an SSE proxy must
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatalf("glmload baseline: %v", err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Printf("glmload baseline: listening on http://%s\n", ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("glmload baseline: %v", err)
	}
}

// procStatus reads VmRSS and VmHWM (kB) of a process.
func procStatus(pid int) (rssKB, hwmKB int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rssKB = n
		case "VmHWM":
			hwmKB = n
		}
	}
	return rssKB, hwmKB, nil
}

// clockTicks is USER_HZ, 100 on every Linux platform Go supports; /proc
// reports CPU times in these ticks.
const clockTicks = 100

// procCPU returns user+system CPU time of a process.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields after it are
	// fixed: state is field 3, utime 14 and stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
