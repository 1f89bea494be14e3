package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// Account is the account every fault's load is charged to; it holds a
// small package (used up early) and cash, so both payers move.
const (
	Account       = "faults"
	packageTokens = 20_000
	topupCNY      = 100_000 // a soak's worth
	adminToken    = "faults-admin-token-0123456789"
	masterKeyHex  = "6661756c74732d6d61737465722d6b65792d3031323334353637383961626364" // 32 bytes
)

// site is one run's world: the scripted upstream, the database, the
// servers on it and the account the load is charged to.
type site struct {
	opts Options
	dir  string
	up   *zhipuaitest.Server
	cfg  string   // backends file
	dsn  string   // the database, as glm serve's --db takes it
	dbf  []string // the database flags of every glm command
	env  []string
	key  string
	db   *store.DB // the harness's own handle, for checks

	mu   sync.Mutex
	srvs []*server
	// replica is the second server the kill fault restarted last.
	replica *server
}

// server is one running glm serve process.
type server struct {
	cmd    *exec.Cmd
	base   string
	name   string
	done   chan struct{}
	stderr *tail
}

// tail keeps the last bytes a process wrote, for the failure message.
type tail struct {
	mu sync.Mutex
	b  []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > 16<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-8<<10:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// newSite starts the scripted upstream, writes the backends file, creates
// the account with its key, package and cash, and opens the checks'
// database handle.
func newSite(ctx context.Context, o Options) (*site, error) {
	s := &site{opts: o, dir: o.Dir, up: zhipuaitest.NewServer()}
	s.up.Handle(script)
	s.env = []string{"GLMKIT_HOME=", "ZHIPUAI_API_KEY=", "GLMKIT_MASTER_KEY=" + masterKeyHex, "GLMKIT_ADMIN_TOKEN=" + adminToken}
	if o.PGDSN != "" {
		s.dsn = o.PGDSN
	} else {
		s.dsn = filepath.Join(s.dir, "data", "glm.db")
	}
	s.dbf = []string{"--db", s.dsn, "--data-dir", filepath.Join(s.dir, "data")}
	s.cfg = filepath.Join(s.dir, "backends.json")
	// A short circuit-breaker cooldown and backend timeout, so the server
	// recovers from a fault, and a sync call to a hung upstream ends,
	// within the suite's time.
	cfg := fmt.Sprintf(`{"backends":[{"name":"cloud","type":"zhipu","base_url":%q,"api_key":%q,"timeout":"4s"}],"circuit_breaker":{"cooldown":"1s"}}`,
		s.up.URL(), s.up.APIKey)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	// Operator commands refuse a database that does not exist: make it.
	if _, err := s.glm(ctx, "init"); err != nil {
		return nil, err
	}
	if _, err := s.glm(ctx, "accounts", "create", Account); err != nil {
		return nil, err
	}
	out, err := s.glm(ctx, "keys", "create", "--account", Account, "--json")
	if err != nil {
		return nil, err
	}
	var k struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(out, &k); err != nil || k.Key == "" {
		return nil, fmt.Errorf("keys create --json: %q: %v", out, err)
	}
	s.key = k.Key
	if _, err := s.glm(ctx, "topup", "--account", Account, "--cny", strconv.Itoa(topupCNY)); err != nil {
		return nil, err
	}
	if _, err := s.glm(ctx, "packages", "grant", "--account", Account, "--tokens", strconv.Itoa(packageTokens), "--days", "30"); err != nil {
		return nil, err
	}
	if s.db, err = store.OpenDB(ctx, s.dsn); err != nil {
		return nil, err
	}
	return s, nil
}

// close stops every server (SIGTERM, so leases go back) and the upstream.
func (s *site) close() {
	s.mu.Lock()
	srvs := s.srvs
	s.srvs = nil
	s.mu.Unlock()
	for _, p := range srvs {
		_ = p.stop(30 * time.Second)
	}
	s.up.Close()
	if s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
}

// glm runs a glm command on the site's database.
func (s *site) glm(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, s.opts.Bin, append(args, s.dbf...)...)
	cmd.Env = append(os.Environ(), s.env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("glm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

var listenRE = regexp.MustCompile(`^glm serve: listening on (http://\S+)$`)

// Server bounds: short, so each fault shows its cut within a test's time.
var serveFlags = []string{
	"--addr", "127.0.0.1:0", "--welcome-tokens", "0", "--lease-ttl", "2s", "--task-lease", "2s",
	"--header-timeout", "2s", "--body-timeout", "2s", "--write-timeout", "1s", "--upstream-idle-timeout", "1s",
	"--drain-timeout", "5s", "--workers", "4", "--log-level", "warn",
}

// start runs a glm serve on the site's database and waits for its address.
func (s *site) start(ctx context.Context, name string) (*server, error) {
	data := filepath.Join(s.dir, "data-"+name)
	args := append([]string{"serve", "--config", s.cfg, "--db", s.dsn, "--data-dir", data}, serveFlags...)
	cmd := exec.Command(s.opts.Bin, args...)
	cmd.Env = append(os.Environ(), s.env...)
	p := &server{cmd: cmd, name: name, done: make(chan struct{}), stderr: &tail{}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	select {
	case p.base = <-addr:
	case <-p.done:
		return nil, fmt.Errorf("glm serve %s exited before listening: %s", name, p.stderr)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("glm serve %s did not listen within 60s: %s", name, p.stderr)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
	s.mu.Lock()
	s.srvs = append(s.srvs, p)
	s.mu.Unlock()
	return p, nil
}

// kill ends p with SIGKILL: no drain, no flush, no lease returned.
func (s *site) kill(p *server) error {
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.done
	s.forget(p)
	return nil
}

func (s *site) forget(p *server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.srvs {
		if q == p {
			s.srvs = append(s.srvs[:i], s.srvs[i+1:]...)
			return
		}
	}
}

// stop ends p with SIGTERM and waits for it to drain and exit.
func (p *server) stop(wait time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("glm serve %s did not exit within %s of SIGTERM", p.name, wait)
	}
}

// Resources is what a server process holds, read from /proc and /metrics.
type Resources struct {
	Goroutines int
	FDs        int
	RSSKiB     int
}

func (r Resources) String() string {
	return fmt.Sprintf("goroutines %d, fds %d, RSS %d KiB", r.Goroutines, r.FDs, r.RSSKiB)
}

// quiet reads p's resources once nothing of the suite's is left on it:
// the clients' idle connections are closed, and the figures are read
// until two reads a second apart agree (or 15 s have passed), so a
// connection still closing is not counted as growth.
func (p *server) quiet(ctx context.Context) (Resources, error) {
	clientTransport.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	last, err := p.resources(ctx)
	for deadline := time.Now().Add(15 * time.Second); err == nil && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		clientTransport.CloseIdleConnections()
		var r Resources
		if r, err = p.resources(ctx); err == nil && r.Goroutines == last.Goroutines && r.FDs == last.FDs {
			return r, nil
		}
		last = r
	}
	return last, err
}

// resources reads p's goroutines (go_goroutines on /metrics), open
// descriptors (/proc/PID/fd) and resident memory (/proc/PID/status).
func (p *server) resources(ctx context.Context) (Resources, error) {
	var r Resources
	pid := p.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return r, err
	}
	r.FDs = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return r, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			r.RSSKiB, _ = strconv.Atoi(f[1])
		}
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			r.Goroutines = int(f)
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if r.Goroutines == 0 {
		return r, errors.New("no go_goroutines on /metrics")
	}
	return r, nil
}
