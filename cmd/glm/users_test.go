package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// glm users: each bad input is refused in the command's own words, and
// the good path creates, lists, re-passwords and disables.
func TestUsersCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	runGLMStdin(t, "", "init", "--data-dir", data)
	runGLMStdin(t, "", "accounts", "create", "acme", "--data-dir", data)
	fail := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(glmBinary(t), append(args, "--data-dir", data)...)
		cmd.Env = append(os.Environ(), "GLMKIT_HOME=", "GLMKIT_MASTER_KEY=")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("glm %v: got success, want an error:\n%s", args, out)
		}
		return string(out)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"password1", []string{"users", "create", "a@acme.test", "--account", "acme"}, "--password-stdin is required"},
		{"short", []string{"users", "create", "a@acme.test", "--account", "acme", "--password-stdin"}, "the password on stdin: at least 8 characters"},
		{"password1", []string{"users", "create", "nope", "--account", "acme", "--password-stdin"}, `EMAIL "nope" is not an e-mail address`},
		{"password1", []string{"users", "create", "a@acme.test", "--role", "member", "--password-stdin"}, "--role member needs --account"},
		{"password1", []string{"users", "create", "a@acme.test", "--role", "admin", "--account", "acme", "--password-stdin"}, "--role admin takes no --account"},
		{"password1", []string{"users", "create", "a@acme.test", "--role", "boss", "--account", "acme", "--password-stdin"}, `--role "boss"`},
		{"password1", []string{"users", "create", "a@acme.test", "--account", "ghost", "--password-stdin"}, `no account "ghost"`},
		{"", []string{"users", "disable", "ghost@acme.test"}, `no user "ghost@acme.test"`},
	} {
		if got := fail(c.stdin, c.args...); !strings.Contains(got, c.want) {
			t.Errorf("glm %v: got %q, want %q", c.args, got, c.want)
		}
	}
	if out := runGLMStdin(t, "password1\n", "users", "create", "A@acme.test", "--account", "acme", "--password-stdin", "--data-dir", data); !strings.Contains(out, "Created user a@acme.test (role owner, account acme)") {
		t.Fatalf("create: got %q", out)
	}
	if got := fail("password1", "users", "create", "a@acme.test", "--account", "acme", "--password-stdin"); !strings.Contains(got, "already exists") {
		t.Fatalf("duplicate: got %q, want already exists", got)
	}
	runGLMStdin(t, "password2", "users", "passwd", "a@acme.test", "--password-stdin", "--data-dir", data)
	runGLMStdin(t, "", "users", "disable", "a@acme.test", "--data-dir", data)
	out := runGLMStdin(t, "", "users", "list", "--data-dir", data)
	if !strings.Contains(out, "a@acme.test") || strings.Contains(out, "argon2") || strings.Count(out, "\n") != 2 {
		t.Fatalf("list: got %q, want the one user, disabled, without its hash", out)
	}
}
