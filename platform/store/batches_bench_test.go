package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// BenchmarkClaimFinishLine: one line claimed and finished per op, in a
// batch of 20,000 lines on SQLite: the cost a worker pays per line
// besides the model call, which should not grow with the batch.
func BenchmarkClaimFinishLine(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "glm.db"), Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := t0()
	const size = 20_000
	batches := 0
	fill := func() {
		batches++
		id := fmt.Sprintf("batch_%03d", batches)
		lines := make([]platform.BatchLine, size)
		for i := range lines {
			lines[i] = platform.BatchLine{Line: i + 1, CustomID: fmt.Sprint(i), Model: "glm-4", Body: []byte(`{"model":"glm-4"}`), State: platform.LineQueued}
		}
		if err := s.CreateBatch(ctx, platform.Batch{ID: id, AccountID: "a", KeyID: "k", Endpoint: "/v1/chat/completions",
			Status: platform.BatchInProgress, Total: size, CreatedAt: now}, lines); err != nil {
			b.Fatal(err)
		}
	}
	fill()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := s.ClaimLines(ctx, "w", 1, 4, now, now.Add(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			b.StopTimer()
			fill()
			b.StartTimer()
			continue
		}
		got[0].State, got[0].Result = platform.LineDone, []byte(`{}`)
		if ok, err := s.FinishLine(ctx, got[0], "w"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
