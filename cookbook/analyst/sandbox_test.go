package analyst

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPython finds the interpreter the sandbox tests need. They skip only
// when it is missing; the project's test command installs Debian's
// python3-pandas and python3-matplotlib, so on CI they run.
func testPython(t *testing.T) string {
	t.Helper()
	py, err := FindPython(context.Background(), "")
	if err != nil {
		t.Skipf("skipping: no usable Python (%v)", err)
	}
	return py
}

func testSandbox(t *testing.T) *Sandbox {
	s := DefaultSandbox(testPython(t))
	s.Timeout = 30 * time.Second
	s.MPLConfigDir = filepath.Join(os.TempDir(), "glmkit-test-mpl")
	return s
}

// workDir is a fresh directory under os.TempDir(): unlike t.TempDir()'s,
// its parents are searchable by the sandbox's unprivileged user.
func workDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "glm-analyze-test-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestSandboxChartIsPNG(t *testing.T) {
	s := testSandbox(t)
	dir := workDir(t)
	code := `import matplotlib.pyplot as plt
plt.plot([1, 2, 3], [3, 1, 2])
plt.title("demo")
plt.show()
plt.figure()
plt.bar(["a", "b"], [1, 2])
plt.savefig("bars.png")
print("done")
`
	res, err := s.Run(context.Background(), dir, code)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || !strings.Contains(res.Stdout, "done") {
		t.Fatalf("run failed: %+v", res)
	}
	if strings.Join(res.Files, ",") != "bars.png,figure_1.png" {
		t.Fatalf("files %v", res.Files)
	}
	for _, f := range res.Files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG (starts %q)", f, data[:min(8, len(data))])
		}
	}
}

func TestSandboxInfiniteLoopTimesOut(t *testing.T) {
	s := testSandbox(t)
	s.Timeout = 2 * time.Second
	s.CPUSeconds = 60 // make sure the wall clock is what stops it
	res, err := s.Run(context.Background(), workDir(t), "print('start', flush=True)\nwhile True:\n    pass\n")
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.OK() || !strings.Contains(res.Limit, "wall-clock time limit of 2s") {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(res.Stdout, "start") {
		t.Errorf("output before the kill lost: %q", res.Stdout)
	}
}

func TestSandboxChildProcessesKilledOnTimeout(t *testing.T) {
	s := hostileSandbox(t)
	s.Timeout = 5 * time.Second
	dir := workDir(t)
	marker := "glm-child-" + token(t)
	// The child outlives the parent's kill unless the whole run is killed.
	// The parent waits until the child has started before it spins, so a
	// slow, loaded machine cannot let the timeout fire before the child runs.
	code := fmt.Sprintf(`import subprocess, sys, os, time
p = subprocess.Popen([sys.executable, "-c", "import time\nopen('alive', 'w').write('1')\nwhile True: time.sleep(0.05)", %q])
while not os.path.exists('alive'):
    time.sleep(0.01)
while True:
    pass
`, marker)
	res, err := s.Run(context.Background(), dir, code)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut {
		t.Fatalf("got %+v, want a timeout", res)
	}
	if _, err := os.Stat(filepath.Join(dir, "alive")); err != nil {
		t.Fatal("child never ran")
	}
	waitNoSurvivors(t, marker)
}

func TestSandboxMemoryLimit(t *testing.T) {
	s := testSandbox(t)
	s.MemoryMB = 300
	code := "chunks = []\nwhile True:\n    chunks.append(bytearray(50 * 1024 * 1024))\n"
	res, err := s.Run(context.Background(), workDir(t), code)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OutOfMemory || !strings.Contains(res.Limit, "memory limit of 300 MiB") || !strings.Contains(res.Stderr, "MemoryError") {
		t.Fatalf("result %+v", res)
	}
}

func TestSandboxCPULimit(t *testing.T) {
	s := testSandbox(t)
	s.CPUSeconds = 1
	res, err := s.Run(context.Background(), workDir(t), "while True:\n    pass\n")
	if err != nil {
		t.Fatal(err)
	}
	if !res.CPUExceeded || res.TimedOut || !strings.Contains(res.Limit, "CPU time limit of 1 s") {
		t.Fatalf("result %+v", res)
	}
}

func TestSandboxNetworkBlocked(t *testing.T) {
	s := testSandbox(t)
	for _, code := range []string{
		"import urllib.request\nurllib.request.urlopen('http://example.com', timeout=5)\n",
		"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 9))\n",
	} {
		res, err := s.Run(context.Background(), workDir(t), code)
		if err != nil {
			t.Fatal(err)
		}
		if !res.NetworkDenied || res.OK() || !strings.Contains(res.Limit, "Network access is not allowed") {
			t.Fatalf("code %q: result %+v", code, res)
		}
	}
	t.Logf("isolation: %s", s.Isolation())
}

func TestSandboxNoNetworkNamespace(t *testing.T) {
	s := hostileSandbox(t)
	if !strings.Contains(s.Isolation(), "no network") {
		t.Fatalf("Isolation: got %q, want no network", s.Isolation())
	}
	// Bypass the Python guard through the C module: the OS must still block it.
	code := `import _socket
s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect(("1.1.1.1", 80))
    print("CONNECTED")
except OSError as e:
    print("blocked:", e)
`
	res, err := s.Run(context.Background(), workDir(t), code)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Stdout, "blocked:") {
		t.Fatalf("got %+v, want the raw socket blocked by the namespace", res)
	}
}

func TestSandboxEnvironmentAndOutputCap(t *testing.T) {
	t.Setenv("ZHIPUAI_API_KEY", "abc.secretvalue")
	s := testSandbox(t)
	s.MaxOutput = 1000
	code := "import os\nprint(sorted(k for k in os.environ if 'ZHIPU' in k))\nprint('x' * 5000)\nraise ValueError('boom')\n"
	res, err := s.Run(context.Background(), workDir(t), code)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Stdout, "[]\n") {
		t.Errorf("API key visible to the code: %q", res.Stdout[:min(50, len(res.Stdout))])
	}
	if !res.Truncated || len(res.Stdout) > 1100 || !strings.Contains(res.Stdout, "[output truncated]") {
		t.Errorf("stdout not capped: %d bytes", len(res.Stdout))
	}
	if res.ExitCode != 1 || !strings.Contains(res.Stderr, "ValueError: boom") || strings.Contains(res.Stderr, "preamble") {
		t.Errorf("traceback: %q", res.Stderr)
	}
}

func TestFindPythonErrors(t *testing.T) {
	if _, err := FindPython(context.Background(), "/nonexistent/python3"); err == nil {
		t.Fatal("missing interpreter accepted")
	}
	// /bin/true runs but is no Python: the probe finds no pandas.
	if _, err := FindPython(context.Background(), "/bin/true"); err == nil || !strings.Contains(err.Error(), "apt-get install") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkSandboxRun measures one trivial run: bwrap's namespaces, the
// run's cgroup and the interpreter's start, against the unsafe plain process.
func BenchmarkSandboxRun(b *testing.B) {
	py, err := FindPython(context.Background(), "")
	if err != nil {
		b.Skipf("skipping: no usable Python (%v)", err)
	}
	for _, unsafe := range []bool{false, true} {
		name := "bwrap"
		if unsafe {
			name = "unsafe"
		}
		b.Run(name, func(b *testing.B) {
			s := DefaultSandbox(py)
			s.Timeout = time.Minute
			if unsafe {
				t := os.Getenv("PATH")
				os.Setenv("PATH", b.TempDir())
				defer os.Setenv("PATH", t)
				s.Unsafe = true
			}
			if err := s.Check(context.Background()); err != nil {
				b.Skip(err)
			}
			dir, err := os.MkdirTemp("", "glm-analyze-bench-*")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(dir)
			if _, err := s.Run(context.Background(), dir, "print(1)\n"); err != nil { // warm the font list
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if res, err := s.Run(context.Background(), dir, "print(1)\n"); err != nil || !res.OK() {
					b.Fatalf("got %+v, %v", res, err)
				}
			}
		})
	}
}
