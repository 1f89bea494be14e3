package analyst

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The sandbox's fixed layout, as the code sees it.
const (
	// SandboxUID is the unprivileged user and group id the code runs as
	// (nobody/nogroup on Debian), whoever runs glm.
	SandboxUID = 65534
	// sandboxHome is the run's work directory, the only writable path.
	sandboxHome = "/sandbox"
	// sandboxSupport holds the preamble and the cell, read-only.
	sandboxSupport = "/run/glm-analyze"
)

// etcFiles are the only entries of the host's /etc the code sees: what the
// dynamic loader, numpy's BLAS (chosen through /etc/alternatives),
// matplotlib and fontconfig read. Missing ones are skipped.
var etcFiles = []string{
	"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
	"/etc/fonts", "/etc/matplotlibrc", "/etc/localtime", "/etc/mime.types",
}

// etcNetworkFiles are added with --allow-network, for name resolution and TLS.
var etcNetworkFiles = []string{
	"/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf",
	"/etc/ssl", "/etc/ca-certificates",
}

// rootLinks are the top-level directories that merged-/usr systems make
// symlinks into /usr; older layouts have them as directories.
var rootLinks = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// isolation is what this machine allows, found once per Sandbox.
type isolation struct {
	bwrap  string // bwrap's path; empty when it is not usable
	reason string // why the sandbox cannot be had (empty when it can)
	// drop: glm runs as root, so bwrap itself is started as SandboxUID —
	// a user namespace made by root would map the code's uid to the host's
	// root, the owner of /etc/shadow and of every root-owned secret.
	drop bool
	// cgroupErr is why no cgroup bounds the run (nil when one does).
	cgroupErr error
	cgroupV   string // "v1" or "v2"
	python    string // the real interpreter (shims and symlinks resolved)
	pyBinds   []string
}

func (iso *isolation) ok() bool { return iso.bwrap != "" && iso.reason == "" }

// ErrNoIsolation is wrapped by the error Run and Check return when the
// sandbox cannot be had here and Unsafe is not set.
var ErrNoIsolation = errors.New("the code-execution sandbox (bubblewrap) is not usable on this machine")

func (iso *isolation) err() error {
	return fmt.Errorf("%w: %s", ErrNoIsolation, iso.reason)
}

// probeIsolation checks bwrap with every namespace the runs use, as the user
// the runs use, then where the interpreter lives and whether a cgroup can
// bound the run.
func probeIsolation(ctx context.Context, python string, memBytes int64, maxTasks int) *isolation {
	iso := &isolation{drop: os.Geteuid() == 0}
	path, err := exec.LookPath("bwrap")
	if err != nil {
		iso.reason = "bwrap is not installed (Debian: apt-get install bubblewrap)"
		return iso
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	args := []string{"--unshare-all", "--die-with-parent", "--new-session",
		"--uid", fmt.Sprint(SandboxUID), "--gid", fmt.Sprint(SandboxUID), "--ro-bind", "/", "/", "true"}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: iso.credential()}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = err.Error()
		}
		who := "this user"
		if iso.drop {
			who = fmt.Sprintf("uid %d", SandboxUID)
		}
		iso.reason = fmt.Sprintf("bwrap cannot create its namespaces as %s (%s); unprivileged user namespaces must be enabled (sysctl kernel.unprivileged_userns_clone=1 or user.max_user_namespaces > 0)", who, msg)
		return iso
	}
	if iso.python, iso.pyBinds, err = pythonLayout(ctx, python); err != nil {
		iso.reason = err.Error()
		return iso
	}
	iso.bwrap = path
	if cg, err := newRunCgroup(memBytes, maxTasks); err != nil {
		iso.cgroupErr = err
	} else {
		iso.cgroupV = "v1"
		if cg.v2 {
			iso.cgroupV = "v2"
		}
		cg.remove()
	}
	return iso
}

func (iso *isolation) credential() *syscall.Credential {
	if !iso.drop {
		return nil
	}
	return &syscall.Credential{Uid: SandboxUID, Gid: SandboxUID, Groups: []uint32{}}
}

// pythonLayout finds the real interpreter and the directories it needs that
// are not under /usr (a pyenv or venv install), to bind them read-only.
func pythonLayout(ctx context.Context, python string) (string, []string, error) {
	const script = `import os, sys
print(os.path.realpath(sys.executable))
for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path}:
    if p and os.path.isdir(p):
        print(os.path.realpath(p))
`
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "-I", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", nil, fmt.Errorf("python %s does not run: %v %s", python, err, strings.TrimSpace(errOut.String()))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var binds []string
	for _, p := range lines[1:] {
		if under(p, "/usr") || refusedBind(p) {
			continue
		}
		binds = append(binds, p)
	}
	return lines[0], topmost(binds), nil
}

// refusedBind keeps a strange sys.path from exposing a whole host tree.
func refusedBind(p string) bool {
	switch filepath.Clean(p) {
	case "/", "/etc", "/home", "/root", "/tmp", "/var", "/run", "/proc", "/sys", "/dev", "/opt", "/srv", "/mnt", "/media":
		return true
	}
	return false
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// topmost drops paths inside other paths of the list.
func topmost(paths []string) []string {
	var out []string
	for _, p := range paths {
		covered := false
		for _, q := range paths {
			covered = covered || (q != p && under(p, q))
		}
		if !covered && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// bwrapArgs is the command line of one run: every namespace new, a
// read-only root holding only /usr, the interpreter's own directories and a
// few /etc files, the run's directory as the only writable path, and the
// code as SandboxUID.
func (s *Sandbox) bwrapArgs(iso *isolation, workDir, support string) []string {
	uid := fmt.Sprint(SandboxUID)
	a := []string{iso.bwrap,
		"--unshare-all", "--die-with-parent", "--new-session",
		"--uid", uid, "--gid", uid, "--hostname", "sandbox",
		"--ro-bind", "/usr", "/usr",
	}
	if s.AllowNetwork {
		a = append(a, "--share-net")
	}
	for _, l := range rootLinks {
		fi, err := os.Lstat(l)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			if target, err := os.Readlink(l); err == nil {
				a = append(a, "--symlink", target, l)
			}
		case fi.IsDir():
			a = append(a, "--ro-bind", l, l)
		}
	}
	for _, p := range iso.pyBinds {
		a = append(a, "--ro-bind", p, p)
	}
	etc := etcFiles
	if s.AllowNetwork {
		etc = append(slices.Clone(etc), etcNetworkFiles...)
	}
	for _, f := range etc {
		a = append(a, "--ro-bind-try", f, f)
	}
	a = append(a,
		"--ro-bind", filepath.Join(support, "passwd"), "/etc/passwd",
		"--ro-bind", filepath.Join(support, "group"), "/etc/group",
		"--dev", "/dev", "--proc", "/proc",
		"--ro-bind", support, sandboxSupport,
		"--bind", workDir, sandboxHome,
		// Everything bwrap built (the root, /dev) read-only: the work
		// directory stays the only place the code can write.
		"--remount-ro", "/", "--remount-ro", "/dev",
		"--chdir", sandboxHome,
		"--",
		iso.python, "-I", "-B", sandboxSupport+"/preamble.py", sandboxSupport+"/cell.py",
	)
	return a
}

// sandboxPasswd and sandboxGroup name the only users the code can look up.
const (
	sandboxPasswd = "root:x:0:0:root:/:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:" + sandboxHome + ":/usr/sbin/nologin\n"
	sandboxGroup  = "root:x:0:\nnogroup:x:65534:\n"
)

// launcher holds bwrap back until glm has put it into the run's cgroup, so
// no process of the run ever starts outside it; fd 3 is closed for bwrap.
var launcher = []string{"/bin/sh", "-c", `read -r _ <&3 || exit 125; exec "$@" 3<&-`, "sh"}

// reachable checks that SandboxUID can enter dir: bwrap, started as that
// uid, resolves the paths it binds itself, so every parent must be
// searchable by others (t.TempDir's parents, or a TMPDIR under /root, are
// not).
func reachable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm()&0o001 == 0 && (st == nil || st.Uid != SandboxUID) {
			return fmt.Errorf("%s is not reachable by uid %d (the sandbox's user): %s is not searchable by others; use a work directory under /tmp (or set TMPDIR to such a directory)", dir, SandboxUID, p)
		}
		if p == "/" {
			return nil
		}
	}
}

// chownTree gives a tree to SandboxUID (when glm runs as root and the code
// runs as that uid outside the sandbox too).
func chownTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, SandboxUID, SandboxUID)
	})
}
