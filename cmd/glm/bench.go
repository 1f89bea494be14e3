package main

// glm bench: runs that measure glm serve rather than use it. `glm bench
// faults` is the fault suite's soak (test/faults): real glm serve
// processes — this binary — on loopback in front of a scripted upstream,
// every fault in turn, round after round, with the checks after each and
// the main server's goroutines, descriptors and memory at the start and
// the end.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/test/faults"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure glm serve: the fault suite's soak"}
	cmd.AddCommand(newBenchFaultsCmd())
	return cmd
}

func newBenchFaultsCmd() *cobra.Command {
	var (
		duration time.Duration
		dir      string
		pgDSN    string
		pgData   string
		scale    int
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "faults",
		Short: "Run every fault against real glm serve processes for --duration and check nothing is lost",
		Long: `Starts glm serve processes (this binary) on loopback in front of a scripted upstream and
injects one fault at a time under load: upstream latency spikes, 5xx bursts, connection resets,
streams cut mid-way, stalled streams, slow-reading and vanishing clients, silent-body clients,
SQLite busy (or, with --pg-data, a PostgreSQL restart), and kill -9 of a server under load then
restart. After each fault it checks every answer's V4 code, one request-log row per request,
usage rows and request-log rows one to one, money conserved to the unit and tasks finished or
failed with a reason, and prints one line. Rounds repeat until --duration has passed; the main
server's goroutines, open descriptors and RSS are printed for the start and the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case duration < 0:
				return fmt.Errorf("--duration must not be negative, got %s", duration)
			case scale < 1:
				return fmt.Errorf("--scale must be at least 1, got %d", scale)
			case pgData != "" && pgDSN == "":
				return errors.New("--pg-data needs --pg-dsn (the cluster's empty database)")
			case pgDSN != "" && !strings.Contains(pgDSN, "://"):
				return fmt.Errorf("--pg-dsn must be a postgres:// URL, got %q", pgDSN)
			}
			bin, err := os.Executable()
			if err != nil {
				return fmt.Errorf("bench faults: cannot find this binary to run glm serve: %w", err)
			}
			if dir == "" {
				if dir, err = os.MkdirTemp("", "glm-bench-faults-"); err != nil {
					return fmt.Errorf("bench faults: %w", err)
				}
				defer func() {
					if !keep {
						_ = os.RemoveAll(dir)
					}
				}()
			}
			_, err = faults.Run(cmd.Context(), faults.Options{Bin: bin, Dir: dir, PGDSN: pgDSN, PGData: pgData,
				Duration: duration, Scale: scale, Out: cmd.OutOrStdout()})
			if err != nil {
				keep = true // a failed run's data is the evidence
				return fmt.Errorf("bench faults: %w (data kept in %s)", err, dir)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.DurationVar(&duration, "duration", 0, "repeat the rounds of faults until this much time has passed (0: one round)")
	f.StringVar(&dir, "dir", "", "scratch directory for the servers' data (default: a new temporary directory, removed after a pass)")
	f.StringVar(&pgDSN, "pg-dsn", "", "run the servers on this empty PostgreSQL database instead of SQLite")
	f.StringVar(&pgData, "pg-data", "", "the data directory of --pg-dsn's cluster, restarted under load with pg_ctl (as the postgres user when root)")
	f.IntVar(&scale, "scale", 1, "multiply the requests of each fault")
	f.BoolVar(&keep, "keep", false, "keep the temporary directory after a pass")
	return cmd
}
