package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The admin token file is created 0600 and refused, with the fix named,
// when others can read it.
func TestAdminTokenFilePrivate(t *testing.T) {
	t.Setenv(envAdminToken, "")
	dir := t.TempDir()
	tok, created, err := billAdminToken(dir)
	if err != nil || !created || tok == "" {
		t.Fatalf("first call: got %q created=%v err=%v, want a new token", tok, created, err)
	}
	path := filepath.Join(dir, billAdminTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("got mode %v, want 0600", got)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := billAdminToken(dir); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("got %v, want a refusal naming chmod 600 %s", err, path)
	}
}
