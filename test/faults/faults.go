// Package faults is the fault suite of glm serve: it runs real glm serve
// processes on loopback in front of the scripted upstream
// (zhipuai/zhipuaitest), injects one fault at a time under load and,
// after each, checks what docs/design.md §3 promises: every request
// answered or failed with its V4 code, every request logged once, usage
// rows and request-log rows one to one, money conserved to the unit
// (charges = package + cash drops), tasks finished or failed with a
// reason. A soak repeats the rounds and compares the server's
// goroutines, descriptors and memory at its start and end.
//
// The test in this directory runs one short round; `glm bench faults
// --duration 10m` runs the soak.
package faults

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// Options configure a run.
type Options struct {
	// Bin is the glm binary the servers and commands run.
	Bin string
	// Dir is a scratch directory for the data and the backends file.
	Dir string
	// PGDSN, when set, puts the servers on this PostgreSQL database (an
	// empty one); otherwise they share a SQLite file in Dir.
	PGDSN string
	// PGData, with PGDSN, is the data directory of that PostgreSQL
	// cluster, which the suite restarts under load with pg_ctl. Empty:
	// no restart fault.
	PGData string
	// Duration repeats the rounds until it has passed; 0 runs one round.
	Duration time.Duration
	// Scale multiplies the requests of each fault (default 1).
	Scale int
	// Out receives one line per fault and the soak's figures.
	Out io.Writer
}

// Report is what a run measured.
type Report struct {
	Rounds     int
	Faults     int
	Requests   int
	Start, End Resources // the main server's, after the first round and at the end
	Money      Money
}

// fault is one fault: what it does to the world while load runs, and
// which answers its requests may get.
type fault struct {
	name string
	// only limits it to one database engine ("sqlite", "postgres").
	only    string
	allowed []string
	// lossy: the fault kills a server, so requests in its last batch may
	// be lost whole (uncharged and unlogged).
	lossy bool
	run   func(ctx context.Context, r *round) ([]outcome, error)
}

// round is one fault's run: the site, the main server's client and the
// request-id prefix that finds its rows.
type round struct {
	s      *site
	c      *client
	prefix string
	n      int // requests per load
	tasks  []string
	main   *server
	seq    atomic.Int64
}

// id names the round's next request: unique within the round, so its
// request-log rows can be counted.
func (r *round) id() string { return fmt.Sprintf("%s%d", r.prefix, r.seq.Add(1)) }

// submitTasks submits k async tasks with mode; their ids are checked
// after the fault.
func (r *round) submitTasks(ctx context.Context, c *client, k int, mode string) []outcome {
	outs := run(k, k, func(i int) outcome {
		return c.submit(ctx, "t"+r.id(), mode)
	})
	for _, o := range outs {
		if o.task != "" {
			r.tasks = append(r.tasks, o.task)
		}
	}
	return outs
}

// recover waits until the main server answers a plain chat again (a
// burst of backend failures opens the backend's circuit for a while, and
// then 503 with 1234 is the right answer), so the next fault starts from
// a healthy server. Its requests are checked like the fault's.
func (r *round) recover(ctx context.Context) []outcome {
	var outs []outcome
	deadline := time.Now().Add(settleWait)
	for i := 0; time.Now().Before(deadline); i++ {
		o := r.c.sync(ctx, r.id(), "ok")
		outs = append(outs, o)
		if o.key == "200" {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return outs
}

// mixed runs n requests alternating sync and stream chats with mode.
func (r *round) mixed(ctx context.Context, c *client, n int, mode string) []outcome {
	return run(n, 8, func(i int) outcome {
		if i%2 == 0 {
			return c.sync(ctx, r.id(), mode)
		}
		return c.stream(ctx, r.id(), mode, readAll)
	})
}

var ok = []string{"200", "200/done", "200/task"}

// allow is ok plus more keys.
func allow(more ...string) []string { return append(append([]string{}, ok...), more...) }

// faultList is every fault, in the order a round runs them.
func faultList() []fault {
	return []fault{
		{name: "upstream latency spikes", allowed: ok, run: func(ctx context.Context, r *round) ([]outcome, error) {
			return append(r.mixed(ctx, r.c, r.n, "slow"), r.submitTasks(ctx, r.c, 3, "slow")...), nil
		}},
		// The backend's own error passes through; once its circuit opens,
		// 503 with 1234 until it closes again.
		{name: "upstream 5xx bursts", allowed: allow("500/500", "503/1234"), run: func(ctx context.Context, r *round) ([]outcome, error) {
			outs := r.mixed(ctx, r.c, r.n/2, "err5xx")
			outs = append(outs, r.submitTasks(ctx, r.c, 3, "err5xx")...)
			return append(outs, r.mixed(ctx, r.c, r.n/2, "ok")...), nil
		}},
		{name: "upstream connection resets", allowed: allow("502/1234", "503/1234"), run: func(ctx context.Context, r *round) ([]outcome, error) {
			return append(r.mixed(ctx, r.c, r.n, "reset"), r.submitTasks(ctx, r.c, 3, "reset")...), nil
		}},
		{name: "streams cut mid-way", allowed: allow("200/1234", "503/1234"), run: func(ctx context.Context, r *round) ([]outcome, error) {
			return run(r.n, 8, func(i int) outcome { return r.c.stream(ctx, r.id(), "cut", readAll) }), nil
		}},
		{name: "stalled streams", allowed: allow("200/1234", "503/1234"), run: func(ctx context.Context, r *round) ([]outcome, error) {
			outs := run(r.n/2, 8, func(i int) outcome { return r.c.stream(ctx, r.id(), "stall", readAll) })
			return append(outs, r.submitTasks(ctx, r.c, 3, "stall")...), nil
		}},
		{name: "slow-reading clients", allowed: ok, run: func(ctx context.Context, r *round) ([]outcome, error) {
			return run(max(r.n/8, 2), 4, func(i int) outcome { return r.c.stream(ctx, r.id(), "big", readSlowly) }), nil
		}},
		{name: "vanishing clients", allowed: allow("left"), run: func(ctx context.Context, r *round) ([]outcome, error) {
			return run(r.n/2, 8, func(i int) outcome {
				if i%2 == 0 {
					return r.c.stream(ctx, r.id(), "slow", readFirst)
				}
				return r.c.stream(ctx, r.id(), "big", readNone)
			}), nil
		}},
		{name: "silent-body clients", allowed: allow("408/1210", "closed"), run: func(ctx context.Context, r *round) ([]outcome, error) {
			silent := make(chan []outcome, 1)
			go func() { silent <- run(20, 20, func(int) outcome { return r.c.silentBody(ctx) }) }()
			outs := r.mixed(ctx, r.c, r.n/2, "ok")
			return append(outs, <-silent...), nil
		}},
		{name: "SQLite busy", only: "sqlite", allowed: ok, run: func(ctx context.Context, r *round) ([]outcome, error) {
			held := make(chan error, 1)
			go func() { held <- r.s.holdSQLiteLock(ctx, 3*time.Second) }()
			outs := r.mixed(ctx, r.c, r.n, "ok")
			outs = append(outs, r.submitTasks(ctx, r.c, 3, "ok")...)
			return outs, <-held
		}},
		{name: "PostgreSQL restarted under load", only: "postgres-restart", allowed: allow("500/500", "503/500", "429/1305"),
			run: func(ctx context.Context, r *round) ([]outcome, error) {
				restarted := make(chan error, 1)
				go func() {
					time.Sleep(300 * time.Millisecond)
					restarted <- r.s.restartPG(ctx)
				}()
				outs := r.mixed(ctx, r.c, r.n, "slow")
				err := <-restarted
				return append(outs, r.submitTasks(ctx, r.c, 3, "ok")...), err
			}},
		{name: "kill -9 of a server under load, then restart", lossy: true, allowed: allow("closed", "200/cut"), run: killUnderLoad},
	}
}

// killUnderLoad runs load against a second server on the same database,
// kills it (-9) at three points of the load, and restarts it each time;
// the main server, whose resources the soak watches, keeps running.
func killUnderLoad(ctx context.Context, r *round) ([]outcome, error) {
	var outs []outcome
	base := r.prefix
	if p := r.s.replica; p != nil { // the last round's restarted replica
		r.s.replica = nil
		r.s.forget(p)
		if err := p.stop(30 * time.Second); err != nil {
			return outs, err
		}
	}
	for k := range 3 {
		srv, err := r.s.start(ctx, "replica")
		if err != nil {
			return outs, err
		}
		c := newClient(srv.base, r.s.key)
		r.prefix = fmt.Sprintf("%sk%d-", base, k)
		outs = append(outs, r.submitTasks(ctx, c, 3, "slow")...)
		done := make(chan []outcome, 1)
		go func() { done <- r.mixed(ctx, c, r.n, "slow") }()
		time.Sleep(time.Duration(100+rand.IntN(700)) * time.Millisecond)
		if err := r.s.kill(srv); err != nil {
			return outs, err
		}
		outs = append(outs, <-done...)
	}
	// The last kill's restart; it stays up until the next round's kill
	// fault or the end of the run.
	p, err := r.s.start(ctx, "replica")
	if err != nil {
		return outs, err
	}
	r.s.replica = p
	r.prefix = base
	return outs, nil
}

// Run runs the suite: one round of every fault, or rounds until
// o.Duration has passed.
func Run(ctx context.Context, o Options) (Report, error) {
	var rep Report
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Scale < 1 {
		o.Scale = 1
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return rep, err
	}
	s, err := newSite(ctx, o)
	if err != nil {
		return rep, err
	}
	defer s.close()
	main, err := s.start(ctx, "main")
	if err != nil {
		return rep, err
	}
	engine := "sqlite"
	if o.PGDSN != "" {
		engine = "postgres"
	}
	start := time.Now()
	for round := 1; ; round++ {
		for i, f := range faultList() {
			switch {
			case f.only == "sqlite" && engine != "sqlite",
				f.only == "postgres-restart" && (engine != "postgres" || o.PGData == ""):
				continue
			}
			n, err := runFault(ctx, s, main, f, fmt.Sprintf("f%d-%d-", round, i), 24*o.Scale, o.Out)
			rep.Faults++
			rep.Requests += n
			if err != nil {
				return rep, fmt.Errorf("fault %s: %w\nmain server: %s", f.name, err, lastLines(main.stderr.String(), 20))
			}
		}
		rep.Rounds = round
		if round == 1 {
			if rep.Start, err = main.quiet(ctx); err != nil {
				return rep, err
			}
		}
		if time.Since(start) >= o.Duration {
			break
		}
	}
	if rep.End, err = main.quiet(ctx); err != nil {
		return rep, err
	}
	fmt.Fprintf(o.Out, "soak: %d rounds, %d faults, %d requests in %s\n", rep.Rounds, rep.Faults, rep.Requests, time.Since(start).Round(time.Second))
	fmt.Fprintf(o.Out, "soak: main server at start: %s\n", rep.Start)
	fmt.Fprintf(o.Out, "soak: main server at end:   %s\n", rep.End)
	if g, f := rep.End.Goroutines-rep.Start.Goroutines, rep.End.FDs-rep.Start.FDs; g > growthSlack || f > growthSlack {
		return rep, fmt.Errorf("the main server grew across the soak: %+d goroutines, %+d fds (slack %d)", g, f, growthSlack)
	}
	// Stop every server (leases go back), then the money must be exact
	// with nothing leased.
	s.close()
	if rep.Money, err = s.reopenAndCheckMoney(ctx); err != nil {
		return rep, err
	}
	fmt.Fprintf(o.Out, "money after stop: %s — holds\n", rep.Money)
	return rep, nil
}

// growthSlack is how many goroutines or descriptors the main server may
// hold more at the end of a soak than after its first round, when both
// are read with no request in flight and no idle client connection.
const growthSlack = 8

// runFault runs one fault and checks it; it prints the fault's line.
func runFault(ctx context.Context, s *site, main *server, f fault, prefix string, n int, out io.Writer) (int, error) {
	r := &round{s: s, c: newClient(main.base, s.key), prefix: prefix, n: n, main: main}
	outs, err := f.run(ctx, r)
	if err != nil {
		return len(outs), err
	}
	outs = append(outs, r.recover(ctx)...)
	if err := checkCodes(outs, f.allowed); err != nil {
		return len(outs), fmt.Errorf("%w; all codes %s", err, codes(outs))
	}
	lost, err := s.checkLogged(ctx, prefix, outs, f.lossy)
	if err != nil {
		return len(outs), err
	}
	states, err := s.checkTasks(ctx, r.tasks)
	if err != nil {
		return len(outs), err
	}
	if err := s.checkPairs(ctx); err != nil {
		return len(outs), err
	}
	m, err := s.checkMoney(ctx)
	if err != nil {
		return len(outs), err
	}
	note := ""
	if lost > 0 {
		note = fmt.Sprintf(" (%d running or in the unwritten batch at a kill lost whole: no row, no charge)", lost)
	}
	fmt.Fprintf(out, "fault %s: %d requests, codes %s, tasks %v, logged once%s, usage ↔ log one to one, money conserved (%d µ¥ charged so far) — holds\n",
		f.name, len(outs), codes(outs), states, note, m.Charged)
	return len(outs), nil
}

// reopenAndCheckMoney checks the money on a fresh handle after the
// servers stopped, with every lease returned.
func (s *site) reopenAndCheckMoney(ctx context.Context) (Money, error) {
	db, err := openDB(ctx, s.dsn)
	if err != nil {
		return Money{}, err
	}
	s.db = db
	defer func() { _ = db.Close(); s.db = nil }()
	var open int
	if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM billing_leases WHERE state = 'active'`).Scan(&open); err != nil {
		return Money{}, err
	}
	if open != 0 {
		return Money{}, fmt.Errorf("%d leases still active after every server stopped", open)
	}
	if err := s.checkPairs(ctx); err != nil {
		return Money{}, err
	}
	return s.checkMoney(ctx)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// errNoPG says the restart fault has no cluster to restart.
var errNoPG = errors.New("no PostgreSQL data directory to restart")

// pgCtl finds pg_ctl for the restart fault.
func pgCtl() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(dirs) > 0 {
		return dirs[len(dirs)-1], nil
	}
	return "", errors.New("pg_ctl not found")
}
