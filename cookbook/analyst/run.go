package analyst

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// run executes one cell: through bwrap when iso allows it, else (Unsafe)
// as a plain process.
func (s *Sandbox) run(ctx context.Context, iso *isolation, workDir, code string) (*Result, error) {
	sandboxed := iso.ok()
	support, err := writeSupport(code, sandboxed)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(support)
	if sandboxed && iso.drop {
		// bwrap runs as SandboxUID: it must read the support files and
		// write the work directory (the code's files are the caller's
		// again once glm copies the charts out).
		for _, d := range []string{support, workDir} {
			if err := reachable(d); err != nil {
				return nil, fmt.Errorf("sandbox: %w", err)
			}
		}
		if err := chownTree(support); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		if err := chownTree(workDir); err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	before := snapshot(workDir)

	var cg *runCgroup
	if sandboxed && iso.cgroupErr == nil {
		if cg, err = newRunCgroup(s.memBytes(), s.maxProcs()); err != nil {
			return nil, fmt.Errorf("sandbox: the run's cgroup: %w", err)
		}
		defer cg.remove()
	}
	runCtx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	cmd := s.command(runCtx, iso, workDir, support, cg)
	limit := s.MaxOutput
	if limit <= 0 {
		limit = 16 << 10
	}
	stdout, stderr := &capped{max: limit}, &capped{max: limit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	start := time.Now()
	runErr := startAndWait(cmd, cg)
	res := &Result{Duration: time.Since(start), Stdout: stdout.String(), Stderr: stderr.String(),
		Truncated: stdout.cut || stderr.cut}
	if cmd.ProcessState == nil {
		return nil, fmt.Errorf("sandbox: starting %s: %w", cmd.Path, runErr)
	}
	// Reap anything the code left behind: its group (unsafe mode), the
	// whole cgroup (sandbox; the pid namespace is already gone with bwrap).
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	oomKills := 0
	if cg != nil {
		cg.kill()
		oomKills = cg.oomKills()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err() // the caller gave up (Ctrl-C): not the code's fault
	}
	s.classify(res, cmd.ProcessState, sandboxed, runCtx.Err() != nil, oomKills)
	res.Files = changedImages(workDir, before)
	return res, nil
}

// writeSupport writes the preamble and the cell (and, for bwrap, the
// sandbox's passwd and group) into a fresh directory.
func writeSupport(code string, sandboxed bool) (string, error) {
	support, err := os.MkdirTemp("", "glm-analyze-run-*")
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	files := map[string]string{"preamble.py": string(preamble), "cell.py": code}
	if sandboxed {
		files["passwd"], files["group"] = sandboxPasswd, sandboxGroup
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(support, name), []byte(data), 0o600); err != nil {
			os.RemoveAll(support)
			return "", fmt.Errorf("sandbox: %w", err)
		}
	}
	return support, nil
}

// command builds the process of one run. With a cgroup, the launcher waits
// on fd 3 until startAndWait has moved it into the cgroup.
func (s *Sandbox) command(ctx context.Context, iso *isolation, workDir, support string, cg *runCgroup) *exec.Cmd {
	var args []string
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	dir := workDir
	if iso.ok() {
		args = s.bwrapArgs(iso, workDir, support)
		if cg != nil {
			args = append(append([]string(nil), launcher...), args...)
		}
		attr.Credential = iso.credential()
		dir = "/"
	} else {
		args = []string{s.Python, "-I", "-B", filepath.Join(support, "preamble.py"), filepath.Join(support, "cell.py")}
		if s.netns && !s.AllowNetwork {
			args = append([]string{"unshare", "-r", "-n", "--"}, args...)
		}
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = s.env(iso, workDir)
	cmd.SysProcAttr = attr
	// On timeout kill the whole group and the cgroup: the code may have
	// started children of its own (in the sandbox, bwrap dying also takes
	// its pid namespace down).
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if cg != nil {
			cg.kill()
		}
		return err
	}
	cmd.WaitDelay = 2 * time.Second // do not wait forever for pipes held by orphans
	return cmd
}

// startAndWait starts cmd, puts it into cg before it may start anything,
// then waits for it.
func startAndWait(cmd *exec.Cmd, cg *runCgroup) error {
	if cg == nil {
		return cmd.Run()
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.ExtraFiles = []*os.File{r}
	err = cmd.Start()
	r.Close()
	if err != nil {
		w.Close()
		return err
	}
	if err := cg.add(cmd.Process.Pid); err != nil {
		w.Close() // the launcher exits without starting bwrap
		_ = cmd.Wait()
		return fmt.Errorf("sandbox: %w", err)
	}
	_, _ = w.Write([]byte("go\n"))
	w.Close()
	return cmd.Wait()
}

// classify fills in why the code stopped.
func (s *Sandbox) classify(res *Result, ps *os.ProcessState, sandboxed, timedOut bool, oomKills int) {
	res.ExitCode = ps.ExitCode()
	sig := syscall.Signal(0)
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig = ws.Signal()
	} else if sandboxed && res.ExitCode > 128 && res.ExitCode < 128+65 {
		// bwrap reports a child killed by signal N as exit status 128+N.
		sig = syscall.Signal(res.ExitCode - 128)
		res.ExitCode = -1
	}
	cpu := s.cpuSeconds()
	switch {
	case timedOut:
		res.TimedOut = true
		res.Limit = fmt.Sprintf("Execution stopped: the wall-clock time limit of %s was reached (the process was killed). Make the code faster, or work on less data.", s.Timeout)
	case oomKills > 0:
		res.OutOfMemory = true
		res.Limit = fmt.Sprintf("Execution stopped: the memory limit of %d MiB for the whole run (all its processes) was exceeded and the kernel killed a process. Use less memory, e.g. read only the needed columns.", s.MemoryMB)
	case sig == syscall.SIGXCPU || sig == syscall.SIGKILL:
		res.CPUExceeded = true
		res.Limit = fmt.Sprintf("Execution stopped: the CPU time limit of %d s was reached.", cpu)
	case outOfMemory(res.Stderr):
		res.OutOfMemory = true
		res.Limit = fmt.Sprintf("Execution stopped: the memory limit of %d MiB was exceeded (MemoryError). Use less memory, e.g. read only the needed columns.", s.MemoryMB)
	case sig == syscall.SIGXFSZ:
		res.Limit = fmt.Sprintf("Execution stopped: the code wrote a file larger than %d MiB.", s.FileMB)
	}
	if strings.Contains(res.Stderr, NetworkMessage) {
		res.NetworkDenied = true
		if res.Limit == "" {
			res.Limit = "Network access is not allowed in the sandbox: use only the local CSV file."
		}
	}
}

func (s *Sandbox) cpuSeconds() int {
	if s.CPUSeconds > 0 {
		return s.CPUSeconds
	}
	return int(s.Timeout.Round(time.Second)/time.Second) + 1
}

// env is the code's whole environment: no variable of the caller's reaches
// it (API keys included).
func (s *Sandbox) env(iso *isolation, workDir string) []string {
	home, mpl := workDir, s.MPLConfigDir
	if iso.ok() {
		home, mpl = sandboxHome, sandboxHome+"/.matplotlib"
	} else if mpl == "" {
		if d, err := os.UserCacheDir(); err == nil {
			mpl = filepath.Join(d, "glmkit", "matplotlib")
		} else {
			mpl = filepath.Join(workDir, ".matplotlib")
		}
		_ = os.MkdirAll(mpl, 0o700)
	}
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"TMPDIR=" + home,
		"LANG=C.UTF-8",
		"PYTHONIOENCODING=utf-8",
		"MPLBACKEND=Agg",
		"MPLCONFIGDIR=" + mpl,
		// One BLAS thread: a thread pool per core would multiply the
		// address space reserved under RLIMIT_AS (and count as tasks).
		"OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1",
		fmt.Sprintf("GLMKIT_MEM_BYTES=%d", s.memBytes()),
		fmt.Sprintf("GLMKIT_CPU_SECONDS=%d", s.cpuSeconds()),
		fmt.Sprintf("GLMKIT_FILE_BYTES=%d", int64(s.FileMB)<<20),
	}
	if iso.ok() {
		// Only inside the run's own user namespace does RLIMIT_NPROC count
		// the run's tasks alone; outside it would count all of the user's.
		env = append(env, fmt.Sprintf("GLMKIT_MAX_PROCS=%d", s.maxProcs()))
	}
	if !s.AllowNetwork {
		env = append(env, "GLMKIT_NO_NETWORK=1")
	}
	return env
}

// unshareNetWorks reports whether `unshare -r -n` gives an unsafe run an
// empty network namespace here.
func unshareNetWorks() bool {
	path, err := exec.LookPath("unshare")
	return err == nil && exec.Command(path, "-r", "-n", "true").Run() == nil
}
