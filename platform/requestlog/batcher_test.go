package requestlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
)

func openStore(t *testing.T) *store.SQL {
	t.Helper()
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "glm.db"),
		store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// flakySink fails its first inserts after writing them, the worst case of
// an ambiguous commit.
type flakySink struct {
	*store.SQL
	fails atomic.Int32
}

func (f *flakySink) InsertRequestLogs(ctx context.Context, rows []platform.RequestLog) error {
	if err := f.SQL.InsertRequestLogs(ctx, rows); err != nil {
		return err
	}
	if f.fails.Add(-1) >= 0 {
		return errors.New("connection lost after commit")
	}
	return nil
}

func TestExactlyOnceUnderConcurrency(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	if err := s.CreateAccount(ctx, platform.Account{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	k, _ := platform.NewKey("a", "", time.Now())
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	sink := &flakySink{SQL: s}
	sink.fails.Store(2)
	b := New(sink, Options{MaxRows: 64, Interval: 5 * time.Millisecond})
	const writers, each = 16, 200
	last := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				at := time.Now()
				if w == 0 && i == each-1 {
					at = last
				}
				b.Record(platform.RequestLog{ID: fmt.Sprintf("r-%d-%d", w, i), CreatedAt: at, AccountID: "a", KeyID: k.ID,
					Endpoint: platform.EndpointChat, HTTPStatus: 200})
			}
		}(w)
	}
	wg.Wait()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A row recorded after Close is still written.
	b.Record(platform.RequestLog{ID: "after-close", CreatedAt: time.Now(), Endpoint: platform.EndpointChat})

	rows, err := s.ListRequestLogs(ctx, platform.RequestLogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.ID]++
	}
	if len(rows) != writers*each+1 || len(seen) != len(rows) {
		t.Fatalf("%d rows, %d distinct; want %d, each once", len(rows), len(seen), writers*each+1)
	}
	got, _ := s.GetKey(ctx, k.ID)
	if !got.LastUsedAt.Equal(last) {
		t.Fatalf("last used = %v, want %v", got.LastUsedAt, last)
	}
}

func TestFlushMakesRowsVisible(t *testing.T) {
	s := openStore(t)
	b := New(s, Options{Interval: time.Hour}) // only Flush writes
	defer b.Close(context.Background())
	b.Record(platform.RequestLog{ID: "x", CreatedAt: time.Now(), Endpoint: platform.EndpointModels})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, _ := s.ListRequestLogs(context.Background(), platform.RequestLogFilter{})
	if len(rows) != 1 || rows[0].ID != "x" {
		t.Fatalf("rows = %+v", rows)
	}
}

func BenchmarkRecord(b *testing.B) {
	s, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "glm.db"),
		store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	bt := New(s, Options{})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bt.Record(platform.RequestLog{ID: fmt.Sprint(i), CreatedAt: time.Now(), Endpoint: platform.EndpointChat})
	}
	bt.Close(context.Background())
}

// touchSink records the last-used times it is given and writes no row.
type touchSink struct {
	mu      sync.Mutex
	rows    int
	touched map[string]time.Time
}

func (s *touchSink) InsertRequestLogs(_ context.Context, rows []platform.RequestLog) error {
	s.mu.Lock()
	s.rows += len(rows)
	s.mu.Unlock()
	return nil
}

func (s *touchSink) TouchKeys(_ context.Context, m map[string]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range m {
		s.touched[k] = v
	}
	return nil
}

// TestPrepareBoundsAndTouches: a row the meter stores is bounded like a
// recorded one, is not written by the batcher, and still moves its key's
// last-used time.
func TestPrepareBoundsAndTouches(t *testing.T) {
	sink := &touchSink{touched: map[string]time.Time{}}
	b := New(sink, Options{Interval: time.Hour})
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	row := platform.RequestLog{ID: "r1", KeyID: "k1", CreatedAt: at, RequestID: string(make([]byte, 10_000))}
	b.Prepare(&row)
	if len(row.RequestID) >= 10_000 {
		t.Fatalf("request_id kept %d bytes; want it bounded", len(row.RequestID))
	}
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.rows != 0 || !sink.touched["k1"].Equal(at) {
		t.Fatalf("batcher wrote %d rows and touched %v; want no row, k1 at %v", sink.rows, sink.touched, at)
	}
}
