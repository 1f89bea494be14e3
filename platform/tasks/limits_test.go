package tasks

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/zhipuai"
)

// counting is a scripted model that answers with a fixed usage after a
// short pause (so runs that may overlap do) and records how many of its
// calls ran at once.
type counting struct {
	tokens int
	mu     sync.Mutex
	now    int
	most   int
	calls  int
}

func (m *counting) Name() string { return "counting" }
func (m *counting) ChatStream(context.Context, platform.ChatRequest) (platform.Stream, error) {
	return nil, platform.Errorf(platform.CodeUnsupportedMode, "no streams")
}
func (m *counting) Model(name string) (platform.ModelInfo, bool) {
	return platform.LookupZhipuModel(name)
}
func (m *counting) Models() []platform.ModelInfo { return platform.ZhipuModels() }

func (m *counting) Chat(ctx context.Context, req platform.ChatRequest) (*zhipuai.ChatCompletion, []byte, error) {
	m.mu.Lock()
	m.now++
	m.calls++
	m.most = max(m.most, m.now)
	m.mu.Unlock()
	defer func() { m.mu.Lock(); m.now--; m.mu.Unlock() }()
	select {
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
		return nil, nil, platform.Wrap(platform.CodeNetwork, "request cancelled", ctx.Err())
	}
	return &zhipuai.ChatCompletion{ID: "c", Model: req.Req.Model, Choices: []zhipuai.Choice{{FinishReason: "stop",
		Message: zhipuai.CompletionMessage{Role: "assistant", Content: "ok"}}},
		Usage: zhipuai.Usage{PromptTokens: m.tokens / 2, CompletionTokens: m.tokens - m.tokens/2, TotalTokens: m.tokens}}, nil, nil
}

// limitedPool runs a pool whose metered calls go through a real limiter
// with rule for key "k", the way glm serve wires them.
func limitedPool(t *testing.T, s *store.SQL, m *counting, rule limits.Rule, workers int, log *rows) *Pool {
	t.Helper()
	lim := limits.New(limits.Config{Keys: map[string]limits.Rule{"k": rule}})
	calls := metered.New(metered.Options{Backend: m, Catalogue: m, Limiter: lim, Log: log})
	p := New(Options{Store: s, Calls: calls, Workers: workers, Poll: 10 * time.Millisecond})
	p.Start()
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

// finished waits for every task to leave PROCESSING and returns them.
func finished(t *testing.T, s *store.SQL, ids []string) []platform.Task {
	t.Helper()
	out := make([]platform.Task, len(ids))
	for i, id := range ids {
		out[i] = waitState(t, s, id, func(tk platform.Task) bool {
			return tk.State == platform.TaskSucceeded || tk.State == platform.TaskFailed
		})
	}
	return out
}

func submitN(t *testing.T, p *Pool, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("t%02d", i)
		submit(t, p, ids[i])
	}
	return ids
}

// With max_concurrent 1 the pool's four workers never run two tasks of
// the key at once, and no task fails for it: the others wait their turn.
func TestMaxConcurrentOneRunsOneTaskAtATime(t *testing.T) {
	s := setup(t)
	m := &counting{tokens: 2}
	p := limitedPool(t, s, m, limits.Rule{MaxConcurrent: 1}, 4, &rows{})
	for _, tk := range finished(t, s, submitN(t, p, 12)) {
		if tk.State != platform.TaskSucceeded {
			t.Fatalf("task %s: got %s (%s %s), want succeeded after waiting for its turn", tk.ID, tk.State, tk.ErrorCode, tk.ErrorMessage)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.most != 1 || m.calls != 12 {
		t.Fatalf("got %d calls with at most %d at once, want 12 calls, 1 at once", m.calls, m.most)
	}
}

// A 100-token daily cap holds for tasks: once a run's usage crosses it,
// every later run of the key fails with 1304 before any model call.
func TestDailyCapHoldsForTasks(t *testing.T) {
	s := setup(t)
	m := &counting{tokens: 2000}
	log := &rows{}
	p := limitedPool(t, s, m, limits.Rule{DailyTokens: 100, MaxConcurrent: 1}, 4, log)
	var ok, refused int
	for _, tk := range finished(t, s, submitN(t, p, 20)) {
		switch {
		case tk.State == platform.TaskSucceeded:
			ok++
		case tk.ErrorCode == platform.CodeDailyQuota:
			refused++
		default:
			t.Fatalf("task %s: got %s %s %s, want succeeded or 1304", tk.ID, tk.State, tk.ErrorCode, tk.ErrorMessage)
		}
	}
	m.mu.Lock()
	calls := m.calls
	m.mu.Unlock()
	if ok != 1 || refused != 19 || calls != 1 {
		t.Fatalf("got %d succeeded, %d refused, %d model calls; want 1, 19, 1", ok, refused, calls)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	var used int
	for _, r := range log.rows {
		used += r.Usage.TotalTokens
		if r.Usage.TotalTokens == 0 && r.ErrorCode != platform.CodeDailyQuota {
			t.Fatalf("row %+v: a refused run must record 1304", r)
		}
	}
	if len(log.rows) != 20 || used != 2000 {
		t.Fatalf("got %d rows using %d tokens, want 20 rows using 2000", len(log.rows), used)
	}
}

// Without a concurrency limit the cap holds as for sync requests: runs
// admitted while the day was under the cap finish (at most one per
// worker), every later one is refused.
func TestDailyCapWithoutConcurrencyLimit(t *testing.T) {
	s := setup(t)
	m := &counting{tokens: 2000}
	p := limitedPool(t, s, m, limits.Rule{DailyTokens: 100}, 4, &rows{})
	ok := 0
	for _, tk := range finished(t, s, submitN(t, p, 20)) {
		if tk.State == platform.TaskSucceeded {
			ok++
		} else if tk.ErrorCode != platform.CodeDailyQuota {
			t.Fatalf("task %s: got %s %s, want succeeded or 1304", tk.ID, tk.State, tk.ErrorCode)
		}
	}
	if ok < 1 || ok > 4 {
		t.Fatalf("got %d tasks run past a 100-token cap at 2000 tokens each, want 1 to 4 (one per worker)", ok)
	}
}

// A task waiting for its permit at shutdown fails like a running one and
// leaves nothing running.
func TestShutdownFailsWaitingTasks(t *testing.T) {
	s := setup(t)
	g := newGate()
	lim := limits.New(limits.Config{Keys: map[string]limits.Rule{"k": {MaxConcurrent: 1}}})
	calls := metered.New(metered.Options{Backend: g, Catalogue: g, Limiter: lim, Log: &rows{}})
	p := New(Options{Store: s, Calls: calls, Workers: 2, Poll: 10 * time.Millisecond})
	p.Start()
	submit(t, p, "running")
	<-g.started
	submit(t, p, "waiting")
	waitState(t, s, "waiting", func(tk platform.Task) bool { return tk.State == platform.TaskRunning })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"running", "waiting"} {
		tk, _ := s.GetTask(context.Background(), "a", id)
		if tk.State != platform.TaskFailed || tk.ErrorMessage != MsgShutdown {
			t.Fatalf("task %s: got %s %q, want failed with the shutdown message", id, tk.State, tk.ErrorMessage)
		}
	}
}
