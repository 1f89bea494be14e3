package limits

import (
	"context"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// A submission counts against the rate and the daily quota but holds no
// concurrency slot; its run takes the slot, is not counted against the
// rate a second time, and its tokens count toward the daily quota.
func TestStagesSplitOneRequestsLimits(t *testing.T) {
	clk := &clock{t: time.Date(2025, 3, 1, 10, 0, 30, 0, time.UTC)}
	l := New(Config{Keys: map[string]Rule{"k": {MaxConcurrent: 1, RPM: 3, DailyTokens: 100}}, Now: clk.Now})
	ctx := context.Background()
	submit, run := req, req
	submit.Stage, run.Stage = platform.LimitSubmit, platform.LimitRun

	// Three submissions fill the rate; none holds a slot.
	for i := 0; i < 3; i++ {
		p, err := l.Acquire(ctx, submit)
		if err != nil {
			t.Fatalf("submission %d: got %v, want admitted", i, err)
		}
		p.Release(platform.Usage{}) // a submission's permit holds nothing
	}
	if _, err := l.Acquire(ctx, submit); code(err) != platform.CodeRateLimit {
		t.Fatalf("fourth submission in the minute: got %q, want 1303", code(err))
	}
	// Runs are not counted against the rate again, but only one runs at once.
	p1, err := l.Acquire(ctx, run)
	if err != nil {
		t.Fatalf("first run: got %v, want admitted", err)
	}
	if _, err := l.Acquire(ctx, run); code(err) != platform.CodeConcurrency {
		t.Fatalf("second run while the first runs: got %q, want 1302", code(err))
	}
	p1.Release(platform.Usage{TotalTokens: 2000})
	// The run's tokens crossed the daily quota: both stages refuse now.
	if _, err := l.Acquire(ctx, run); code(err) != platform.CodeDailyQuota {
		t.Fatalf("run after the quota is used: got %q, want 1304", code(err))
	}
	clk.Add(2 * time.Minute)
	if _, err := l.Acquire(ctx, submit); code(err) != platform.CodeDailyQuota {
		t.Fatalf("submission after the quota is used: got %q, want 1304", code(err))
	}
}

// A request that runs now is counted by both stages' rules at once.
func TestNowStageIsSubmitAndRun(t *testing.T) {
	clk := &clock{t: time.Date(2025, 3, 1, 10, 0, 30, 0, time.UTC)}
	l := New(Config{Keys: map[string]Rule{"k": {MaxConcurrent: 5, RPM: 2}}, Now: clk.Now})
	ctx := context.Background()
	submit := req
	submit.Stage = platform.LimitSubmit
	if _, err := l.Acquire(ctx, req); err != nil {
		t.Fatalf("first request: got %v, want admitted", err)
	}
	if _, err := l.Acquire(ctx, submit); err != nil {
		t.Fatalf("submission: got %v, want admitted", err)
	}
	if _, err := l.Acquire(ctx, req); code(err) != platform.CodeRateLimit {
		t.Fatalf("third request in the minute (one sync, one async before it): got %q, want 1303", code(err))
	}
}
