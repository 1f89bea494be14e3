package tasks

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/zhipuai"
)

// gate is a scripted model that answers when the test opens it and reports
// calls and cancellations.
type gate struct {
	open      chan struct{}
	started   chan struct{}
	cancelled chan struct{}
	once      sync.Once
}

func newGate() *gate {
	return &gate{open: make(chan struct{}), started: make(chan struct{}, 10), cancelled: make(chan struct{})}
}

func (g *gate) Name() string { return "gate" }

func (g *gate) ChatStream(context.Context, platform.ChatRequest) (platform.Stream, error) {
	return nil, platform.Errorf(platform.CodeUnsupportedMode, "no streams")
}

// Model and Models make the gate its own catalogue: the Zhipu models.
func (g *gate) Model(name string) (platform.ModelInfo, bool) { return platform.LookupZhipuModel(name) }
func (g *gate) Models() []platform.ModelInfo                 { return platform.ZhipuModels() }

func (g *gate) Chat(ctx context.Context, req platform.ChatRequest) (*zhipuai.ChatCompletion, []byte, error) {
	g.started <- struct{}{}
	select {
	case <-g.open:
		return &zhipuai.ChatCompletion{ID: "c1", Model: req.Req.Model, Choices: []zhipuai.Choice{{FinishReason: "stop",
			Message: zhipuai.CompletionMessage{Role: "assistant", Content: "ok"}}}, Usage: zhipuai.Usage{PromptTokens: 1, CompletionTokens: 1, TotalTokens: 2}}, nil, nil
	case <-ctx.Done():
		g.once.Do(func() { close(g.cancelled) })
		return nil, nil, platform.Wrap(platform.CodeNetwork, "request cancelled", ctx.Err())
	}
}

type rows struct {
	mu   sync.Mutex
	rows []platform.RequestLog
}

func (r *rows) Record(row platform.RequestLog) {
	r.mu.Lock()
	r.rows = append(r.rows, row)
	r.mu.Unlock()
}

// calls runs the pool's metered calls on g, recording rows in log.
func calls(g *gate, log *rows) *metered.Service {
	return metered.New(metered.Options{Backend: g, Catalogue: g, Log: log})
}

func setup(t *testing.T) *store.SQL {
	t.Helper()
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "glm.db"), store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateAccount(context.Background(), platform.Account{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func submit(t *testing.T, p *Pool, id string) {
	t.Helper()
	err := p.Submit(context.Background(), platform.Task{ID: id, AccountID: "a", KeyID: "k", RequestID: id, Model: "glm-4",
		Request: []byte(`{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`), CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

func waitState(t *testing.T, s *store.SQL, id string, cond func(platform.Task) bool) platform.Task {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // hang guard only
	for {
		tk, err := s.GetTask(context.Background(), "a", id)
		if err == nil && cond(tk) {
			return tk
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: gave up waiting (last %+v, %v)", id, tk, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLongTaskKeepsItsLease(t *testing.T) {
	s := setup(t)
	g := newGate()
	log := &rows{}
	// A lease long enough that a loaded machine still renews it in time
	// (300 ms once missed its renewal at load average 19), short enough
	// for the test to see a renewal.
	const lease = 1500 * time.Millisecond
	p := New(Options{Store: s, Calls: calls(g, log), Workers: 1, Lease: lease, Poll: 10 * time.Millisecond})
	p.Start()
	defer p.Shutdown(context.Background())
	submit(t, p, "long")
	<-g.started
	first := waitState(t, s, "long", func(tk platform.Task) bool { return tk.State == platform.TaskRunning })
	// Wait until the lease has been renewed past its first expiry, then let
	// another replica's janitor look: the task must not be judged lost.
	waitState(t, s, "long", func(tk platform.Task) bool { return tk.LeaseUntil.After(first.LeaseUntil.Add(lease)) })
	if n, err := s.FailExpiredTasks(context.Background(), first.LeaseUntil.Add(time.Millisecond), "500", MsgWorkerLost); err != nil || n != 0 {
		t.Fatalf("janitor failed %d tasks (%v); the renewed task must survive", n, err)
	}
	close(g.open)
	done := waitState(t, s, "long", func(tk platform.Task) bool { return tk.State != platform.TaskRunning })
	if done.State != platform.TaskSucceeded || len(done.Result) == 0 {
		t.Fatalf("task %+v", done)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.rows) != 1 || log.rows[0].ID != "long" || log.rows[0].Usage.TotalTokens != 2 || log.rows[0].Endpoint != platform.EndpointAsyncTask {
		t.Fatalf("log rows %+v", log.rows)
	}
}

func TestShutdownFailsUnfinishedTasks(t *testing.T) {
	s := setup(t)
	g := newGate()
	p := New(Options{Store: s, Calls: calls(g, &rows{}), Workers: 1, Poll: 10 * time.Millisecond})
	p.Start()
	submit(t, p, "stuck")
	<-g.started
	submit(t, p, "queued") // never claimed: stays queued for the next start
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.cancelled:
	default:
		t.Fatal("the running call was not cancelled")
	}
	tk, _ := s.GetTask(context.Background(), "a", "stuck")
	if tk.State != platform.TaskFailed || tk.ErrorMessage != MsgShutdown {
		t.Fatalf("stuck task %+v", tk)
	}
	q, _ := s.GetTask(context.Background(), "a", "queued")
	if q.State != platform.TaskQueued {
		t.Fatalf("queued task %+v; it must wait for the next start", q)
	}
}

// TestQueuedTasksPerKeyAreCapped: a key with MaxQueuedPerKey tasks queued
// is refused with 1302 (429) and nothing is stored; another key is not.
func TestQueuedTasksPerKeyAreCapped(t *testing.T) {
	s := setup(t)
	p := New(Options{Store: s, Calls: calls(newGate(), &rows{}), MaxQueuedPerKey: 2}) // not started: tasks stay queued
	submit(t, p, "t1")
	submit(t, p, "t2")
	err := p.Submit(context.Background(), platform.Task{ID: "t3", AccountID: "a", KeyID: "k", RequestID: "t3", Model: "glm-4",
		Request: []byte(`{}`), CreatedAt: time.Now()})
	if e := platform.AsError(err); err == nil || e.Code != platform.CodeConcurrency || e.Status() != 429 {
		t.Fatalf("third submit: %v; want 1302 with 429", err)
	}
	if _, err := s.GetTask(context.Background(), "a", "t3"); err == nil {
		t.Fatal("the refused task was stored")
	}
	if err := p.Submit(context.Background(), platform.Task{ID: "o1", AccountID: "a", KeyID: "other", RequestID: "o1", Model: "glm-4",
		Request: []byte(`{}`), CreatedAt: time.Now()}); err != nil {
		t.Fatalf("another key's submit: %v; want it stored", err)
	}
}
