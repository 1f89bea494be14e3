package requestlog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/promtest"
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

// gateSink holds every insert until the gate opens, and keeps the ids it
// was given.
type gateSink struct {
	gate    chan struct{}
	entered chan int // the size of each insert, as it starts
	mu      sync.Mutex
	ids     map[string]int
}

func newGateSink() *gateSink {
	return &gateSink{gate: make(chan struct{}), entered: make(chan int, 100), ids: map[string]int{}}
}

func (s *gateSink) InsertRequestLogs(_ context.Context, rows []platform.RequestLog) error {
	s.entered <- len(rows)
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.ids[r.ID]++
	}
	return nil
}

func (s *gateSink) TouchKeys(context.Context, map[string]time.Time) error { return nil }

func (s *gateSink) stored() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.ids)
}

func waitInsert(t *testing.T, s *gateSink) int {
	t.Helper()
	select {
	case n := <-s.entered:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no insert started within 10 s; want one")
		return 0
	}
}

// TestMaxRowsWakesWriter: a full batch is written without waiting for
// the interval, in inserts of at most MaxRows rows.
func TestMaxRowsWakesWriter(t *testing.T) {
	s := newGateSink()
	close(s.gate)
	b := New(s, Options{Interval: time.Hour, MaxRows: 3})
	defer b.Close(context.Background())
	for i := range 3 {
		b.Record(platform.RequestLog{ID: fmt.Sprint("r", i)})
	}
	if got := waitInsert(t, s); got != 3 {
		t.Fatalf("first insert carried %d rows; want 3", got)
	}
}

// TestRecordBlocksWhenBufferFull: while the writer is stuck, Record
// takes Buffer rows and then waits rather than dropping one; every row
// is stored once the writer moves on.
func TestRecordBlocksWhenBufferFull(t *testing.T) {
	s := newGateSink()
	b := New(s, Options{Interval: time.Hour, MaxRows: 2, Buffer: 4})
	b.Record(platform.RequestLog{ID: "a0"})
	b.Record(platform.RequestLog{ID: "a1"}) // MaxRows: the writer takes both and blocks
	if got := waitInsert(t, s); got != 2 {
		t.Fatalf("first insert carried %d rows; want 2", got)
	}
	for i := range 4 {
		b.Record(platform.RequestLog{ID: fmt.Sprint("b", i)}) // fills Buffer
	}
	var returned atomic.Bool
	done := make(chan struct{})
	go func() {
		b.Record(platform.RequestLog{ID: "c0"})
		returned.Store(true)
		close(done)
	}()
	// A Record that returned here would have dropped or overfilled;
	// waiting proves nothing faster, it only gives a wrong Record the
	// time to show itself.
	time.Sleep(100 * time.Millisecond)
	if returned.Load() {
		t.Fatal("Record returned with Buffer rows waiting and the writer stuck; want it to wait")
	}
	close(s.gate)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record still blocked 10 s after the writer moved on")
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.stored()
	want := []string{"a0", "a1", "b0", "b1", "b2", "b3", "c0"}
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("row %s stored %d times; want once", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("stored %v; want exactly %v", got, want)
	}
}

// TestCloseDuringRecords: rows recorded while Close runs are each stored
// once, by the loop's last flush or by Record itself after Close.
func TestCloseDuringRecords(t *testing.T) {
	s := newGateSink()
	close(s.gate)
	go func() { // entered is only a signal here
		for range s.entered {
		}
	}()
	b := New(s, Options{Interval: time.Millisecond, MaxRows: 7})
	const writers, each = 8, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b.Record(platform.RequestLog{ID: fmt.Sprintf("r-%d-%d", w, i)})
			}
		}()
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	got := s.stored()
	if len(got) != writers*each {
		t.Fatalf("stored %d distinct rows; want %d", len(got), writers*each)
	}
	for id, n := range got {
		if n != 1 {
			t.Fatalf("row %s stored %d times; want once", id, n)
		}
	}
}

// nopSink stores nothing: BenchmarkRecordParallel measures the hand-off
// alone, what a request pays before its reply is sent.
type nopSink struct{}

func (nopSink) InsertRequestLogs(context.Context, []platform.RequestLog) error { return nil }
func (nopSink) TouchKeys(context.Context, map[string]time.Time) error          { return nil }

func BenchmarkRecordParallel(b *testing.B) {
	bt := New(nopSink{}, Options{})
	row := platform.RequestLog{ID: "r", CreatedAt: time.Now(), Endpoint: platform.EndpointChat, KeyID: "k"}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bt.Record(row)
		}
	})
	b.StopTimer()
	bt.Close(context.Background())
}

// TestIntervalStartsWithFirstRow: the writer's timer runs only while
// something waits (docs/design.md §6 "Idle wake-ups"), so a row — and a
// key touched by Prepare alone — is written by the interval without Flush,
// again after the writer has gone quiet.
func TestIntervalStartsWithFirstRow(t *testing.T) {
	sink := &touchSink{touched: map[string]time.Time{}}
	b := New(sink, Options{Interval: 20 * time.Millisecond})
	defer b.Close(context.Background())
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	// written waits until sink holds rows rows and key's touch at at.
	written := func(what string, rows int, key string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			sink.mu.Lock()
			got, touched := sink.rows, sink.touched[key]
			sink.mu.Unlock()
			if got == rows && touched.Equal(at) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: rows %d, %s touched at %v; want %d rows and %s at %v within 10 s",
					what, got, key, touched, rows, key, at)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for round := 1; round <= 2; round++ {
		b.Record(platform.RequestLog{ID: fmt.Sprint("r", round)})
		key := fmt.Sprint("k", round)
		b.Prepare(&platform.RequestLog{ID: fmt.Sprint("m", round), KeyID: key, CreatedAt: at})
		written(fmt.Sprint("round ", round), round, key)
		time.Sleep(60 * time.Millisecond) // quiet: the timer has stopped
	}
	// Prepare alone starts the interval too.
	b.Prepare(&platform.RequestLog{ID: "m3", KeyID: "k3", CreatedAt: at})
	written("Prepare alone", 2, "k3")
}

// TestMetricsCountWritesAndFailures: each stored batch is one observed
// write and its rows; a failed write (retried) is counted as an error.
func TestMetricsCountWritesAndFailures(t *testing.T) {
	sink := &flakySink{SQL: openStore(t)}
	sink.fails.Store(1)
	m := NewMetrics(nil)
	b := New(sink, Options{Interval: time.Hour, Metrics: m})
	defer b.Close(context.Background())
	b.Record(platform.RequestLog{ID: "r1", Endpoint: platform.EndpointChat, CreatedAt: time.Now()})
	b.Record(platform.RequestLog{ID: "r2", Endpoint: platform.EndpointChat, CreatedAt: time.Now()})
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := promtest.Value(t, m.rows); got != 2 {
		t.Errorf("rows: got %v, want 2", got)
	}
	if got := promtest.Count(t, m.flush); got != 1 {
		t.Errorf("writes observed: got %d, want 1 (the retry that stored the rows)", got)
	}
	if got := promtest.Value(t, m.errors); got != 1 {
		t.Errorf("errors: got %v, want 1 (the first, failed write)", got)
	}
}
