package httpapi

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// withLimiter runs the env's metered calls (HTTP and task pool alike)
// through a real limiter, with four task workers.
func withLimiter(lim *limits.Limiter) envOpt {
	return func(_ *proxyConfig, _ *Options, to *taskOptions) {
		to.Calls.Limiter = lim
		to.Workers = 4
	}
}

// inflight is the scripted cloud's view of how many chats it answers at
// once; each answer takes a little while, so runs that may overlap do.
type inflight struct {
	mu         sync.Mutex
	now, most  int
	calls      int
	usageEvery int
}

func (f *inflight) handle(*zhipuaitest.Request) zhipuaitest.Reply {
	f.mu.Lock()
	f.now++
	f.calls++
	f.most = max(f.most, f.now)
	f.mu.Unlock()
	time.Sleep(5 * time.Millisecond)
	f.mu.Lock()
	f.now--
	f.mu.Unlock()
	return zhipuaitest.Text("ok").WithUsage(f.usageEvery/2, f.usageEvery-f.usageEvery/2)
}

func (e *env) submitAsync(t *testing.T) (string, int, string) {
	t.Helper()
	resp := e.do("POST", "/async/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	b := read(t, resp)
	var sub zhipuai.AsyncTaskStatus
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &sub); err != nil {
			t.Fatalf("submit: %s: %v", b, err)
		}
		return sub.ID, 200, ""
	}
	var env zhipuai.ErrorEnvelope
	_ = json.Unmarshal(b, &env)
	return "", resp.StatusCode, string(env.Error.Code)
}

func (e *env) settled(t *testing.T, id string) zhipuai.AsyncCompletion {
	t.Helper()
	var got zhipuai.AsyncCompletion
	waitFor(t, "task "+id+" finished", func() bool {
		got, _ = e.poll(id)
		return got.TaskStatus != zhipuai.TaskProcessing
	})
	return got
}

// Through the HTTP API: 20 tasks of 2,000 tokens each against a 100-token
// daily cap and max_concurrent 1. One runs; the others fail with 1304 and
// never reach the model; a submission after the cap is used is refused at
// once; and never do two tasks of the key run at once.
func TestAsyncTasksKeepTheKeysLimits(t *testing.T) {
	lim := limits.New(limits.Config{})
	e := newEnv(t, withLimiter(lim))
	lim.SetKeyRule(e.key.ID, limits.Rule{DailyTokens: 100, MaxConcurrent: 1})
	f := &inflight{usageEvery: 2000}
	e.up.Handle(f.handle)

	var ids []string
	for i := 0; i < 20; i++ {
		id, status, code := e.submitAsync(t)
		if status != 200 {
			// The cap may already be used by the time the last submissions
			// arrive: then the submission itself is refused.
			if status != 429 || code != platform.CodeDailyQuota {
				t.Fatalf("submission %d: got %d %s, want 200 or 429 1304", i, status, code)
			}
			continue
		}
		ids = append(ids, id)
	}
	ok := 0
	for _, id := range ids {
		got := e.settled(t, id)
		switch {
		case got.TaskStatus == zhipuai.TaskSuccess:
			ok++
		case got.TaskStatus == zhipuai.TaskFail && got.Error != nil && string(got.Error.Code) == platform.CodeDailyQuota:
		default:
			t.Fatalf("task %s: got %+v, want SUCCESS or FAIL 1304", id, got)
		}
	}
	f.mu.Lock()
	most, calls := f.most, f.calls
	f.mu.Unlock()
	if ok != 1 || calls != 1 || most != 1 {
		t.Fatalf("got %d tasks succeeded, %d model calls, %d at once; want 1, 1, 1", ok, calls, most)
	}
	if _, status, code := e.submitAsync(t); status != 429 || code != platform.CodeDailyQuota {
		t.Fatalf("submission after the cap: got %d %s, want 429 1304", status, code)
	}
	// The sync path sees the same quota.
	resp := e.do("POST", "/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
	wantError(t, resp, 429, platform.CodeDailyQuota)
}

// max_concurrent 1 with no daily cap: every task runs, one at a time.
func TestAsyncTasksRunOneAtATime(t *testing.T) {
	lim := limits.New(limits.Config{})
	e := newEnv(t, withLimiter(lim))
	lim.SetKeyRule(e.key.ID, limits.Rule{MaxConcurrent: 1})
	f := &inflight{usageEvery: 2}
	e.up.Handle(f.handle)
	var ids []string
	for i := 0; i < 8; i++ {
		id, status, code := e.submitAsync(t)
		if status != 200 {
			t.Fatalf("submission %d: got %d %s, want 200 (a queued task holds no concurrency slot)", i, status, code)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if got := e.settled(t, id); got.TaskStatus != zhipuai.TaskSuccess {
			t.Fatalf("task %s: got %+v, want SUCCESS", id, got)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls != 8 || f.most != 1 {
		t.Fatalf("got %d model calls, %d at once; want 8, 1", f.calls, f.most)
	}
}

// The rate applies to submissions: the second in a minute under rpm 1 is
// refused with 1303 and stores no task.
func TestAsyncSubmissionRate(t *testing.T) {
	lim := limits.New(limits.Config{})
	e := newEnv(t, withLimiter(lim))
	lim.SetKeyRule(e.key.ID, limits.Rule{RPM: 1})
	e.up.Handle(func(*zhipuaitest.Request) zhipuaitest.Reply { return zhipuaitest.Text("ok").WithUsage(1, 1) })
	id, status, _ := e.submitAsync(t)
	if status != 200 {
		t.Fatalf("first submission: got %d, want 200", status)
	}
	if _, status, code := e.submitAsync(t); status != 429 || code != platform.CodeRateLimit {
		t.Fatalf("second submission: got %d %s, want 429 1303", status, code)
	}
	// The run is not counted against the rate a second time.
	if got := e.settled(t, id); got.TaskStatus != zhipuai.TaskSuccess {
		t.Fatalf("task: got %+v, want SUCCESS", got)
	}
}
