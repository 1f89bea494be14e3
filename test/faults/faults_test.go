package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The short form of the fault suite: one round of every fault against
// real glm serve processes, on SQLite and on a private PostgreSQL that the
// suite restarts under load. `glm bench faults --duration 10m` is the
// soak.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func glmBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "glm-faults-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "glm")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/glm").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// logWriter prints the suite's lines in the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func runSuite(t *testing.T, o Options) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	o.Bin, o.Out = glmBinary(t), logWriter{t}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// Every fault of the engine ran and every check held (Run fails
	// otherwise); the figures are for the log.
	want := len(faultList()) - 1 // the other engine's only fault
	if rep.Faults != want {
		t.Fatalf("ran %d faults, want %d", rep.Faults, want)
	}
	if rep.Money.Rows == 0 || rep.Money.PackageUsed == 0 || rep.Money.Cash == 0 {
		t.Fatalf("money %s: want charges paid by both the package and cash", rep.Money)
	}
}

func TestFaultsSQLite(t *testing.T) {
	t.Parallel()
	runSuite(t, Options{})
}

func TestFaultsPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the PostgreSQL fault suite starts its own cluster")
	}
	t.Parallel()
	// Not under t.TempDir: as root, the cluster runs as the postgres
	// user, who must be able to reach its directory.
	dir, err := os.MkdirTemp("", "glm-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pgdir := filepath.Join(dir, "pg")
	cmd := exec.Command("../../scripts/pg-start", pgdir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if os.Getenv("GLMKIT_TEST_PG_DSN") != "" {
			t.Fatalf("scripts/pg-start: %v: %s (PostgreSQL tests are on, so its binaries must be installed)", err, stderr.String())
		}
		t.Skipf("scripts/pg-start: %v: %s", err, stderr.String())
	}
	t.Cleanup(func() { _ = exec.Command("../../scripts/pg-stop", pgdir).Run() })
	runSuite(t, Options{Dir: filepath.Join(dir, "run"), PGDSN: strings.TrimSpace(string(out)), PGData: filepath.Join(pgdir, "data")})
}
