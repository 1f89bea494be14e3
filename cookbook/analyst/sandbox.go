// Package analyst is the CSV data analyst of the cookbook: GLM-4 writes
// Python for a request about a CSV file, a sandboxed executor runs it, and
// the output goes back to the model until it answers in words.
package analyst

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

//go:embed preamble.py
var preamble []byte

// NetworkMessage is what the sandbox says when code tries the network.
const NetworkMessage = "network access is disabled in the glm analyze sandbox"

// Sandbox runs untrusted Python. The isolation is bubblewrap's (bwrap), a
// tool built for it, not ours; see bwrapArgs for the command line:
//
//   - namespaces: new user, mount, pid, ipc, net, uts and cgroup namespaces
//     (--unshare-all); the code runs as SandboxUID inside, and when glm runs
//     as root bwrap itself is started as SandboxUID, so no process of the
//     run is root on the host;
//   - filesystem: a read-only root holding /usr, the interpreter's own
//     directories, a few /etc files (no shadow, passwd or keys: a two-line
//     passwd of its own) and /proc and /dev of the sandbox; the host's /etc,
//     /tmp, /home, /root, /var and glm's data directory are not there. The
//     run's work directory (a copy of the CSV) is the only writable path;
//   - network: an empty network namespace (a loopback of its own); abstract
//     AF_UNIX sockets are per namespace and no host socket file is mounted.
//     A Python socket guard also gives the model a clear message;
//   - processes: every process of the run is in the run's pid namespace,
//     whose init is bwrap; when the code's main process ends, or glm dies
//     (--die-with-parent), or the wall clock runs out, the kernel kills the
//     whole namespace, setsid and double-forked processes included;
//     --new-session keeps the code off glm's terminal;
//   - totals: a cgroup of the run (see runCgroup) caps the memory of all its
//     processes together and the number of its tasks, where the machine
//     lets glm make one (root, or a delegated cgroup v2 subtree). Without
//     it, the task count is still capped (RLIMIT_NPROC, counted by the
//     kernel in the run's own user namespace), but memory only per process
//     (RLIMIT_AS), so MaxProcs processes could use MaxProcs × MemoryMB;
//     Isolation says which holds;
//   - per process, set by a preamble before the code, soft and hard:
//     RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE;
//   - environment: PATH, HOME, LANG and the sandbox's settings only (no API
//     key reaches the code); output: stdout and stderr capped at MaxOutput.
//
// Where bwrap or user namespaces are missing Run refuses (ErrNoIsolation),
// unless Unsafe is set: then the code runs as a plain python3 -I process of
// the caller's user, with the per-process limits only.
type Sandbox struct {
	Python     string        // interpreter path (see FindPython)
	Timeout    time.Duration // wall clock per run
	MemoryMB   int           // memory of the whole run (cgroup) and per process (RLIMIT_AS)
	MaxProcs   int           // processes and threads of the whole run (0: 64)
	CPUSeconds int           // CPU time limit (0: the timeout in seconds)
	FileMB     int           // largest file the code may write
	MaxOutput  int           // bytes kept of stdout and of stderr
	// AllowNetwork shares the host's network with the code.
	AllowNetwork bool
	// Unsafe runs the code without bubblewrap when it is not usable
	// (glm analyze --unsafe-no-sandbox): the code can then read and change
	// whatever the caller can.
	Unsafe bool
	// MPLConfigDir caches matplotlib's font list between unsafe runs;
	// empty: a directory under the user cache dir. Sandboxed runs get a
	// font list built once per process by a trusted run instead.
	MPLConfigDir string

	once sync.Once
	iso  *isolation
	// Unsafe mode: `unshare -r -n` works here.
	netns bool
}

// DefaultSandbox returns limits suited to analysing a CSV on a laptop.
func DefaultSandbox(python string) *Sandbox {
	return &Sandbox{Python: python, Timeout: 60 * time.Second, MemoryMB: 1024, MaxProcs: 64, FileMB: 256, MaxOutput: 16 << 10}
}

// Result is what one run produced.
type Result struct {
	Stdout, Stderr string
	ExitCode       int // -1 when killed by a signal
	// Limit names the limit that stopped the code, with a clear message;
	// empty when the code ended by itself.
	Limit         string
	TimedOut      bool
	OutOfMemory   bool
	CPUExceeded   bool
	NetworkDenied bool
	Truncated     bool     // some output was cut at MaxOutput
	Files         []string // image files the run created or changed, relative to the work dir
	Duration      time.Duration
}

// OK reports whether the code ran to completion without error.
func (r *Result) OK() bool { return r.ExitCode == 0 && r.Limit == "" }

func (s *Sandbox) maxProcs() int {
	if s.MaxProcs > 0 {
		return s.MaxProcs
	}
	return 64
}

func (s *Sandbox) memBytes() int64 { return int64(s.MemoryMB) << 20 }

func (s *Sandbox) detect(ctx context.Context) *isolation {
	s.once.Do(func() {
		s.iso = probeIsolation(ctx, s.Python, s.memBytes(), s.maxProcs())
		if s.Unsafe && !s.iso.ok() {
			s.netns = unshareNetWorks()
		}
	})
	return s.iso
}

// Check reports, before any code runs, whether Run will run code: nil when
// the sandbox is usable or Unsafe is set, else an error wrapping
// ErrNoIsolation that says why.
func (s *Sandbox) Check(ctx context.Context) error {
	if iso := s.detect(ctx); !iso.ok() && !s.Unsafe {
		return iso.err()
	}
	return nil
}

// Isolation describes, for the user, what holds the code in.
func (s *Sandbox) Isolation() string {
	iso := s.detect(context.Background())
	if !iso.ok() {
		if !s.Unsafe {
			return "NO sandbox: " + iso.reason
		}
		net := "network blocked by a Python socket guard only"
		switch {
		case s.AllowNetwork:
			net = "network allowed"
		case s.netns:
			net = "network blocked by an empty network namespace"
		}
		return "UNSAFE, no sandbox (--unsafe-no-sandbox): the code runs as your user and can read and change your files; per-process limits only; " + net
	}
	who := fmt.Sprintf("uid %d", SandboxUID)
	net := "no network"
	if s.AllowNetwork {
		net = "network allowed (--allow-network)"
	}
	totals := fmt.Sprintf("cgroup %s caps the whole run at %d MiB and %d tasks", iso.cgroupV, s.MemoryMB, s.maxProcs())
	if iso.cgroupErr != nil {
		totals = fmt.Sprintf("no cgroup here: tasks capped at %d (RLIMIT_NPROC in the run's user namespace), memory %d MiB per process only (RLIMIT_AS)", s.maxProcs(), s.MemoryMB)
	}
	return fmt.Sprintf("sandbox: bwrap, %s, read-only system view, only the work dir writable, %s, %s", who, net, totals)
}

// Run executes code as a fresh Python process in workDir. An error is
// returned only when the sandbox itself could not run (or is not usable
// here and Unsafe is not set); failures of the code (exceptions, limits)
// are in the Result.
func (s *Sandbox) Run(ctx context.Context, workDir, code string) (*Result, error) {
	if s.Python == "" {
		return nil, errors.New("sandbox: no Python interpreter set")
	}
	if s.Timeout <= 0 {
		return nil, errors.New("sandbox: timeout must be positive")
	}
	iso := s.detect(ctx)
	if !iso.ok() {
		if !s.Unsafe {
			return nil, iso.err()
		}
		return s.run(ctx, iso, workDir, code)
	}
	fonts, err := warmFonts(ctx, s, iso)
	if err != nil {
		return nil, err
	}
	if err := seedFonts(workDir, fonts); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	return s.run(ctx, iso, workDir, code)
}

// fontCache is matplotlib's font list for one interpreter, built by a
// trusted sandboxed run (building it takes seconds; model code never writes
// what later runs read).
type fontCache struct {
	once  sync.Once
	files map[string][]byte
	err   error
}

var fontCaches sync.Map // python path → *fontCache

func warmFonts(ctx context.Context, s *Sandbox, iso *isolation) (map[string][]byte, error) {
	v, _ := fontCaches.LoadOrStore(iso.python, &fontCache{})
	fc := v.(*fontCache)
	fc.once.Do(func() {
		dir, err := os.MkdirTemp("", "glm-analyze-fonts-*")
		if err != nil {
			fc.err = err
			return
		}
		defer os.RemoveAll(dir)
		warm := &Sandbox{Python: s.Python, Timeout: max(s.Timeout, 2*time.Minute), MemoryMB: max(s.MemoryMB, 512),
			MaxProcs: s.MaxProcs, FileMB: max(s.FileMB, 64), MaxOutput: s.MaxOutput}
		res, err := warm.run(ctx, iso, dir, "import matplotlib.font_manager\n")
		if err != nil {
			fc.err = err
			return
		}
		if !res.OK() {
			fc.err = fmt.Errorf("sandbox: python cannot import matplotlib inside the sandbox: %s %s", res.Limit, res.Stderr)
			return
		}
		fc.files = map[string][]byte{}
		matches, _ := filepath.Glob(filepath.Join(dir, ".matplotlib", "*.json"))
		for _, m := range matches {
			if data, err := os.ReadFile(m); err == nil {
				fc.files[filepath.Base(m)] = data
			}
		}
	})
	return fc.files, fc.err
}

func seedFonts(workDir string, files map[string][]byte) error {
	if len(files) == 0 {
		return nil
	}
	dir := filepath.Join(workDir, ".matplotlib")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}
