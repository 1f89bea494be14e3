package analyst

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runCgroup bounds the TOTAL memory and the number of tasks (processes and
// threads) of one sandboxed run, whatever the code forks: every process of
// the run starts inside it and cannot leave (the cgroup filesystem is not
// mounted in the sandbox). It is a child of glm's own cgroup, so it also
// stays inside whatever limits glm itself runs under.
//
// Two layouts are handled:
//   - cgroup v2, when the memory and pids controllers are enabled (or can be
//     enabled) for the children of glm's own cgroup — a delegated subtree, or
//     the root cgroup when glm runs as root in a container;
//   - cgroup v1, the memory and pids hierarchies, when glm may create cgroups
//     there (root).
//
// Without either, newRunCgroup fails and the sandbox falls back to
// per-process limits (see Sandbox).
type runCgroup struct {
	v2   bool
	mem  string   // the directory with the memory controls
	dirs []string // every directory created (v2: one; v1: memory and pids)
}

// newRunCgroup creates the cgroup of one run.
func newRunCgroup(memBytes int64, maxTasks int) (*runCgroup, error) {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, err
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	name := "glm-analyze-" + randomSuffix()
	var errs []error
	if cg, err := newCgroupV2(mounts, own, name, memBytes, maxTasks); err == nil {
		return cg, nil
	} else {
		errs = append(errs, fmt.Errorf("cgroup v2: %w", err))
	}
	cg, err := newCgroupV1(mounts, own, name, memBytes, maxTasks)
	if err == nil {
		return cg, nil
	}
	errs = append(errs, fmt.Errorf("cgroup v1: %w", err))
	return nil, errors.Join(errs...)
}

func newCgroupV2(mounts map[string]cgroupMount, own map[string]string, name string, memBytes int64, maxTasks int) (*runCgroup, error) {
	m, ok := mounts["cgroup2"]
	path, ok2 := own[""]
	if !ok || !ok2 {
		return nil, errors.New("not mounted")
	}
	parent := m.dir(path)
	ctrl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	if !hasWords(string(ctrl), "memory", "pids") {
		return nil, errors.New("the memory and pids controllers are not available to glm's cgroup")
	}
	sub, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil {
		return nil, err
	}
	if !hasWords(string(sub), "memory", "pids") {
		// Works for the root cgroup, and for a cgroup without processes of its own.
		if err := writeFile(filepath.Join(parent, "cgroup.subtree_control"), "+memory +pids"); err != nil {
			return nil, fmt.Errorf("enabling memory and pids for child cgroups: %w", err)
		}
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	cg := &runCgroup{v2: true, mem: dir, dirs: []string{dir}}
	err = errors.Join(
		writeFile(filepath.Join(dir, "memory.max"), strconv.FormatInt(memBytes, 10)),
		writeFile(filepath.Join(dir, "pids.max"), strconv.Itoa(maxTasks)),
	)
	// No swap: the cap is on memory, not on memory the kernel may page out.
	_ = writeFile(filepath.Join(dir, "memory.swap.max"), "0")
	if err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

func newCgroupV1(mounts map[string]cgroupMount, own map[string]string, name string, memBytes int64, maxTasks int) (*runCgroup, error) {
	mm, ok1 := mounts["memory"]
	pm, ok2 := mounts["pids"]
	mp, ok3 := own["memory"]
	pp, ok4 := own["pids"]
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return nil, errors.New("the memory and pids hierarchies are not both mounted")
	}
	cg := &runCgroup{}
	for _, d := range []string{filepath.Join(mm.dir(mp), name), filepath.Join(pm.dir(pp), name)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			cg.remove()
			return nil, err
		}
		cg.dirs = append(cg.dirs, d)
	}
	cg.mem = cg.dirs[0]
	limit := strconv.FormatInt(memBytes, 10)
	err := errors.Join(
		writeFile(filepath.Join(cg.mem, "memory.limit_in_bytes"), limit),
		writeFile(filepath.Join(cg.dirs[1], "pids.max"), strconv.Itoa(maxTasks)),
	)
	// memory+swap, where swap accounting is on: the same cap, so no swap.
	_ = writeFile(filepath.Join(cg.mem, "memory.memsw.limit_in_bytes"), limit)
	if err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// add moves pid into the cgroup. The sandbox's launcher waits until this is
// done before it starts anything, so no process of the run is ever outside.
func (c *runCgroup) add(pid int) error {
	for _, d := range c.dirs {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("joining %s: %w", d, err)
		}
	}
	return nil
}

// oomKills is how many processes of the run the kernel killed for going over
// the memory cap.
func (c *runCgroup) oomKills() int {
	file := "memory.oom_control"
	if c.v2 {
		file = "memory.events"
	}
	data, err := os.ReadFile(filepath.Join(c.mem, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// kill SIGKILLs every process still in the cgroup and waits (boundedly) until
// it is empty. The pid namespace already takes the run's processes down with
// its init; this also covers a launcher that died before bwrap started.
func (c *runCgroup) kill() {
	if c.v2 {
		_ = writeFile(filepath.Join(c.dirs[0], "cgroup.kill"), "1")
	}
	for range 200 {
		pids := c.pids()
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *runCgroup) pids() []int {
	var out []int
	for _, d := range c.dirs {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if p, err := strconv.Atoi(f); err == nil && p > 0 {
				out = append(out, p)
			}
		}
	}
	return out
}

// remove kills what is left and deletes the cgroup.
func (c *runCgroup) remove() {
	c.kill()
	for _, d := range c.dirs {
		// A cgroup is removable once its last task is reaped, which can lag
		// the kill by a moment.
		for range 100 {
			if err := os.Remove(d); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// cgroupMount is one mounted cgroup hierarchy.
type cgroupMount struct {
	root  string // the hierarchy path mounted (mountinfo's root field)
	point string // where it is mounted
}

// dir is the directory of the hierarchy path p (as /proc/self/cgroup names it).
func (m cgroupMount) dir(p string) string {
	rel, err := filepath.Rel(m.root, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = p
	}
	return filepath.Join(m.point, rel)
}

// cgroupMounts reads /proc/self/mountinfo: "cgroup2" for the unified
// hierarchy, and each v1 controller by name.
func cgroupMounts() (map[string]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]cgroupMount{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		m := cgroupMount{root: a[3], point: unescapeMount(a[4])}
		switch b[0] {
		case "cgroup2":
			if _, seen := out["cgroup2"]; !seen {
				out["cgroup2"] = m
			}
		case "cgroup":
			for _, opt := range strings.Split(b[2], ",") {
				if opt == "memory" || opt == "pids" {
					if _, seen := out[opt]; !seen {
						out[opt] = m
					}
				}
			}
		}
	}
	return out, sc.Err()
}

// ownCgroups reads /proc/self/cgroup: controller → path ("" for v2).
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

func hasWords(s string, words ...string) bool {
	fields := strings.Fields(s)
	for _, w := range words {
		found := false
		for _, f := range fields {
			found = found || f == w
		}
		if !found {
			return false
		}
	}
	return true
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
