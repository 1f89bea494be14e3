package analyst

// The hostile-code suite: model code that attacks the host, run through the
// real sandbox (bwrap, namespaces, cgroup). Each test checks the effect on
// the host — a file unchanged, a listener that saw no connection, no
// process left — not only what the code printed.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// hostileSandbox is a sandbox that must isolate: the suite skips only when
// bwrap cannot run here at all (then glm analyze refuses too, which
// TestSandboxRefusesWithoutIsolation checks).
func hostileSandbox(t *testing.T) *Sandbox {
	t.Helper()
	s := testSandbox(t)
	if err := s.Check(context.Background()); err != nil {
		t.Skipf("skipping: %v", err)
	}
	t.Logf("isolation: %s", s.Isolation())
	return s
}

func token(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func runHostile(t *testing.T, s *Sandbox, dir, code string) *Result {
	t.Helper()
	res, err := s.Run(context.Background(), dir, code)
	if err != nil {
		t.Fatalf("sandbox error: %v", err)
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", res.Stdout, res.Stderr)
	return res
}

// plantSecrets makes a directory outside the sandbox holding what an
// attacker wants: glm's admin token, master key and database.
func plantSecrets(t *testing.T) (dir string, contents map[string]string) {
	t.Helper()
	dir = workDir(t)
	contents = map[string]string{}
	for _, name := range []string{"admin.token", "master.key", "glm.db"} {
		v := "SECRET-" + name + "-" + token(t)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		contents[name] = v
	}
	return dir, contents
}

func TestHostileReadsHostSecrets(t *testing.T) {
	s := hostileSandbox(t)
	secrets, contents := plantSecrets(t)
	code := fmt.Sprintf(`import os
targets = ["/etc/shadow", "/proc/1/root/etc/shadow", "/root/.bash_history"]
targets += [os.path.join(%q, n) for n in ("admin.token", "master.key", "glm.db")]
for p in targets:
    try:
        print("READ", p, open(p).read())
    except OSError as e:
        print("DENIED", p, type(e).__name__)
# Search every directory it can see for the files by name.
for top in ("/", "/tmp", "/var", "/home", "/root"):
    for root, dirs, files in os.walk(top):
        if root.startswith("/proc") or root.startswith("/sys"):
            dirs[:] = []
            continue
        for f in files:
            if f in ("admin.token", "master.key", "glm.db", "shadow"):
                print("FOUND", os.path.join(root, f))
print("listing /:", sorted(os.listdir("/")))
print("listing /etc:", sorted(os.listdir("/etc")))
`, secrets)
	res := runHostile(t, s, workDir(t), code)
	if !res.OK() {
		t.Fatalf("the attack did not run to the end: %+v", res)
	}
	out := res.Stdout + res.Stderr
	for name, v := range contents {
		if strings.Contains(out, v) {
			t.Errorf("the code read %s: got its content in the output", name)
		}
	}
	if strings.Contains(out, "READ") || strings.Contains(out, "FOUND") {
		t.Errorf("got a READ or FOUND line, want none")
	}
	if n := strings.Count(res.Stdout, "DENIED"); n != 6 {
		t.Errorf("got %d DENIED lines, want 6", n)
	}
	for _, host := range []string{"'tmp'", "'home'", "'root'", "'var'", "'shadow'"} {
		if strings.Contains(res.Stdout, host) {
			t.Errorf("the code sees %s in its listing", host)
		}
	}
}

func TestHostileWritesOutside(t *testing.T) {
	s := hostileSandbox(t)
	secrets, contents := plantSecrets(t)
	tok := token(t)
	outside := filepath.Join(os.TempDir(), "glm-hostile-"+tok)
	// Canaries are new, uniquely named files: if the sandbox ever failed
	// open, the suite would leave a stray file behind, never damage the
	// host (existing system files are only opened for append, which
	// proves write access without changing a byte).
	canaries := []string{outside, "/etc/glm-hostile-" + tok, "/usr/lib/glm-hostile-" + tok,
		"/dev/shm/glm-hostile-" + tok, "/glm-hostile-" + tok}
	t.Cleanup(func() {
		for _, c := range canaries {
			os.Remove(c)
		}
	})
	code := fmt.Sprintf(`import os
tok = %q
created = [%q, os.path.join(%q, "new-file"), "/etc/glm-hostile-" + tok, "/usr/lib/glm-hostile-" + tok,
           "/dev/shm/glm-hostile-" + tok, "/glm-hostile-" + tok, "/proc/1/root/glm-hostile-" + tok]
appended = [os.path.join(%q, "admin.token"), "/etc/passwd", "/run/glm-analyze/preamble.py"]
for p in created:
    try:
        with open(p, "x") as f:
            f.write("pwned")
        print("WROTE", p)
    except OSError as e:
        print("DENIED", p, type(e).__name__)
for p in appended:
    try:
        with open(p, "a"):
            pass
        print("WROTE", p)
    except OSError as e:
        print("DENIED", p, type(e).__name__)
open("inside.txt", "w").write("ok")
print("inside ok")
`, tok, outside, secrets, secrets)
	dir := workDir(t)
	res := runHostile(t, s, dir, code)
	if !res.OK() || !strings.Contains(res.Stdout, "inside ok") {
		t.Fatalf("the attack did not run to the end: %+v", res)
	}
	if strings.Contains(res.Stdout, "WROTE") {
		t.Errorf("got a WROTE line, want none")
	}
	for _, c := range canaries {
		if _, err := os.Stat(c); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: got stat error %v, want it not to exist", c, err)
		}
	}
	for name, v := range contents {
		got, err := os.ReadFile(filepath.Join(secrets, name))
		if err != nil || string(got) != v {
			t.Errorf("%s changed: got %q (%v), want %q", name, got, err, v)
		}
	}
	if _, err := os.Stat(filepath.Join(secrets, "new-file")); err == nil {
		t.Errorf("got a new file in the secrets directory, want none")
	}
	if got, err := os.ReadFile(filepath.Join(dir, "inside.txt")); err != nil || string(got) != "ok" {
		t.Errorf("work dir write: got %q (%v), want %q", got, err, "ok")
	}
}

// acceptedWithin reports whether l got a connection; a connection the code
// made is already queued when Run returns.
func acceptedWithin(l net.Listener, d time.Duration) bool {
	type deadliner interface{ SetDeadline(time.Time) error }
	_ = l.(deadliner).SetDeadline(time.Now().Add(d))
	c, err := l.Accept()
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func TestHostileUnixSockets(t *testing.T) {
	s := hostileSandbox(t)
	path := filepath.Join(workDir(t), "host.sock")
	onPath, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer onPath.Close()
	_ = os.Chmod(path, 0o777)
	abstract := "@glm-hostile-" + token(t)
	onAbstract, err := net.Listen("unix", abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer onAbstract.Close()
	code := fmt.Sprintf(`import _socket
for addr in (%q, "\0" + %q):
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(addr)
        print("CONNECTED", repr(addr))
    except OSError as e:
        print("blocked", repr(addr), e)
`, path, abstract[1:])
	res := runHostile(t, s, workDir(t), code)
	if strings.Count(res.Stdout, "blocked") != 2 {
		t.Errorf("got output %q, want two blocked lines", res.Stdout)
	}
	if acceptedWithin(onPath, time.Second) {
		t.Errorf("the socket file's listener got a connection, want none")
	}
	if acceptedWithin(onAbstract, time.Second) {
		t.Errorf("the abstract socket's listener got a connection, want none")
	}
}

func TestHostileLoopbackTCP(t *testing.T) {
	s := hostileSandbox(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	// _socket is the C module under Python's socket guard: only the OS stops it.
	code := fmt.Sprintf(`import _socket
s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect(("127.0.0.1", %d))
    print("CONNECTED")
except OSError as e:
    print("blocked", e)
`, port)
	res := runHostile(t, s, workDir(t), code)
	if !strings.Contains(res.Stdout, "blocked") {
		t.Errorf("got output %q, want a blocked line", res.Stdout)
	}
	if acceptedWithin(l, time.Second) {
		t.Errorf("the loopback listener got a connection, want none")
	}
}

// markedProcesses lists the live (not zombie) host processes whose command
// line holds marker.
func markedProcesses(marker string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), marker) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i:]), ") Z") {
			continue
		}
		out = append(out, e.Name())
	}
	return out
}

// waitNoSurvivors waits, with a generous bound, until no process holds
// marker: the kernel tears a pid namespace down asynchronously.
func waitNoSurvivors(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := markedProcesses(marker)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d processes of the run alive after it ended (pids %v), want none", len(left), left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHostileSetsidDoubleForkSurvivor(t *testing.T) {
	s := hostileSandbox(t)
	marker := "glm-survivor-" + token(t)
	code := fmt.Sprintf(`import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c",
            "import time\nopen('alive', 'w').write('1')\nwhile True: time.sleep(1)\n", %q])
    os._exit(0)
os.wait()
while not os.path.exists("alive"):
    time.sleep(0.01)
print("detached child is running")
`, marker)
	dir := workDir(t)
	res := runHostile(t, s, dir, code)
	if !res.OK() || !strings.Contains(res.Stdout, "detached child is running") {
		t.Fatalf("the attack did not run to the end: %+v", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "alive")); err != nil {
		t.Fatalf("the survivor never ran: %v", err)
	}
	waitNoSurvivors(t, marker)
}

func TestHostileForkBomb(t *testing.T) {
	s := hostileSandbox(t)
	s.Timeout = 5 * time.Second
	s.MaxProcs = 32
	marker := "glm-forkbomb-" + token(t)
	// Every process it makes appends one byte to "spawned" and keeps forking;
	// none exits, so the file's size is the number of processes made.
	bomb := `import os
while True:
    try:
        if os.fork() == 0:
            fd = os.open("spawned", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, b"x")
            os.close(fd)
    except OSError:
        pass
`
	code := fmt.Sprintf("import os, sys\nos.execv(sys.executable, [sys.executable, '-c', %q, %q])\n", bomb, marker)
	dir := workDir(t)
	res := runHostile(t, s, dir, code)
	if !res.TimedOut {
		t.Errorf("got %+v, want the wall clock to stop the bomb", res)
	}
	spawned, err := os.ReadFile(filepath.Join(dir, "spawned"))
	if err != nil || len(spawned) == 0 {
		t.Fatalf("the bomb never forked: %v", err)
	}
	t.Logf("the bomb made %d processes (cap %d tasks)", len(spawned), s.MaxProcs)
	if len(spawned) >= s.MaxProcs {
		t.Errorf("got %d processes made, want fewer than the cap of %d tasks", len(spawned), s.MaxProcs)
	}
	waitNoSurvivors(t, marker)
}

func TestHostileMemoryAcrossProcesses(t *testing.T) {
	s := hostileSandbox(t)
	if s.iso.cgroupErr != nil {
		t.Skipf("skipping: no cgroup here, so memory is capped per process only: %v", s.iso.cgroupErr)
	}
	s.MemoryMB = 400
	s.Timeout = 2 * time.Minute
	const children, eachMB = 5, 200
	// Each child touches 200 MiB (under the per-process cap) and holds it;
	// the parent reports how many hold theirs at once when all are settled.
	code := fmt.Sprintf(`import os, time
kids = {}
for i in range(%d):
    pid = os.fork()
    if pid == 0:
        open("/proc/self/oom_score_adj", "w").write("1000")
        block = bytearray(%d << 20)
        for j in range(0, len(block), 4096):
            block[j] = 1
        open("held-%%d" %% i, "w").write("1")
        while True:
            time.sleep(1)
    kids[i] = pid
while True:
    for i, pid in list(kids.items()):
        if os.waitpid(pid, os.WNOHANG)[0] != 0:
            del kids[i]
    if all(os.path.exists("held-%%d" %% i) for i in kids):
        break
    time.sleep(0.2)
print("holding at once:", len(kids))
`, children, eachMB)
	res := runHostile(t, s, workDir(t), code)
	var holding int
	if _, err := fmt.Sscanf(res.Stdout, "holding at once: %d", &holding); err != nil {
		t.Fatalf("got output %q, want the holders count (%+v)", res.Stdout, res)
	}
	if holding*eachMB > s.MemoryMB {
		t.Errorf("got %d processes holding %d MiB each at once (%d MiB), want at most the run's %d MiB", holding, eachMB, holding*eachMB, s.MemoryMB)
	}
	if holding < 1 {
		t.Errorf("got no process holding its %d MiB, want at least one (the cap fits one)", eachMB)
	}
	if !res.OutOfMemory || !strings.Contains(res.Limit, "whole run") {
		t.Errorf("got OutOfMemory %v, Limit %q, want the run's memory cap reported", res.OutOfMemory, res.Limit)
	}
}

func TestHostileRunsUnprivilegedOnHost(t *testing.T) {
	s := hostileSandbox(t)
	marker := "glm-uid-" + token(t)
	dir := workDir(t)
	code := fmt.Sprintf(`import os, sys, subprocess
print("uid", os.getuid(), "gid", os.getgid())
subprocess.run([sys.executable, "-c", "import os, time\nopen('ready', 'w').write('1')\nwhile not os.path.exists('go'): time.sleep(0.02)\n", %q])
`, marker)
	done := make(chan *Result, 1)
	go func() {
		res, _ := s.Run(context.Background(), dir, code)
		done <- res
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the code never got ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	pids := markedProcesses(marker)
	if len(pids) != 1 {
		t.Fatalf("got %d marked processes, want 1", len(pids))
	}
	status, err := os.ReadFile(filepath.Join("/proc", pids[0], "status"))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(dir, "go"), nil, 0o644)
	res := <-done
	if res == nil || !strings.Contains(res.Stdout, fmt.Sprintf("uid %d gid %d", SandboxUID, SandboxUID)) {
		t.Errorf("got %+v, want the code to run as uid %d inside", res, SandboxUID)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && (f[0] == "Uid:" || f[0] == "Gid:") {
			if os.Geteuid() == 0 && f[1] != strconv.Itoa(SandboxUID) {
				t.Errorf("host %s got %s, want %d (never root on the host)", f[0], f[1], SandboxUID)
			}
			if f[1] == "0" {
				t.Errorf("host %s got 0, want an unprivileged id", f[0])
			}
		}
	}
}

func TestSandboxRefusesWithoutIsolation(t *testing.T) {
	py := testPython(t)
	// A PATH without bwrap: the sandbox cannot be had.
	t.Setenv("PATH", t.TempDir())
	s := DefaultSandbox(py)
	s.Timeout = 30 * time.Second
	if err := s.Check(context.Background()); !errors.Is(err, ErrNoIsolation) || !strings.Contains(err.Error(), "bubblewrap") {
		t.Fatalf("Check: got %v, want ErrNoIsolation naming bubblewrap", err)
	}
	if _, err := s.Run(context.Background(), workDir(t), "print('ran')\n"); !errors.Is(err, ErrNoIsolation) {
		t.Fatalf("Run: got %v, want ErrNoIsolation", err)
	}
	if !strings.Contains(s.Isolation(), "NO sandbox") {
		t.Errorf("Isolation: got %q, want it to say there is no sandbox", s.Isolation())
	}
	unsafe := DefaultSandbox(py)
	unsafe.Timeout, unsafe.Unsafe = 30*time.Second, true
	if err := unsafe.Check(context.Background()); err != nil {
		t.Fatalf("Check with Unsafe: got %v, want nil", err)
	}
	res, err := unsafe.Run(context.Background(), workDir(t), "print('ran')\n")
	if err != nil || !strings.Contains(res.Stdout, "ran") {
		t.Fatalf("Run with Unsafe: got %+v, %v, want the code to run", res, err)
	}
	if !strings.Contains(unsafe.Isolation(), "UNSAFE") {
		t.Errorf("Isolation with Unsafe: got %q, want UNSAFE", unsafe.Isolation())
	}
}

// The code cannot read a host file itself, so it leaves a "chart" that is a
// symlink to one, hoping glm copies it out after the run with glm's rights.
func TestHostileChartSymlinkToHostFile(t *testing.T) {
	secrets, contents := plantSecrets(t)
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	a := newAnalyst(t, srv)
	if err := a.Sandbox.Check(context.Background()); err != nil {
		t.Skipf("skipping: %v", err)
	}
	target := filepath.Join(secrets, "master.key")
	code := fmt.Sprintf("import os\nos.symlink(%q, 'leak.png')\nprint('planted')\n", target)
	srv.Enqueue(zhipuaitest.ToolCalls(runPython(code)), zhipuaitest.Text("done"))
	rep, err := a.Analyze(context.Background(), sampleCSV, "plot it")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Charts) != 0 {
		t.Errorf("got charts %v, want none (a symlink is no chart)", rep.Charts)
	}
	entries, _ := os.ReadDir(a.OutDir)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(a.OutDir, e.Name()))
		if strings.Contains(string(data), contents["master.key"]) {
			t.Errorf("%s in --out holds the host's master.key, want it never copied", e.Name())
		}
	}
}
