// Package limits enforces the per-key and per-account limits of glm serve:
// concurrency → 1302, requests per minute → 1303, a
// daily token cap → 1304 (all HTTP 429 in the V4 envelope, docs/v4.md §6), and
// a per-backend concurrency gate so a self-hosted engine is not overrun.
// Every limit is off unless the operator sets it.
//
// State is in process memory. With N replicas each enforces its share of
// a limit (Config.Replicas): see notes/metering.md for the tolerance.
package limits

import (
	"context"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Rule is what the limiter enforces for one subject: the limits of a
// platform.LimitRule (RulesOf converts) or of the --limits file; zero
// fields are off.
type Rule struct {
	// MaxConcurrent caps requests in flight (1302).
	MaxConcurrent int `json:"max_concurrent,omitempty"`
	// RPM caps requests started in any 60-second window (1303).
	RPM int `json:"rpm,omitempty"`
	// DailyTokens caps tokens used per calendar day in the billing zone
	// (1304). A request is admitted while the day's total is below the
	// cap; the request that crosses it is charged in full (its usage is
	// only known at the end).
	DailyTokens int64 `json:"daily_tokens,omitempty"`
}

// Off reports whether the rule limits nothing.
func (r Rule) Off() bool { return r.MaxConcurrent <= 0 && r.RPM <= 0 && r.DailyTokens <= 0 }

// Config sets up a Limiter.
type Config struct {
	Accounts map[string]Rule
	Keys     map[string]Rule
	// Replicas is the number of glm serve processes sharing the limits
	// [1]; each enforces ceil(limit/Replicas).
	Replicas int
	// Zone is where a day starts for DailyTokens [UTC+8, the billing zone].
	Zone *time.Location
	Now  func() time.Time
}

// Limiter implements platform.Limiter.
type Limiter struct {
	mu       sync.Mutex
	cfg      Config
	subjects map[string]*subject // "a:<id>" / "k:<id>"
	backends map[string]*Gate
}

var _ platform.Limiter = (*Limiter)(nil)

type subject struct {
	rule     Rule
	inflight int
	// Sliding window: requests in the current and previous minute.
	winStart  time.Time
	cur, prev int
	day       string
	tokens    int64
}

// New returns a limiter with the rules in cfg.
func New(cfg Config) *Limiter {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Zone == nil {
		cfg.Zone = time.FixedZone("CST", 8*3600)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Limiter{cfg: cfg, subjects: map[string]*subject{}, backends: map[string]*Gate{}}
	for id, r := range cfg.Accounts {
		l.SetAccountRule(id, r)
	}
	for id, r := range cfg.Keys {
		l.SetKeyRule(id, r)
	}
	return l
}

// SetAccountRule sets (or, with a zero Rule, clears) an account's limits.
func (l *Limiter) SetAccountRule(id string, r Rule) { l.set("a:"+id, r) }

// SetKeyRule sets (or clears) a key's limits.
func (l *Limiter) SetKeyRule(id string, r Rule) { l.set("k:"+id, r) }

func (l *Limiter) set(k string, r Rule) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setLocked(k, r)
}

func (l *Limiter) setLocked(k string, r Rule) {
	s := l.subjects[k]
	if s == nil {
		if r.Off() {
			return
		}
		s = &subject{}
		l.subjects[k] = s
	}
	s.rule = l.share(r)
}

// share is this replica's part of a rule: ceil(limit/N), never 0 for a
// limit that is on.
func (l *Limiter) share(r Rule) Rule {
	n := l.cfg.Replicas
	div := func(v int) int {
		if v <= 0 {
			return 0
		}
		return (v + n - 1) / n
	}
	out := Rule{MaxConcurrent: div(r.MaxConcurrent), RPM: div(r.RPM)}
	if r.DailyTokens > 0 {
		out.DailyTokens = (r.DailyTokens + int64(n) - 1) / int64(n)
	}
	return out
}

// Acquire admits a request or refuses it with 1302, 1303 or 1304. Both the
// account's and the key's rules apply; a refused request holds nothing.
// req.Stage splits the checks between a submission and its run
// (platform.LimitStage): a submission is checked against the rate and the
// daily quota and counted against the rate, holding nothing; its run is
// checked against the daily quota and the concurrency and holds a permit
// whose Release counts the tokens. A request that runs now does both.
func (l *Limiter) Acquire(_ context.Context, req platform.LimitRequest) (platform.Permit, error) {
	now := l.cfg.Now()
	day := now.In(l.cfg.Zone).Format("2006-01-02")
	rate := req.Stage != platform.LimitRun
	slot := req.Stage != platform.LimitSubmit
	l.mu.Lock()
	defer l.mu.Unlock()
	var subs []*subject
	for _, k := range []string{"a:" + req.AccountID, "k:" + req.KeyID} {
		if s := l.subjects[k]; s != nil && !s.rule.Off() {
			subs = append(subs, s)
		}
	}
	if len(subs) == 0 {
		return permit{}, nil // off by default: no bookkeeping at all
	}
	// Check every rule before changing any counter.
	for _, s := range subs {
		if s.day != day {
			s.day, s.tokens = day, 0
		}
		if s.rule.DailyTokens > 0 && s.tokens >= s.rule.DailyTokens {
			return nil, platform.Errorf(platform.CodeDailyQuota, "今日调用量已达上限 (daily token limit %d reached)", s.rule.DailyTokens)
		}
		if slot && s.rule.MaxConcurrent > 0 && s.inflight >= s.rule.MaxConcurrent {
			return nil, platform.Errorf(platform.CodeConcurrency, "当前API请求过多 (concurrency limit %d)", s.rule.MaxConcurrent)
		}
		if rate && s.rule.RPM > 0 && s.rate(now) >= float64(s.rule.RPM) {
			return nil, platform.Errorf(platform.CodeRateLimit, "请求频率过高 (limit %d requests per minute)", s.rule.RPM)
		}
	}
	for _, s := range subs {
		if rate {
			s.cur++
		}
		if slot {
			s.inflight++
		}
	}
	if !slot {
		return permit{}, nil // a submission holds nothing: its run takes the permit
	}
	return &heldPermit{l: l, subs: subs, day: day}, nil
}

// rate is the sliding-window estimate of requests in the last minute: the
// current minute's count plus the previous minute's, weighted by how much
// of it the window still covers. Unlike a token bucket with a one-minute
// burst it never admits twice the limit in one window.
func (s *subject) rate(now time.Time) float64 {
	if s.winStart.IsZero() {
		s.winStart = now.Truncate(time.Minute)
	}
	for !now.Before(s.winStart.Add(time.Minute)) {
		if now.Before(s.winStart.Add(2 * time.Minute)) {
			s.prev, s.cur = s.cur, 0
			s.winStart = s.winStart.Add(time.Minute)
		} else {
			s.prev, s.cur = 0, 0
			s.winStart = now.Truncate(time.Minute)
		}
	}
	elapsed := now.Sub(s.winStart)
	return float64(s.prev)*float64(time.Minute-elapsed)/float64(time.Minute) + float64(s.cur)
}

type permit struct{}

func (permit) Release(platform.Usage) {}

type heldPermit struct {
	l    *Limiter
	subs []*subject
	day  string
	once sync.Once
}

// Release ends the request and counts its tokens toward the daily cap.
func (p *heldPermit) Release(used platform.Usage) {
	p.once.Do(func() {
		n := int64(used.TotalTokens)
		if n == 0 {
			n = int64(used.PromptTokens + used.CompletionTokens)
		}
		p.l.mu.Lock()
		defer p.l.mu.Unlock()
		for _, s := range p.subs {
			s.inflight--
			if s.day == p.day {
				s.tokens += n
			}
		}
	})
}

// Gate caps concurrent requests to one backend.
type Gate struct {
	slots chan struct{}
}

// SetBackend sets a backend's concurrency (0 removes the gate).
func (l *Limiter) SetBackend(name string, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if max <= 0 {
		delete(l.backends, name)
		return
	}
	share := (max + l.cfg.Replicas - 1) / l.cfg.Replicas
	l.backends[name] = &Gate{slots: make(chan struct{}, share)}
}

// Backend returns the gate of a backend, nil when it has none.
func (l *Limiter) Backend(name string) *Gate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.backends[name]
}

// Acquire waits for a slot until ctx ends; then it returns 1305 (platform
// traffic limited, HTTP 429). A nil gate admits at once.
func (g *Gate) Acquire(ctx context.Context) (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g.slots <- struct{}{}:
		return g.releaser(), nil
	case <-ctx.Done():
		return nil, platform.Wrap(platform.CodeOverloaded, "该模型当前访问量过大，请您稍后再试", ctx.Err())
	}
}

// TryAcquire takes a slot without waiting, or returns 1305.
func (g *Gate) TryAcquire() (release func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	select {
	case g.slots <- struct{}{}:
		return g.releaser(), nil
	default:
		return nil, platform.Errorf(platform.CodeOverloaded, "该模型当前访问量过大，请您稍后再试")
	}
}

func (g *Gate) releaser() func() {
	var once sync.Once
	return func() { once.Do(func() { <-g.slots }) }
}
