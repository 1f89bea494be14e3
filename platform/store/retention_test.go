package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// zone8 is a fixed UTC+8 zone, the billing zone's offset.
var zone8 = time.FixedZone("UTC+8", 8*3600)

// seedRequestLog writes n rows spread over 40 days from start, across
// accounts, keys, models, endpoints and outcomes, some of them at the
// edges of a UTC+8 day.
func seedRequestLog(t *testing.T, s *SQL, start time.Time, n int) {
	t.Helper()
	ctx := context.Background()
	models := []string{"glm-4", "glm-4-flash", "embedding-2"}
	endpoints := []string{platform.EndpointChat, platform.EndpointEmbeddings, platform.EndpointAsyncTask}
	codes := []struct {
		status int
		code   string
	}{{200, ""}, {200, ""}, {200, ""}, {401, "1001"}, {429, "1302"}, {402, "1113"}, {500, "1234"}}
	var batch []platform.RequestLog
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * 40 * 24 * time.Hour / time.Duration(n))
		if i%17 == 0 { // the last millisecond of a UTC+8 day
			d := at.In(zone8)
			at = time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, zone8).Add(-time.Millisecond)
		}
		c := codes[i%len(codes)]
		batch = append(batch, platform.RequestLog{
			ID: fmt.Sprintf("req_%06d", i), RequestID: fmt.Sprintf("client-%d", i), CreatedAt: at,
			AccountID: fmt.Sprintf("acct%d", i%3), KeyID: fmt.Sprintf("key%d", i%5), Model: models[i%len(models)],
			Endpoint: endpoints[i%len(endpoints)], Stream: i%2 == 0, Estimated: i%11 == 0,
			Usage:     platform.Usage{PromptTokens: 10 + i%97, CompletionTokens: i % 53, TotalTokens: 10 + i%97 + i%53},
			LatencyMS: int64(i % 1000), HTTPStatus: c.status, ErrorCode: c.code, Backend: "b",
			Charge: platform.Charge{Amount: int64(i % 7 * 1000), PaidBy: "cash"},
		})
		if len(batch) == 500 {
			if err := s.InsertRequestLogs(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	if err := s.InsertRequestLogs(ctx, batch); err != nil {
		t.Fatal(err)
	}
}

func countRows(t *testing.T, s *SQL, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM `+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func openEngine(t *testing.T, dsn string) *SQL {
	t.Helper()
	s, err := Open(context.Background(), dsn, Options{MasterKey: testMaster})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A roll-up deletes exactly the rows before the cut-off and leaves every
// day's figures as they were; running it again, or from two replicas at
// once, changes nothing more.
func TestRollUpRequestLogsKeepsDays(t *testing.T) {
	storetest.EachEngine(t, "retention", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openEngine(t, dsn)
		start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		const n = 3000
		seedRequestLog(t, s, start, n)
		cut := time.Date(2025, 1, 25, 0, 0, 0, 0, zone8)
		var old int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM request_log WHERE created_at < $1`, cut.UnixMilli()).Scan(&old); err != nil {
			t.Fatal(err)
		}
		f := RequestLogDayFilter{}
		before, err := s.RequestLogDays(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		byAcct, err := s.RequestLogDays(ctx, RequestLogDayFilter{AccountID: "acct1", From: "2025-01-10", To: "2025-02-03"})
		if err != nil {
			t.Fatal(err)
		}

		// Two replicas roll up at the same time, in small batches.
		other := openEngine(t, dsn)
		var wg sync.WaitGroup
		results := make([]RollUpResult, 2)
		errs := make([]error, 2)
		for i, st := range []*SQL{s, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = st.RollUpRequestLogs(ctx, RollUpOptions{Before: cut, Batch: 100})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := results[0].Rows + results[1].Rows; got != int64(old) {
			t.Errorf("rolled up %d rows, want the %d before the cut-off", got, old)
		}
		if got, want := countRows(t, s, "request_log"), n-old; got != want {
			t.Errorf("got %d rows left, want %d", got, want)
		}
		after, err := s.RequestLogDays(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(before, after); d != "" {
			t.Errorf("days changed by the roll-up (-before +after):\n%s", d)
		}
		byAcctAfter, err := s.RequestLogDays(ctx, RequestLogDayFilter{AccountID: "acct1", From: "2025-01-10", To: "2025-02-03"})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(byAcct, byAcctAfter); d != "" {
			t.Errorf("one account's days changed (-before +after):\n%s", d)
		}
		again, err := s.RollUpRequestLogs(ctx, RollUpOptions{Before: cut})
		if err != nil || again.Rows != 0 {
			t.Errorf("second roll-up: got %+v, %v; want no rows", again, err)
		}
		t.Logf("request_log %d → %d rows, request_log_daily %d rows", n, countRows(t, s, "request_log"), countRows(t, s, "request_log_daily"))
	})
}

// A roll-up that dies after some batches (here: one batch, then the
// next run) leaves every day exact in between, and the next run finishes
// the job.
func TestRollUpRequestLogsResumes(t *testing.T) {
	storetest.EachEngine(t, "retention", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openEngine(t, dsn)
		start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		seedRequestLog(t, s, start, 1000)
		f := RequestLogDayFilter{}
		before, err := s.RequestLogDays(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		o := RollUpOptions{Before: start.AddDate(0, 2, 0), Batch: 150}
		n, err := s.rollUpLogBatch(ctx, o)
		if err != nil || n != 150 {
			t.Fatalf("one batch: got %d rows, %v; want 150", n, err)
		}
		mid, err := s.RequestLogDays(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(before, mid); d != "" {
			t.Fatalf("days changed after one batch (-before +after):\n%s", d)
		}
		stopped, cancel := context.WithCancel(ctx)
		cancel()
		if res, err := s.RollUpRequestLogs(stopped, o); err == nil || res.Rows != 0 {
			t.Errorf("cancelled roll-up: got %+v, %v; want an error and no rows", res, err)
		}
		res, err := s.RollUpRequestLogs(ctx, o)
		if err != nil || res.Rows != 850 {
			t.Fatalf("rest: got %+v, %v; want 850 rows", res, err)
		}
		after, err := s.RequestLogDays(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(before, after); d != "" {
			t.Errorf("days changed (-before +after):\n%s", d)
		}
		if got := countRows(t, s, "request_log"); got != 0 {
			t.Errorf("got %d rows left, want 0", got)
		}
	})
}
