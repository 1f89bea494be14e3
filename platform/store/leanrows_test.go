package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// A request-log chunk whose rows all leave the last columns at zero
// writes them as literals (logTails); every row reads back exactly as
// written, whichever tail its chunk took: unmetered rows, metered rows,
// and chunks that a single row with an error, an estimate or images
// makes bind every column — on both engines, through the plain INSERT
// and the careful way (a retried batch).
func TestLeanRequestLogRowsReadBackAsWritten(t *testing.T) {
	storetest.EachEngine(t, "leanlog", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openEngine(t, dsn)
		at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		row := func(i int) platform.RequestLog {
			return platform.RequestLog{ID: fmt.Sprintf("lean_%04d", i), RequestID: fmt.Sprintf("c%d", i),
				CreatedAt: at.Add(time.Duration(i) * time.Millisecond), AccountID: "acct", KeyID: "key", Model: "glm-4",
				Endpoint: platform.EndpointChat, Stream: i%2 == 0, HTTPStatus: 200, LatencyMS: int64(i), Backend: "zhipu",
				Usage: platform.Usage{PromptTokens: i, CompletionTokens: 2 * i, TotalTokens: 3 * i}}
		}
		var rows []platform.RequestLog
		// 8 unmetered rows: the six-literal tail.
		for i := 0; i < 8; i++ {
			rows = append(rows, row(i))
		}
		// 4 metered rows: the four-literal tail.
		for i := 8; i < 12; i++ {
			r := row(i)
			r.Charge = platform.Charge{Amount: int64(i) * 100, PaidBy: `[{"source":"cash"}]`}
			rows = append(rows, r)
		}
		// Chunks of 4 with one row each that binds every column.
		for i, set := range []func(*platform.RequestLog){
			func(r *platform.RequestLog) {
				r.HTTPStatus, r.ErrorCode, r.ErrorDetail = 429, "1302", "upstream said 429"
			},
			func(r *platform.RequestLog) { r.Estimated = true },
			func(r *platform.RequestLog) { r.Usage.Images = 2 },
			func(r *platform.RequestLog) { r.ErrorCode = "1234" },
		} {
			for j := 0; j < 4; j++ {
				r := row(12 + 4*i + j)
				r.Charge = platform.Charge{Amount: 7, PaidBy: "cash"}
				if j == 1 {
					set(&r)
				}
				rows = append(rows, r)
			}
		}
		if got := LeanTail(8, func(j int) int { return logZeros(&rows[j]) }, logTails); got.Len() != 6 {
			t.Fatalf("unmetered chunk: got a tail of %d literals, want 6", got.Len())
		}
		if got := LeanTail(4, func(j int) int { return logZeros(&rows[8+j]) }, logTails); got.Len() != 4 {
			t.Fatalf("metered chunk: got a tail of %d literals, want 4", got.Len())
		}
		for c := 0; c < 4; c++ {
			if got := LeanTail(4, func(j int) int { return logZeros(&rows[12+4*c+j]) }, logTails); got.Len() != 0 {
				t.Fatalf("chunk %d with a set rare column: got a tail of %d literals, want 0", c, got.Len())
			}
		}
		// One batch per shape, so each chunk is one shape.
		for _, r := range [][2]int{{0, 8}, {8, 12}, {12, 16}, {16, 20}, {20, 24}, {24, 28}} {
			if err := s.InsertRequestLogs(ctx, rows[r[0]:r[1]]); err != nil {
				t.Fatal(err)
			}
		}
		// A retried batch: every id stored, the careful way skips all.
		if err := s.InsertRequestLogs(ctx, rows); err != nil {
			t.Fatal(err)
		}
		got, err := s.ListRequestLogs(ctx, platform.RequestLogFilter{AccountID: "acct"})
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			rows[i].CreatedAt = rows[i].CreatedAt.UTC()
		}
		if d := cmp.Diff(rows, got); d != "" {
			t.Fatalf("rows read back (-want +got):\n%s", d)
		}
		if d := cmp.Diff(groupedDays(t, s, "acct"), requestDays(t, s, "acct")); d != "" {
			t.Fatalf("days differ from GROUP BY over the rows (-want +got):\n%s", d)
		}
	})
}
