package limits

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Rules is a complete set of per-subject rules.
type Rules struct {
	Accounts map[string]Rule `json:"accounts"`
	Keys     map[string]Rule `json:"keys"`
}

// RulesOf is the limiter's form of stored rules (platform.LimitRule, the
// one definition shared with the store and the admin API): the one place
// they are converted.
func RulesOf(rs []platform.LimitRule) Rules {
	out := Rules{Accounts: map[string]Rule{}, Keys: map[string]Rule{}}
	for _, r := range rs {
		rule := Rule{MaxConcurrent: int(r.MaxConcurrent), RPM: int(r.RPM), DailyTokens: r.DailyTokens}
		if r.Subject == platform.LimitAccount {
			out.Accounts[r.ID] = rule
		} else {
			out.Keys[r.ID] = rule
		}
	}
	return out
}

// Merge returns base with over's subjects on top: a subject in over
// replaces base's rule for that subject as a whole (an all-zero rule in
// over turns base's rule off). glm serve: base = the --limits file,
// over = the database (glm limits set, admin API).
func Merge(base, over Rules) Rules {
	out := Rules{Accounts: map[string]Rule{}, Keys: map[string]Rule{}}
	maps.Copy(out.Accounts, base.Accounts)
	maps.Copy(out.Accounts, over.Accounts)
	maps.Copy(out.Keys, base.Keys)
	maps.Copy(out.Keys, over.Keys)
	return out
}

// SetRules makes r the limiter's complete rule set: subjects not in r are
// off. Counters (requests in flight, the RPM window, the day's tokens) of
// subjects that stay limited are kept, so a reload neither forgets
// running requests nor resets a window.
func (l *Limiter) SetRules(r Rules) {
	want := make(map[string]Rule, len(r.Accounts)+len(r.Keys))
	for id, rule := range r.Accounts {
		want["a:"+id] = rule
	}
	for id, rule := range r.Keys {
		want["k:"+id] = rule
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, s := range l.subjects {
		if _, ok := want[k]; !ok {
			s.rule = Rule{}
		}
	}
	for k, rule := range want {
		l.setLocked(k, rule)
	}
}

// Reloader keeps a Limiter in step with rules the operator edits while
// the server runs: every Every it loads them (one small query, never per
// request) and applies Merge(Base, loaded). Reload applies a change at
// once (the admin API calls it after a write).
type Reloader struct {
	l     *Limiter
	base  Rules
	load  func(ctx context.Context) (Rules, error)
	every time.Duration
	log   *slog.Logger

	mu       sync.Mutex // serialises reloads
	cur      Rules
	loadedAt time.Time

	stop chan struct{}
	done chan struct{}
}

// NewReloader returns a reloader for l; call Reload once, then Start.
func NewReloader(l *Limiter, base Rules, load func(ctx context.Context) (Rules, error), every time.Duration, log *slog.Logger) *Reloader {
	if log == nil {
		log = slog.Default()
	}
	return &Reloader{l: l, base: base, load: load, every: every, log: log, cur: Merge(base, Rules{})}
}

// Reload loads the rules now and applies them; on error the limiter keeps
// the rules it has.
func (r *Reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	over, err := r.load(ctx)
	if err != nil {
		return err
	}
	next := Merge(r.base, over)
	if !maps.Equal(next.Accounts, r.cur.Accounts) || !maps.Equal(next.Keys, r.cur.Keys) {
		r.log.Info("limits: rules changed", "accounts", len(next.Accounts), "keys", len(next.Keys))
	}
	r.l.SetRules(next)
	r.cur, r.loadedAt = next, time.Now()
	return nil
}

// Enforced returns the rules last applied (before the replica share) and
// when they were loaded.
func (r *Reloader) Enforced() (Rules, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Merge(r.cur, Rules{}), r.loadedAt
}

// Every is the reload interval.
func (r *Reloader) Every() time.Duration { return r.every }

// Start reloads every Every until Stop.
func (r *Reloader) Start() {
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(r.done)
		t := time.NewTicker(r.every)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), r.every+10*time.Second)
				if err := r.Reload(ctx); err != nil {
					r.log.Warn("limits: reload failed; keeping the rules in force", "err", err)
				}
				cancel()
			}
		}
	}()
}

// Stop ends the reload loop (idempotent only when Start was called once).
func (r *Reloader) Stop() {
	if r.stop == nil {
		return
	}
	close(r.stop)
	<-r.done
	r.stop = nil
}
