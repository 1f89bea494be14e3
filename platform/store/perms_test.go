package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A new SQLite database is created 0600; an existing one others can read
// is refused with the chmod that fixes it, and opens once fixed.
func TestSQLiteFilePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "glm.db")
	db, err := OpenDB(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			continue // -wal/-shm may be gone after a clean close
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: got mode %v, want 0600", filepath.Base(p), got)
		}
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = OpenDB(t.Context(), path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("got %v, want a refusal naming chmod 600 %s", err, path)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = OpenDB(t.Context(), path)
	if err != nil {
		t.Fatalf("after chmod 600: %v", err)
	}
	db.Close()
}

// A master key file others can read is refused the same way.
func TestMasterKeyFilePrivate(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadMasterKey(func(string) string { return "" }, dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, MasterKeyFile)
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err := LoadMasterKey(func(string) string { return "" }, dir)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v, want a refusal naming chmod 600", err)
	}
}
