package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

// A plain batch INSERT that meets a stored id undoes only itself on
// SQLite: the transaction goes on, the rows of its earlier statements
// stay, none of the failed chunk's rows is stored, and the request log
// then stores the chunk's new rows its careful way, each day counted
// once. On PostgreSQL BatchInsertAll runs nothing (an error would end the
// transaction) and the careful way is the only one.
func TestBatchInsertAllUndoesOnlyItself(t *testing.T) {
	storetest.EachEngine(t, "insertall", func(t *testing.T, dsn string) {
		ctx := context.Background()
		s := openEngine(t, dsn)
		at := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
		first := []platform.RequestLog{logRow(1, at), logRow(2, at)}
		// 2 is stored by the first statement; 3 and 4 are new.
		second := []platform.RequestLog{logRow(3, at), logRow(2, at), logRow(4, at)}
		err := s.h.Tx(ctx, func(tx *sql.Tx) error {
			if err := InsertRequestLogsTx(ctx, s.h, tx, first, false); err != nil {
				return err
			}
			q := "INSERT INTO request_log (" + logColumns + ") VALUES " + s.h.Dialect.Values(len(second), logColumnCount)
			all, err := s.h.BatchInsertAll(ctx, tx, q, logChunkArgs(second, logColumnCount))
			if err != nil {
				t.Fatalf("BatchInsertAll: got error %v, want none", err)
			}
			if all {
				t.Fatal("BatchInsertAll: got every row stored, want false (id 2 was stored)")
			}
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM request_log`).Scan(&n); err != nil {
				t.Fatalf("the transaction after the failed statement: %v", err)
			}
			if n != 2 {
				t.Fatalf("after the failed statement: got %d rows, want the first statement's 2", n)
			}
			return InsertRequestLogsTx(ctx, s.h, tx, second, false)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := countRows(t, s, "request_log"); got != 4 {
			t.Fatalf("got %d rows, want 4", got)
		}
		for _, acct := range []string{"acct0", "acct1"} {
			if d := cmp.Diff(groupedDays(t, s, acct), requestDays(t, s, acct)); d != "" {
				t.Fatalf("%s: days differ from GROUP BY over the rows (-want +got):\n%s", acct, d)
			}
		}
	})
}
