package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

func openTest(t *testing.T, dsn string) *SQL {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestFiles: the quota refuses a file that would overflow it, content
// of several chunks reads back whole, pages follow purpose, order and
// cursor, and another account sees nothing.
func TestFiles(t *testing.T) {
	storetest.EachEngine(t, "files", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openTest(t, dsn)
		big := bytes.Repeat([]byte("0123456789"), chunkBytes/5) // two chunks
		f := func(i int, purpose string, n int64) platform.File {
			return platform.File{ID: fmt.Sprintf("file-%02d", i), AccountID: "a1", Filename: "x.jsonl", Purpose: purpose,
				Bytes: n, CreatedAt: t0()}
		}
		if ok, err := s.CreateFile(ctx, f(1, "batch", int64(len(big))), big, int64(len(big))+chunkBytes); err != nil || !ok {
			t.Fatalf("create: got %v, %v; want stored", ok, err)
		}
		if ok, err := s.CreateFile(ctx, f(2, "batch", chunkBytes+1), []byte("x"), int64(len(big))+chunkBytes); err != nil || ok {
			t.Fatalf("create over quota: got %v, %v; want refused", ok, err)
		}
		if ok, err := s.CreateFile(ctx, f(3, "retrieval", 10), []byte("0123456789"), int64(len(big))+chunkBytes); err != nil || !ok {
			t.Fatalf("create within quota: got %v, %v; want stored", ok, err)
		}
		got, err := s.FileContent(ctx, "file-01")
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("content: got %d bytes, %v; want %d bytes back", len(got), err, len(big))
		}
		if n, _ := s.FileBytes(ctx, "a1"); n != int64(len(big))+10 {
			t.Fatalf("file bytes: got %d, want %d", n, len(big)+10)
		}
		list := func(q platform.FileQuery) string {
			t.Helper()
			q.AccountID = "a1"
			if q.Limit == 0 {
				q.Limit = 10
			}
			fs, err := s.ListFiles(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, f := range fs {
				ids = append(ids, f.ID)
			}
			return fmt.Sprint(ids)
		}
		for _, c := range []struct {
			q    platform.FileQuery
			want string
		}{
			{platform.FileQuery{}, "[file-03 file-01]"},
			{platform.FileQuery{Ascending: true}, "[file-01 file-03]"},
			{platform.FileQuery{Purpose: "batch"}, "[file-01]"},
			{platform.FileQuery{After: "file-03"}, "[file-01]"},
			{platform.FileQuery{Limit: 1}, "[file-03]"},
		} {
			if got := list(c.q); got != c.want {
				t.Errorf("list %+v: got %s, want %s", c.q, got, c.want)
			}
		}
		if _, err := s.GetFile(ctx, "a2", "file-01"); !errors.Is(err, platform.ErrNotFound) {
			t.Fatalf("another account's get: got %v, want ErrNotFound", err)
		}
		if err := s.DeleteFile(ctx, "a2", "file-01"); !errors.Is(err, platform.ErrNotFound) {
			t.Fatalf("another account's delete: got %v, want ErrNotFound", err)
		}
		if err := s.DeleteFile(ctx, "a1", "file-01"); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FileContent(ctx, "file-01"); len(got) != 0 {
			t.Fatalf("content after delete: got %d bytes, want none", len(got))
		}
		if err := s.ReplaceFile(ctx, f(4, "batch_output", 3), []byte("abc")); err != nil {
			t.Fatal(err)
		}
		if err := s.ReplaceFile(ctx, f(4, "batch_output", 2), []byte("de")); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.FileContent(ctx, "file-04"); string(got) != "de" {
			t.Fatalf("replaced content: got %q, want %q", got, "de")
		}
	})
}

// TestBatchLines: claims respect the per-batch bound, a finished line
// counts once, a dead worker's line is queued again, cancel stops the
// queued lines, and a batch with nothing left finalizes once.
func TestBatchLines(t *testing.T) {
	storetest.EachEngine(t, "batches", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openTest(t, dsn)
		now := t0()
		mk := func(id string, n int) {
			t.Helper()
			b := platform.Batch{ID: id, AccountID: "a1", KeyID: "k1", Endpoint: "/v1/chat/completions", InputFileID: "f",
				CompletionWindow: "24h", Status: platform.BatchInProgress, Total: n, CreatedAt: now, InProgressAt: now,
				ExpiresAt: now.Add(24 * time.Hour), Metadata: map[string]string{"k": "v"}}
			var lines []platform.BatchLine
			for i := 1; i <= n; i++ {
				lines = append(lines, platform.BatchLine{Line: i, CustomID: fmt.Sprintf("c%d", i), Model: "glm-4",
					Body: []byte(`{}`), State: platform.LineQueued})
			}
			if err := s.CreateBatch(ctx, b, lines); err != nil {
				t.Fatal(err)
			}
		}
		mk("batch_1", 3)
		got, err := s.ClaimLines(ctx, "w1", 10, 2, now, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Line != 1 || got[1].Line != 2 || got[0].AccountID != "a1" || got[0].KeyID != "k1" {
			t.Fatalf("claim: got %+v, want lines 1 and 2 of a1/k1 (per-batch bound 2)", got)
		}
		if more, _ := s.ClaimLines(ctx, "w2", 10, 2, now, now.Add(time.Minute)); len(more) != 0 {
			t.Fatalf("claim at the bound: got %d lines, want 0", len(more))
		}
		l1 := got[0]
		l1.State, l1.Result = platform.LineDone, []byte(`{"custom_id":"c1"}`)
		if ok, err := s.FinishLine(ctx, l1, "w1"); err != nil || !ok {
			t.Fatalf("finish: got %v, %v", ok, err)
		}
		if ok, _ := s.FinishLine(ctx, l1, "w1"); ok {
			t.Fatal("finish twice: got ok, want refused")
		}
		// w1 dies holding line 2: after its lease the line is queued again.
		if n, err := s.RecoverLines(ctx, now.Add(2*time.Minute)); err != nil || n != 1 {
			t.Fatalf("recover: got %d, %v; want 1", n, err)
		}
		got, _ = s.ClaimLines(ctx, "w2", 10, 5, now.Add(2*time.Minute), now.Add(3*time.Minute))
		if len(got) != 2 || got[0].Line != 2 || got[1].Line != 3 {
			t.Fatalf("claim after recovery: got %+v, want lines 2 and 3", got)
		}
		if _, ok, _ := s.ClaimFinalize(ctx, "w2", now, now.Add(time.Minute)); ok {
			t.Fatal("finalize with running lines: got a claim, want none")
		}
		for _, l := range got {
			l.State = platform.LineFailed
			if ok, err := s.FinishLine(ctx, l, "w2"); err != nil || !ok {
				t.Fatalf("finish line %d: %v %v", l.Line, ok, err)
			}
		}
		b, ok, err := s.ClaimFinalize(ctx, "w2", now, now.Add(time.Minute))
		if err != nil || !ok || b.Final != platform.BatchCompleted || b.Completed != 1 || b.Failed != 2 || b.Metadata["k"] != "v" {
			t.Fatalf("finalize claim: got %+v, %v, %v", b, ok, err)
		}
		b.OutputFileID = "out"
		if ok, err := s.FinishBatch(ctx, b, "w2", now); err != nil || !ok {
			t.Fatalf("finish batch: %v %v", ok, err)
		}
		b, _ = s.GetBatch(ctx, "a1", "batch_1")
		if b.Status != platform.BatchCompleted || b.OutputFileID != "out" || b.CompletedAt.IsZero() {
			t.Fatalf("finished batch: got %+v", b)
		}
		if _, ok, _ := s.CancelBatch(ctx, "a1", "batch_1", now); ok {
			t.Fatal("cancel a completed batch: got ok, want refused")
		}

		mk("batch_2", 2)
		if _, err := s.ClaimLines(ctx, "w3", 1, 5, now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		b, ok, err = s.CancelBatch(ctx, "a1", "batch_2", now)
		if err != nil || !ok || b.Status != platform.BatchCancelling {
			t.Fatalf("cancel: got %+v, %v, %v", b, ok, err)
		}
		if more, _ := s.ClaimLines(ctx, "w3", 5, 5, now, now.Add(time.Minute)); len(more) != 0 {
			t.Fatalf("claim after cancel: got %d lines, want 0", len(more))
		}
		lines, _ := s.BatchLines(ctx, "batch_2")
		if lines[0].State != platform.LineRunning || lines[1].State != platform.LineCancelled {
			t.Fatalf("lines after cancel: got %s, %s; want running, cancelled", lines[0].State, lines[1].State)
		}
		// The running line is sent back by a limit after the cancel: it is
		// cancelled, not queued, so the batch can end.
		if err := s.RequeueLine(ctx, lines[0], "w3", now); err != nil {
			t.Fatal(err)
		}
		b, ok, err = s.ClaimFinalize(ctx, "w3", now, now.Add(time.Minute))
		if err != nil || !ok || b.ID != "batch_2" || b.Final != platform.BatchCancelled {
			t.Fatalf("finalize the cancelled batch: got %+v, %v, %v", b, ok, err)
		}
		if ok, err := s.FinishBatch(ctx, b, "w3", now); err != nil || !ok {
			t.Fatalf("finish the cancelled batch: %v %v", ok, err)
		}
		list, err := s.ListBatches(ctx, platform.BatchQuery{AccountID: "a1", Limit: 10})
		if err != nil || len(list) != 2 || list[0].ID != "batch_2" {
			t.Fatalf("list: got %d batches (%v), want 2 newest first", len(list), err)
		}
		if list, _ := s.ListBatches(ctx, platform.BatchQuery{AccountID: "a1", After: "batch_2", Limit: 10}); len(list) != 1 || list[0].ID != "batch_1" {
			t.Fatalf("list after batch_2: got %d, want batch_1", len(list))
		}

		// batch_3 runs past its window: queued lines fail as expired, the
		// running one finishes, then the batch ends expired.
		mk("batch_3", 3)
		held, _ := s.ClaimLines(ctx, "w4", 1, 5, now, now.Add(48*time.Hour))
		later := now.Add(25 * time.Hour)
		n, err := s.ExpireBatches(ctx, later, func(l platform.BatchLine) []byte { return []byte(`{"expired":"` + l.CustomID + `"}`) })
		if err != nil || n != 1 {
			t.Fatalf("expire: got %d, %v; want batch_3", n, err)
		}
		if _, ok, _ := s.ClaimFinalize(ctx, "w4", later, later.Add(time.Minute)); ok {
			t.Fatal("finalize an expiring batch with a running line: got a claim, want none")
		}
		held[0].State = platform.LineDone
		if ok, err := s.FinishLine(ctx, held[0], "w4"); err != nil || !ok {
			t.Fatalf("finish the running line: %v %v", ok, err)
		}
		b, ok, err = s.ClaimFinalize(ctx, "w4", later, later.Add(time.Minute))
		if err != nil || !ok || b.ID != "batch_3" || b.Final != platform.BatchExpired || b.Failed != 2 || b.Completed != 1 {
			t.Fatalf("finalize the expired batch: got %+v, %v, %v", b, ok, err)
		}
		lines, _ = s.BatchLines(ctx, "batch_3")
		if string(lines[2].Result) != `{"expired":"c3"}` || lines[2].State != platform.LineFailed {
			t.Fatalf("expired line: got %s %s", lines[2].State, lines[2].Result)
		}
		if ok, err := s.FinishBatch(ctx, b, "w4", later); err != nil || !ok {
			t.Fatalf("finish: %v %v", ok, err)
		}
		if b, _ = s.GetBatch(ctx, "a1", "batch_3"); b.Status != platform.BatchExpired || b.ExpiredAt.IsZero() {
			t.Fatalf("expired batch: got %s", b.Status)
		}
	})
}
