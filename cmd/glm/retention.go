package main

// Retention: request-log and usage rows older than --retention are rolled
// up per day and deleted, by glm serve in the background and by
// `glm retention run` once. Bills and the daily figures read the roll-ups
// beside the rows, so they are the same before and after.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

const (
	day = 24 * time.Hour
	// defaultRetention is how long request-log and usage rows stay rows.
	defaultRetention = 90 * day
	// minRetentionAge is the youngest a rolled-up row may be. Usage rows
	// reach the database within seconds of their request, and a flush
	// retried after an ambiguous commit relies on the row still being
	// there to skip it: a day's margin keeps a retry from ever meeting a
	// row already rolled up.
	minRetentionAge = day
	// retentionEvery is how often glm serve runs the job.
	retentionEvery = time.Hour
	// retentionPause is left between two batches of glm serve's job, so
	// that SQLite's one writer is free for the server's own writes.
	retentionPause = 10 * time.Millisecond
)

// ageValue is a --retention / --older-than flag: a Go duration or whole
// days ("90d"); 0 keeps everything.
type ageValue struct{ d *time.Duration }

func (v ageValue) String() string {
	if v.d == nil {
		return ""
	}
	return formatAge(*v.d)
}

func formatAge(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

func (v ageValue) Set(s string) error {
	d, err := parseAge(s)
	if err != nil {
		return err
	}
	*v.d = d
	return nil
}

func (ageValue) Type() string { return "age" }

func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		k, err := strconv.ParseInt(n, 10, 32)
		if err != nil || k < 0 {
			return 0, fmt.Errorf("%q: want whole days (90d) or a duration (2160h)", s)
		}
		d = time.Duration(k) * day
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return 0, fmt.Errorf("%q: want whole days (90d) or a duration (2160h)", s)
		}
	}
	if d != 0 && d < minRetentionAge {
		return 0, fmt.Errorf("%q: want 0 (keep everything) or at least %s", s, formatAge(minRetentionAge))
	}
	return d, nil
}

// retentionCutoff is the first instant of the billing-zone day that holds
// now − age: whole days are rolled up, so a day is either all rows or all
// roll-up (rows that arrive late join their day's roll-up on a later run).
func retentionCutoff(now time.Time, age time.Duration) time.Time {
	t := now.Add(-age).In(billing.BillingZone)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, billing.BillingZone)
}

// retention runs the roll-ups on one database.
type retention struct {
	store   *store.SQL
	billing *billing.Store
	log     *slog.Logger
	batch   int
	pause   time.Duration
	// metrics; nil outside glm serve.
	rows *prometheus.CounterVec
	runs *prometheus.CounterVec
}

// retentionResult is what one run did, per table.
type retentionResult struct {
	Before     time.Time    `json:"before"`
	RequestLog tableResult  `json:"request_log"`
	Usage      tableResult  `json:"billing_usage"`
	Took       jsonDuration `json:"took"`
}

type tableResult struct {
	RolledUp int64        `json:"rolled_up"`
	Kept     int64        `json:"kept"`
	Batches  int          `json:"batches"`
	Took     jsonDuration `json:"took"`
}

// jsonDuration prints as "1.5s".
type jsonDuration time.Duration

func (d jsonDuration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *jsonDuration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = jsonDuration(v)
	return err
}

func newRetention(st *store.SQL, log *slog.Logger) *retention {
	return &retention{store: st, billing: billing.NewStore(ledger.New(st.Handle()), nil), log: log}
}

// registerMetrics adds the job's series to reg.
func (r *retention) registerMetrics(reg prometheus.Registerer) {
	r.rows = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_retention_rows_total",
		Help: "Rows retention rolled up into days and deleted (result rolled_up), or left as rows (kept: a lease still open, or a row the audit reports)."},
		[]string{"table", "result"})
	r.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_retention_runs_total",
		Help: "Retention runs per table by result (ok, error)."}, []string{"table", "result"})
	reg.MustRegister(r.rows, r.runs)
}

// run rolls up both tables' rows created before `before`: the request log
// first, then usage. A failure of one table does not stop the other; both
// are logged with their cause and counted.
func (r *retention) run(ctx context.Context, before time.Time) (retentionResult, error) {
	res := retentionResult{Before: before}
	start := time.Now()
	t := time.Now()
	lr, lerr := r.store.RollUpRequestLogs(ctx, store.RollUpOptions{Before: before, Batch: r.batch, Pause: r.pause})
	res.RequestLog = tableResult{RolledUp: lr.Rows, Batches: lr.Batches, Took: jsonDuration(time.Since(t))}
	r.report("request_log", before, res.RequestLog, lerr)
	t = time.Now()
	ur, uerr := r.billing.RollUpUsage(ctx, billing.RollUpOptions{Before: before, Batch: r.batch, Pause: r.pause})
	res.Usage = tableResult{RolledUp: ur.Rows, Kept: ur.Kept, Batches: ur.Batches, Took: jsonDuration(time.Since(t))}
	r.report("billing_usage", before, res.Usage, uerr)
	res.Took = jsonDuration(time.Since(start))
	return res, errors.Join(lerr, uerr)
}

func (r *retention) report(table string, before time.Time, t tableResult, err error) {
	if r.rows != nil {
		r.rows.WithLabelValues(table, "rolled_up").Add(float64(t.RolledUp))
		r.rows.WithLabelValues(table, "kept").Add(float64(t.Kept))
		result := "ok"
		if err != nil {
			result = "error"
		}
		r.runs.WithLabelValues(table, result).Inc()
	}
	attrs := []any{"table", table, "before", before.Format(time.RFC3339), "rolled_up", t.RolledUp, "kept", t.Kept,
		"batches", t.Batches, "took", time.Duration(t.Took)}
	if err != nil {
		r.log.Error("retention: roll-up failed", append(attrs, "err", err)...)
		return
	}
	if t.RolledUp > 0 || t.Kept > 0 {
		r.log.Info("retention: rolled up", attrs...)
	}
}

// retentionLoop is glm serve's background job: a run at start, then every
// retentionEvery, each rolling up what is older than age.
type retentionLoop struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startRetentionLoop(r *retention, age time.Duration, now func() time.Time) *retentionLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &retentionLoop{cancel: cancel}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		tick := time.NewTicker(retentionEvery)
		defer tick.Stop()
		for {
			_, _ = r.run(ctx, retentionCutoff(now(), age)) // logged and counted by run
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return l
}

// Stop ends the job: a batch in flight rolls back (it is one
// transaction), and the next start picks up where it stopped.
func (l *retentionLoop) Stop(context.Context) error {
	l.cancel()
	l.done.Wait()
	return nil
}

// startRetention starts the background job of glm serve, unless
// --retention is 0.
func (a *serveApp) startRetention() {
	if a.o.retention == 0 {
		a.log.Info("retention off (--retention 0): request-log and usage rows are kept")
		return
	}
	r := newRetention(a.store, a.log)
	r.pause = retentionPause
	r.registerMetrics(a.api.Metrics().Registry)
	l := startRetentionLoop(r, a.o.retention, time.Now)
	a.onClose(l.Stop)
	a.log.Info("retention on: rows older than --retention are rolled up per day every hour", "retention", formatAge(a.o.retention))
}

func newRetentionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retention",
		Short: "Roll up old request-log and usage rows per day (bills stay the same)",
	}
	cmd.AddCommand(newRetentionRunCmd())
	return cmd
}

func newRetentionRunCmd() *cobra.Command {
	var f storeFlags
	var beforeFlag string
	var age time.Duration = defaultRetention
	var batch int
	var pauseFlag time.Duration
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Roll up rows older than --older-than (or created before --before) once, now",
		Long: "Request-log rows and usage rows created before the cut-off are added to their day's\n" +
			"roll-up and deleted, --batch rows per transaction, safely while glm serve runs. Bills\n" +
			"(glm bills) and daily usage (glm usage --daily) read the roll-ups with the rows and\n" +
			"do not change. Usage rows paid by a lease still open stay rows until it closes.",
		Example: "  glm retention run                     # rows older than 90 days\n" +
			"  glm retention run --before 2025-01-01 --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			now := time.Now()
			before := retentionCutoff(now, age)
			if cmd.Flags().Changed("before") {
				if cmd.Flags().Changed("older-than") {
					return errors.New("--before and --older-than: give one")
				}
				t, err := parseWhen("--before", beforeFlag)
				if err != nil {
					return err
				}
				before = t
			} else if age == 0 {
				return errors.New("--older-than 0 keeps everything: nothing to do")
			}
			if before.After(now.Add(-minRetentionAge)) {
				return fmt.Errorf("--before %s: want a time at least %s ago (rows younger than that may still be on their way)",
					cst(before), formatAge(minRetentionAge))
			}
			if batch < 1 {
				return fmt.Errorf("--batch must be at least 1, got %d", batch)
			}
			return f.withStore(ctx, func(s *store.SQL) error {
				r := newRetention(s, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
				r.batch, r.pause = batch, pauseFlag
				res, err := r.run(ctx, before)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), res)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "rows created before %s:\n", cst(before))
				fmt.Fprintf(out, "  request_log:   %d rolled up in %d batches, %s\n", res.RequestLog.RolledUp, res.RequestLog.Batches, time.Duration(res.RequestLog.Took))
				fmt.Fprintf(out, "  billing_usage: %d rolled up in %d batches, %d kept (open lease or audit finding), %s\n",
					res.Usage.RolledUp, res.Usage.Batches, res.Usage.Kept, time.Duration(res.Usage.Took))
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().Var(ageValue{&age}, "older-than", "roll up rows older than this (whole days in Beijing time): 90d, 2160h")
	cmd.Flags().StringVar(&beforeFlag, "before", "", "roll up rows created before this time instead (YYYY-MM-DD or \"YYYY-MM-DD hh:mm:ss\" in $"+envTZ+", default UTC+08:00; or RFC 3339)")
	cmd.Flags().IntVar(&batch, "batch", store.DefaultRollUpBatch, "rows per transaction")
	cmd.Flags().DurationVar(&pauseFlag, "pause", 0, "wait this long between transactions (leave room to a busy server)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
