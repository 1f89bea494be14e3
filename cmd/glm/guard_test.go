package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// runFail runs glm in dir and wants it to fail; it returns stderr.
func runFail(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(glmBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GLMKIT_HOME=", "GLMKIT_MASTER_KEY=", "ZHIPUAI_API_KEY="), env...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("glm %v: got exit 0 (%v) with %s, want a refusal", args, err, out)
	}
	return string(ee.Stderr)
}

// A command pointed at a database that does not exist refuses, names the
// path and what chose it, and creates nothing.
func TestCommandsRefuseAMissingDatabase(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "list"}, "no database at " + filepath.Join(dir, ".glmkit", "glm.db") + " (chosen by default"},
		{[]string{"accounts", "list"}, "or create one with glm init"},
		{[]string{"usage"}, "no database at"},
		{[]string{"logs"}, "no database at"},
		{[]string{"keys", "list", "--db", "/nonexistent/dir/glm.db"}, "no database at /nonexistent/dir/glm.db (chosen by --db)"},
		{[]string{"keys", "list", "--data-dir", filepath.Join(dir, "nowhere")}, "(chosen by --data-dir)"},
	} {
		if got := runFail(t, dir, nil, c.args...); !strings.Contains(got, c.want) {
			t.Errorf("glm %v: got %q, want %q", c.args, got, c.want)
		}
	}
	if got := runFail(t, dir, []string{"GLMKIT_HOME=" + filepath.Join(dir, "home")}, "keys", "list"); !strings.Contains(got, "(chosen by $GLMKIT_HOME)") {
		t.Errorf("with $GLMKIT_HOME: got %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("refused commands left %v in the directory, want nothing", entries)
	}
	if _, err := os.Stat("/nonexistent"); err == nil {
		t.Fatal("a refused --db made its directory")
	}
}

// Ids are checked by the one rule the admin API uses; a duplicate says so
// in words.
func TestAccountIDsAndDuplicates(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	runGLM(t, "init", "--data-dir", data)
	for _, id := range []string{"../x", "a b", "..", strings.Repeat("a", 300)} {
		if got := runFail(t, "", nil, "accounts", "create", id, "--data-dir", data); !strings.Contains(got, "want 1–64 characters of A–Z a–z 0–9 _ - .") {
			t.Errorf("accounts create %q: got %q, want the id rule", id, got)
		}
	}
	runGLM(t, "accounts", "create", "acme", "--data-dir", data)
	if got := runFail(t, "", nil, "accounts", "create", "acme", "--data-dir", data); got != "glm: account acme already exists\n" {
		t.Errorf("duplicate: got %q, want %q", got, "glm: account acme already exists\n")
	}
}

// A master key that does not open the database's secrets is a start-up
// error naming both paths, for serve and for every command.
func TestWrongMasterKeyRefusedAtStart(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "glm.db")
	runGLM(t, "init", "--db", db)
	runGLM(t, "keys", "create", "--db", db) // master.key beside glm.db
	other := filepath.Join(dir, "other")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	// No master.key in the other directory: none is made for a database
	// holding secrets.
	got := runFail(t, dir, nil, "serve", "--db", db, "--data-dir", other, "--addr", "127.0.0.1:0", "--config", writeConfig(t, dir, up))
	if !strings.Contains(got, "no master key at "+filepath.Join(other, "master.key")) || !strings.Contains(got, db) {
		t.Errorf("serve without the key: got %q, want both paths", got)
	}
	if _, err := os.Stat(filepath.Join(other, "master.key")); err == nil {
		t.Error("a master key was made for a database holding secrets")
	}
	// Another key there: it does not open them.
	runGLM(t, "init", "--data-dir", other)
	got = runFail(t, dir, nil, "keys", "list", "--db", db, "--data-dir", other)
	if !strings.Contains(got, "the master key "+filepath.Join(other, "master.key")+" does not open the key secrets in "+db) {
		t.Errorf("keys list with another key: got %q, want both paths", got)
	}
}

// One glm serve per data directory; a port in use leaves no first-start
// state behind, and the next start prints the key.
func TestServeLockAndBindBeforeState(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data, cfg := filepath.Join(dir, "data"), writeConfig(t, dir, up)

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := runFail(t, dir, nil, "serve", "--data-dir", data, "--config", cfg, "--addr", busy.Addr().String())
	busy.Close()
	if !strings.Contains(got, "--addr: listen on "+busy.Addr().String()) {
		t.Fatalf("serve on a busy port: got %q, want the --addr error", got)
	}
	if _, err := os.Stat(filepath.Join(data, "glm.db")); err == nil {
		t.Fatal("a failed bind left a database behind")
	}

	p := startServe(t, data, cfg)
	if p.key == "" {
		t.Fatal("the first start after a failed bind printed no key")
	}
	got = runFail(t, dir, nil, "serve", "--data-dir", data, "--config", cfg, "--addr", "127.0.0.1:0")
	want := fmt.Sprintf("data directory %s is served by another glm serve (pid %d)", data, p.cmd.Process.Pid)
	if !strings.Contains(got, want) {
		t.Fatalf("second serve: got %q, want %q", got, want)
	}
}

// glm version and --version say what was built.
func TestVersion(t *testing.T) {
	out := string(runGLM(t, "version"))
	sc := bufio.NewScanner(strings.NewReader(out))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "glm ") || !strings.HasPrefix(lines[1], "commit ") ||
		!strings.HasPrefix(lines[2], "go1.") || !strings.HasPrefix(lines[3], "build tags: ") {
		t.Fatalf("glm version: got %q, want version, commit, Go and tags lines", out)
	}
	if v := string(runGLM(t, "--version")); !strings.HasPrefix(v, "glm ") || !strings.Contains(v, "go1.") {
		t.Fatalf("glm --version: got %q", v)
	}
}

// serve and init make the data directory the operator named, but not a
// directory that only a --db path implies.
func TestInitMakesTheNamedDataDirectory(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	runGLM(t, "init", "--db", filepath.Join(data, "glm.db"), "--data-dir", data)
	if _, err := os.Stat(filepath.Join(data, "glm.db")); err != nil {
		t.Fatalf("init with --data-dir: %v", err)
	}
	got := runFail(t, dir, nil, "init", "--db", filepath.Join(dir, "nowhere", "glm.db"))
	if !strings.Contains(got, "directory "+filepath.Join(dir, "nowhere")+" does not exist") {
		t.Fatalf("init --db in a missing directory: got %q", got)
	}
}
