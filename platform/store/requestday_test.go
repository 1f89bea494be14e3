package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// groupedDays adds up the raw request_log rows per billing day, key and
// model in the database, the way the usage page did before the roll-up:
// the reference the roll-up must equal.
func groupedDays(t *testing.T, s *SQL, account string) []platform.RequestDay {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `SELECT (created_at + $2) / $3 AS d, key_id, model, COUNT(*),
		SUM(prompt_tokens + completion_tokens), SUM(charge_amount) FROM request_log WHERE account_id = $1
		GROUP BY d, key_id, model`, account, billingOffsetMS, dayMS)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []platform.RequestDay
	for rows.Next() {
		var d platform.RequestDay
		var n int64
		if err := rows.Scan(&n, &d.KeyID, &d.Model, &d.Requests, &d.Tokens, &d.Charge); err != nil {
			t.Fatal(err)
		}
		d.Day = time.UnixMilli(n * dayMS).UTC().Format(time.DateOnly)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return sortDays(out)
}

func sortDays(ds []platform.RequestDay) []platform.RequestDay {
	sort.Slice(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Day != b.Day {
			return a.Day < b.Day
		}
		if a.KeyID != b.KeyID {
			return a.KeyID < b.KeyID
		}
		return a.Model < b.Model
	})
	return ds
}

func requestDays(t *testing.T, s *SQL, account string) []platform.RequestDay {
	t.Helper()
	ds, err := s.RequestDays(context.Background(), account, "1970-01-01", "2200-01-01")
	if err != nil {
		t.Fatal(err)
	}
	return sortDays(ds)
}

// logRow is a request-log row of the mixed workload.
func logRow(i int, at time.Time) platform.RequestLog {
	models := []string{"glm-4", "glm-4-flash", "embedding-2"}
	codes := []struct {
		status int
		code   string
	}{{200, ""}, {200, ""}, {429, "1302"}, {500, "1234"}}
	c := codes[i%len(codes)]
	return platform.RequestLog{ID: fmt.Sprintf("req_%06d", i), RequestID: fmt.Sprintf("c%d", i), CreatedAt: at,
		AccountID: fmt.Sprintf("acct%d", i%2), KeyID: fmt.Sprintf("key%d", i%3), Model: models[i%len(models)],
		Endpoint: platform.EndpointChat, Stream: i%2 == 0, HTTPStatus: c.status, ErrorCode: c.code, LatencyMS: int64(i % 300),
		Usage:  platform.Usage{PromptTokens: 10 + i%97, CompletionTokens: i % 53, TotalTokens: 10 + i%97 + i%53},
		Charge: platform.Charge{Amount: int64(i%7) * 1000, PaidBy: "cash"}}
}

// The per-day roll-up equals a GROUP BY over the raw rows after a mixed
// workload — batches retried (ids already stored), two replicas writing
// the same days at once, the billing flush's replacing rows (a task's
// failure row overwritten by its call's row, on another day and model) —
// and retention deleting old raw rows leaves every day as it was.
func TestRequestLogDaysFollowInserts(t *testing.T) {
	storetest.EachEngine(t, "requestday", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openEngine(t, dsn)
		other := openEngine(t, dsn)
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, zone8)
		const n = 2000
		at := func(i int) time.Time {
			if i%13 == 0 { // the last millisecond of a UTC+8 day
				d := start.AddDate(0, 0, i%20)
				return d.AddDate(0, 0, 1).Add(-time.Millisecond)
			}
			return start.Add(time.Duration(i) * 20 * 24 * time.Hour / n)
		}
		// Two replicas write interleaved batches of the same days, each
		// batch also repeating ids the other already wrote.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for w, st := range []*SQL{s, other} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := w * 100; b < n; b += 200 {
					var rows []platform.RequestLog
					for i := max(0, b-30); i < b+100; i++ {
						rows = append(rows, logRow(i, at(i)))
					}
					if err := st.InsertRequestLogs(ctx, rows); err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		// A batch retried after an ambiguous commit changes nothing.
		if err := s.InsertRequestLogs(ctx, []platform.RequestLog{logRow(5, at(5)), logRow(6, at(6))}); err != nil {
			t.Fatal(err)
		}
		// The billing flush replaces rows: some stored, some new, one
		// twice in one batch, on another day and model than the old row.
		var repl []platform.RequestLog
		for _, i := range []int{7, 8, 9, 8, n + 1} {
			r := logRow(i, at(i).Add(30*time.Hour))
			r.Model, r.HTTPStatus, r.ErrorCode, r.Charge.Amount = "glm-4-plus", 200, "", 99_000+int64(len(repl))
			repl = append(repl, r)
		}
		if err := s.h.Tx(ctx, func(tx *sql.Tx) error { return InsertRequestLogsTx(ctx, s.h, tx, repl, true) }); err != nil {
			t.Fatal(err)
		}
		if got := countRows(t, s, "request_log"); got != n+1 {
			t.Fatalf("got %d rows, want %d", got, n+1)
		}
		before := map[string][]platform.RequestDay{}
		for _, acct := range []string{"acct0", "acct1"} {
			want := groupedDays(t, s, acct)
			if d := cmp.Diff(want, requestDays(t, s, acct)); d != "" {
				t.Fatalf("%s: roll-up differs from GROUP BY over the rows (-want +got):\n%s", acct, d)
			}
			before[acct] = want
		}
		// Retention deletes the first ten days' rows; their days stay.
		res, err := s.RollUpRequestLogs(ctx, RollUpOptions{Before: start.AddDate(0, 0, 10), Batch: 150})
		if err != nil || res.Rows == 0 {
			t.Fatalf("retention: got %+v, %v; want rows deleted", res, err)
		}
		for _, acct := range []string{"acct0", "acct1"} {
			if d := cmp.Diff(before[acct], requestDays(t, s, acct)); d != "" {
				t.Errorf("%s: days changed by retention (-before +after):\n%s", acct, d)
			}
		}
	})
}

// Migration 0011's backfill computes the same days as Go's calendar,
// across leap days, centuries and the UTC+8 midnight.
func TestBackfillDaysMatchGo(t *testing.T) {
	body, err := migrationFS.ReadFile("migrations/0011_request_log_day.sql")
	if err != nil {
		t.Fatal(err)
	}
	backfill := splitStatements(string(body))[0]
	storetest.EachEngine(t, "backfill", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openEngine(t, dsn)
		var times []time.Time
		for _, d := range []string{"1970-01-01", "1999-12-31", "2000-02-28", "2000-02-29", "2000-03-01", "2023-02-28",
			"2024-02-29", "2024-12-31", "2026-06-15", "2099-12-31", "2100-02-28", "2100-03-01", "2400-02-29"} {
			day, err := time.ParseInLocation(time.DateOnly, d, zone8)
			if err != nil {
				t.Fatal(err)
			}
			times = append(times, day, day.Add(24*time.Hour-time.Millisecond), day.Add(8*time.Hour))
		}
		for i := 0; i < 400; i++ { // every ~11 days over 12 years
			times = append(times, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*263*time.Hour+time.Duration(i)*time.Minute))
		}
		var rows []platform.RequestLog
		for i, at := range times {
			rows = append(rows, logRow(i, at))
		}
		if err := s.InsertRequestLogs(ctx, rows); err != nil {
			t.Fatal(err)
		}
		want, err := s.RequestLogDays(ctx, RequestLogDayFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, `DELETE FROM request_log_daily`); err != nil {
			t.Fatal(err)
		}
		if _, err := s.db.ExecContext(ctx, backfill); err != nil {
			t.Fatalf("backfill: %v", err)
		}
		got, err := s.RequestLogDays(ctx, RequestLogDayFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(want) < 400 {
			t.Fatalf("got %d days from the inserts, want at least 400", len(want))
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("backfill differs from the days the inserts kept (-insert +backfill):\n%s", d)
		}
	})
}
