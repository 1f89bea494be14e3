package faults

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/glmkit/glmkit/platform/store"
)

func openDB(ctx context.Context, dsn string) (*store.DB, error) { return store.OpenDB(ctx, dsn) }

// holdSQLiteLock takes SQLite's write lock on the site's database from
// another connection and keeps it for d: every writer of the servers
// meets SQLITE_BUSY and must wait or retry, losing nothing.
func (s *site) holdSQLiteLock(ctx context.Context, d time.Duration) error {
	conn, err := s.db.SQL.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlite busy: take the write lock: %w", err)
	}
	// A write inside the lock, so the transaction really holds it.
	if _, err := conn.ExecContext(ctx, "UPDATE accounts SET name = name WHERE id = $1", Account); err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("sqlite busy: %w", err)
	}
	time.Sleep(d)
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// restartPG stops the site's PostgreSQL cluster (fast: open connections
// are cut), waits a moment and starts it again, as its owner.
func (s *site) restartPG(ctx context.Context) error {
	if s.opts.PGData == "" {
		return errNoPG
	}
	ctl, err := pgCtl()
	if err != nil {
		return err
	}
	pg := func(args ...string) error {
		var cmd *exec.Cmd
		if os.Geteuid() == 0 {
			cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", ctl}, args...)...)
		} else {
			cmd = exec.CommandContext(ctx, ctl, args...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("pg_ctl %v: %v: %s", args, err, out)
		}
		return nil
	}
	if err := pg("-D", s.opts.PGData, "-m", "fast", "-w", "stop"); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	return pg("-D", s.opts.PGData, "-w", "-l", s.opts.PGData+"/../server.log", "start")
}
