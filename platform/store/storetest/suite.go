// Package storetest is the one behaviour suite every platform.Store must
// pass, and the one helper (EachEngine) that runs the platform's database
// tests — the store's and billing's — on SQLite and on PostgreSQL, so both
// engines are held to the same contract.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// RunSuite runs every store behaviour test; open must return a fresh,
// empty, migrated store for each call.
func RunSuite(t *testing.T, open func(t *testing.T) platform.Store) {
	t.Run("Accounts", func(t *testing.T) { testAccounts(t, open(t)) })
	t.Run("Keys", func(t *testing.T) { testKeys(t, open(t)) })
	t.Run("TaskOwnership", func(t *testing.T) { testTaskOwnership(t, open(t)) })
	t.Run("TaskClaimExactlyOnce", func(t *testing.T) { testTaskClaim(t, open(t)) })
	t.Run("TaskLeases", func(t *testing.T) { testTaskLeases(t, open(t)) })
	t.Run("RequestLog", func(t *testing.T) { testRequestLog(t, open(t)) })
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustAccount(t *testing.T, s platform.Store, id string) platform.Account {
	t.Helper()
	a := platform.Account{ID: id, Name: "acct " + id, CreatedAt: t0}
	if err := s.CreateAccount(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

func testAccounts(t *testing.T, s platform.Store) {
	ctx := context.Background()
	mustAccount(t, s, "a1")
	mustAccount(t, s, "a2")
	got, err := s.GetAccount(ctx, "a2")
	if err != nil || got.Name != "acct a2" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("GetAccount = %+v, %v", got, err)
	}
	if _, err := s.GetAccount(ctx, "nope"); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("GetAccount(unknown) err = %v, want ErrNotFound", err)
	}
	list, err := s.ListAccounts(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListAccounts = %v, %v", list, err)
	}
	if err := s.CreateAccount(ctx, platform.Account{ID: "a1", Name: "dup", CreatedAt: t0}); err == nil {
		t.Fatal("duplicate account id accepted")
	}
}

func testKeys(t *testing.T, s platform.Store) {
	ctx := context.Background()
	mustAccount(t, s, "a1")
	k, err := platform.NewKey("a1", "ci", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != k.Secret || got.AccountID != "a1" || got.Name != "ci" || got.Revoked() || !got.LastUsedAt.IsZero() {
		t.Fatalf("GetKey = %+v, want the created key with its secret", got)
	}
	if _, err := s.GetKey(ctx, "00000000000000000000000000000000"); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("GetKey(unknown) err = %v", err)
	}
	bad, _ := platform.NewKey("no-such-account", "", t0)
	if err := s.CreateKey(ctx, bad); err == nil {
		t.Fatal("key for a missing account accepted (foreign keys off?)")
	}

	list, err := s.ListKeys(ctx, "a1")
	if err != nil || len(list) != 1 || list[0].ID != k.ID || list[0].Secret != "" {
		t.Fatalf("ListKeys = %+v, %v (want one key, no secret)", list, err)
	}

	// Last-used only moves forward, whatever order batches arrive in.
	later, earlier := t0.Add(time.Hour), t0.Add(time.Minute)
	if err := s.TouchKeys(ctx, map[string]time.Time{k.ID: later}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchKeys(ctx, map[string]time.Time{k.ID: earlier}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetKey(ctx, k.ID)
	if !got.LastUsedAt.Equal(later) {
		t.Fatalf("LastUsedAt = %v, want %v", got.LastUsedAt, later)
	}

	if err := s.RevokeKey(ctx, k.ID, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeKey(ctx, k.ID, t0.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetKey(ctx, k.ID)
	if !got.RevokedAt.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("RevokedAt = %v, want the first revocation", got.RevokedAt)
	}
	if err := s.RevokeKey(ctx, "ffffffffffffffffffffffffffffffff", t0); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("RevokeKey(unknown) err = %v", err)
	}
}

func newTask(id, account string, created time.Time) platform.Task {
	return platform.Task{ID: id, AccountID: account, KeyID: "k", RequestID: "r-" + id, Model: "glm-4",
		Request: []byte(`{"model":"glm-4"}`), CreatedAt: created}
}

func testTaskOwnership(t *testing.T, s platform.Store) {
	ctx := context.Background()
	mustAccount(t, s, "a1")
	mustAccount(t, s, "a2")
	if err := s.CreateTask(ctx, newTask("t1", "a1", t0)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetTask(ctx, "a1", "t1")
	if err != nil || got.State != platform.TaskQueued || got.WireStatus() != "PROCESSING" || string(got.Request) != `{"model":"glm-4"}` {
		t.Fatalf("GetTask = %+v, %v", got, err)
	}
	_, errOther := s.GetTask(ctx, "a2", "t1")
	_, errUnknown := s.GetTask(ctx, "a2", "t-none")
	if !errors.Is(errOther, platform.ErrNotFound) || !errors.Is(errUnknown, platform.ErrNotFound) {
		t.Fatalf("other account: %v, unknown id: %v; both must be ErrNotFound", errOther, errUnknown)
	}
}

func testTaskClaim(t *testing.T, s platform.Store) {
	ctx := context.Background()
	mustAccount(t, s, "a1")
	const tasks = 40
	for i := 0; i < tasks; i++ {
		if err := s.CreateTask(ctx, newTask(fmt.Sprintf("t%03d", i), "a1", t0.Add(time.Duration(i)*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}
	// Eight workers race; every task must be claimed by exactly one.
	var mu sync.Mutex
	claimed := map[string]string{}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(worker string) {
			defer wg.Done()
			for {
				got, err := s.ClaimTasks(ctx, worker, 3, t0, t0.Add(time.Minute))
				if err != nil {
					errc <- err
					return
				}
				if len(got) == 0 {
					return
				}
				if len(got) > 3 {
					errc <- fmt.Errorf("asked for 3 tasks, claimed %d", len(got))
				}
				mu.Lock()
				for _, tk := range got {
					if prev, dup := claimed[tk.ID]; dup {
						errc <- fmt.Errorf("task %s claimed by %s and %s", tk.ID, prev, worker)
					}
					claimed[tk.ID] = worker
					if tk.State != platform.TaskRunning || tk.Worker != worker || tk.Attempts != 1 {
						errc <- fmt.Errorf("claimed task %+v", tk)
					}
				}
				mu.Unlock()
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(claimed) != tasks {
		t.Fatalf("claimed %d tasks, want %d", len(claimed), tasks)
	}
	// Oldest first: a fresh queue hands out t000 first.
	if err := s.CreateTask(ctx, newTask("late", "a1", t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTask(ctx, newTask("early", "a1", t0.Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimTasks(ctx, "w", 1, t0, t0.Add(time.Minute))
	if err != nil || len(got) != 1 || got[0].ID != "early" {
		t.Fatalf("ClaimTasks = %+v, %v; want the oldest task", got, err)
	}
}

func testTaskLeases(t *testing.T, s platform.Store) {
	ctx := context.Background()
	mustAccount(t, s, "a1")
	for _, id := range []string{"done", "lost", "held", "shutdown"} {
		if err := s.CreateTask(ctx, newTask(id, "a1", t0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ClaimTasks(ctx, "w1", 3, t0, t0.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ClaimTasks(ctx, "w2", 1, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	held, _ := s.GetTask(ctx, "a1", "held")
	if held.Worker != "w1" {
		t.Fatalf("task held claimed by %q", held.Worker)
	}
	// Only the holder can finish.
	ok, err := s.FinishTask(ctx, "done", "intruder", platform.Task{State: platform.TaskSucceeded, Result: []byte(`{}`)})
	if err != nil || ok {
		t.Fatalf("FinishTask by a non-holder = %v, %v", ok, err)
	}
	ok, err = s.FinishTask(ctx, "done", "w1", platform.Task{State: platform.TaskSucceeded, Result: []byte(`{"x":1}`), FinishedAt: t0.Add(time.Second)})
	if err != nil || !ok {
		t.Fatalf("FinishTask = %v, %v", ok, err)
	}
	if ok, _ := s.RenewLease(ctx, "held", "w1", t0.Add(time.Minute)); !ok {
		t.Fatal("RenewLease by the holder failed")
	}
	// At t0+20s "lost" (lease t0+10s) has expired; "held" (renewed) has not.
	n, err := s.FailExpiredTasks(ctx, t0.Add(20*time.Second), "500", "worker lost")
	if err != nil || n != 1 {
		t.Fatalf("FailExpiredTasks = %d, %v; want 1", n, err)
	}
	lost, _ := s.GetTask(ctx, "a1", "lost")
	if lost.State != platform.TaskFailed || lost.ErrorMessage != "worker lost" || lost.WireStatus() != "FAIL" {
		t.Fatalf("lost task = %+v", lost)
	}
	if ok, _ := s.FinishTask(ctx, "lost", "w1", platform.Task{State: platform.TaskSucceeded, Result: []byte(`{}`)}); ok {
		t.Fatal("a failed task was finished again (would run twice)")
	}
	if ok, _ := s.RenewLease(ctx, "lost", "w1", t0.Add(time.Hour)); ok {
		t.Fatal("renewed a lost claim")
	}
	// The task's call wrote its row before the shutdown: that row stays.
	if err := s.InsertRequestLogs(ctx, []platform.RequestLog{{ID: "shutdown", CreatedAt: t0, AccountID: "a1",
		Endpoint: platform.EndpointAsyncTask, HTTPStatus: 200, Charge: platform.Charge{Amount: 7}}}); err != nil {
		t.Fatal(err)
	}
	// Shutdown releases only the worker's own tasks.
	n, err = s.ReleaseTasks(ctx, "w2", t0.Add(30*time.Second), "500", "shut down")
	if err != nil || n != 1 {
		t.Fatalf("ReleaseTasks = %d, %v", n, err)
	}
	// A task a crash or a shutdown failed has its request-log row, written
	// with the failure (docs/design.md §3 "Crash consistency").
	logs, err := s.ListRequestLogs(ctx, platform.RequestLogFilter{AccountID: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]platform.RequestLog{}
	for _, r := range logs {
		byID[r.ID] = r
	}
	if r, ok := byID["lost"]; !ok || r.Endpoint != platform.EndpointAsyncTask || r.HTTPStatus != 500 || r.ErrorCode != "500" || r.KeyID != "k" {
		t.Fatalf("the lost task's request-log row = %+v (found %v); want async-task, 500, code 500", r, ok)
	}
	if r := byID["shutdown"]; r.Charge.Amount != 7 || r.HTTPStatus != 200 {
		t.Fatalf("the released task's row = %+v; want the call's own row kept", r)
	}
	if _, ok := byID["held"]; ok || len(logs) != 2 {
		t.Fatalf("got %d request-log rows (held task logged: %v); want the lost and the released task's", len(logs), ok)
	}
	held, _ = s.GetTask(ctx, "a1", "held")
	if held.State != platform.TaskRunning {
		t.Fatalf("another worker's task changed: %+v", held)
	}
	done, _ := s.GetTask(ctx, "a1", "done")
	if done.State != platform.TaskSucceeded || string(done.Result) != `{"x":1}` || !done.FinishedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("done task = %+v", done)
	}
	// Retention: only finished tasks older than the cut-off go.
	n, err = s.PurgeTasks(ctx, t0.Add(10*time.Second))
	if err != nil || n != 1 {
		t.Fatalf("PurgeTasks = %d, %v; want 1 (the task finished at t0+1s)", n, err)
	}
	if _, err := s.GetTask(ctx, "a1", "done"); !errors.Is(err, platform.ErrNotFound) {
		t.Fatalf("purged task still readable: %v", err)
	}
	if _, err := s.GetTask(ctx, "a1", "held"); err != nil {
		t.Fatalf("running task purged: %v", err)
	}
}

func testRequestLog(t *testing.T, s platform.Store) {
	ctx := context.Background()
	var rows []platform.RequestLog
	for i := 0; i < 120; i++ {
		rows = append(rows, platform.RequestLog{
			ID: fmt.Sprintf("req%04d", i), RequestID: "client", CreatedAt: t0.Add(time.Duration(i) * time.Millisecond),
			AccountID: []string{"a1", "a2"}[i%2], KeyID: "k", Model: "glm-4", Endpoint: platform.EndpointChat,
			Stream: i%3 == 0, Usage: platform.Usage{PromptTokens: i, CompletionTokens: 1, TotalTokens: i + 1},
			Estimated: i%5 == 0, LatencyMS: 7, HTTPStatus: 200, Backend: "zhipu", Charge: platform.Charge{Amount: 3, PaidBy: `{"cash":3}`},
		})
	}
	if err := s.InsertRequestLogs(ctx, rows[:70]); err != nil {
		t.Fatal(err)
	}
	// A retried batch overlapping the first must not duplicate rows.
	if err := s.InsertRequestLogs(ctx, rows[60:]); err != nil {
		t.Fatal(err)
	}
	all, err := s.ListRequestLogs(ctx, platform.RequestLogFilter{})
	if err != nil || len(all) != 120 {
		t.Fatalf("ListRequestLogs = %d rows, %v; want 120", len(all), err)
	}
	if got := all[9]; got.ID != "req0009" || !got.Stream || got.Usage.TotalTokens != 10 || got.Charge.PaidBy != `{"cash":3}` || !got.CreatedAt.Equal(rows[9].CreatedAt) {
		t.Fatalf("row 9 = %+v", got)
	}
	if !all[10].Estimated || all[11].Estimated {
		t.Fatal("estimated flag not kept")
	}
	a2, err := s.ListRequestLogs(ctx, platform.RequestLogFilter{AccountID: "a2", Since: t0.Add(100 * time.Millisecond), Limit: 5})
	if err != nil || len(a2) != 5 || a2[0].ID != "req0101" {
		t.Fatalf("filtered list = %+v, %v", a2, err)
	}
}
