package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/glmkit/glmkit/platform"
)

// logColumns are a row's columns as written and read (scanLogRows). The
// columns most rows leave at zero come last — the charge (an unmetered
// row has none), then images, estimate and error — so a chunk whose rows
// all leave them at zero writes them as literals (logTails).
const logColumns = `id, request_id, created_at, account_id, key_id, model, endpoint, stream, prompt_tokens,
	completion_tokens, total_tokens, latency_ms, http_status, backend, charge_amount, charge_paid_by,
	images, estimated, error_code, error_detail`

const logColumnCount = 20

// logTails are the literal tails a request-log chunk may be written with,
// longest first (store.LeanTail): no charge and no error (unmetered), or
// a charge and no error (metered); the literals are the zero values of
// the last columns of logColumns.
var logTails = []*Tail{
	NewTail("0", "''", "0", "0", "''", "''"),
	NewTail("0", "0", "''", "''"),
}

// logZeros is how many of r's last columns (logColumns) are at zero.
func logZeros(r *platform.RequestLog) int {
	if r.ErrorDetail != "" || r.ErrorCode != "" || r.Estimated || r.Usage.Images != 0 {
		return 0
	}
	if r.Charge.PaidBy != "" || r.Charge.Amount != 0 {
		return 4
	}
	return 6
}

// InsertRequestLogs writes a batch in one transaction, skipping ids already
// stored, so a flush retried after an ambiguous commit records nothing twice.
func (s *SQL) InsertRequestLogs(ctx context.Context, rows []platform.RequestLog) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: insert request log: %w", err)
	}
	defer tx.Rollback()
	if err := InsertRequestLogsTx(ctx, s.h, tx, rows, false); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: insert request log: %w", err)
	}
	return nil
}

// logChunk bounds the rows of one request-log INSERT (20 parameters a
// row); a power of two, so a batch uses few statement texts (stmts.go).
const logChunk = 64

// InsertRequestLogsTx writes rows inside tx, a transaction of h's pool,
// and adds the rows it really inserted to their days (request_log_daily)
// in the same transaction, so a day counts every stored row once
// (docs/design.md §3 "Request-log days"). The billing flush calls it in
// the transaction that writes the rows' usage rows, so a charged request
// has its row or neither is stored (docs/design.md §3 "Crash
// consistency"). An id already stored is skipped (its day already counts
// it), or, with replace, overwritten: a call's own row, written with its
// usage row, replaces the row a task's failure left when its lease ran
// out while the call was still running, so a row's charge is always its
// usage row's. The replaced row is taken out of its day and the new one
// added.
func InsertRequestLogsTx(ctx context.Context, h *DB, tx *sql.Tx, rows []platform.RequestLog, replace bool) error {
	if len(rows) == 0 {
		return nil
	}
	days := logDays{}
	var skipped []int // rows whose id was already stored, in batch order
	for i := 0; i < len(rows); {
		chunk := rows[i : i+ChunkRows(len(rows)-i, logChunk)]
		tail := LeanTail(len(chunk), func(j int) int { return logZeros(&chunk[j]) }, logTails)
		bound := logColumnCount - tail.Len()
		args := logChunkArgs(chunk, bound)
		values := h.Dialect.ValuesTail(len(chunk), bound, tail)
		all, err := h.BatchInsertAll(ctx, tx, "INSERT INTO request_log ("+logColumns+") VALUES "+values, args)
		if err != nil {
			return fmt.Errorf("store: insert request log: %w", err)
		}
		if all {
			for j := range chunk {
				days.add(rowDay(&chunk[j]), 1)
			}
			i += len(chunk)
			continue
		}
		ids, err := insertLogChunk(ctx, h, tx, len(chunk), values, args)
		if err != nil {
			return fmt.Errorf("store: insert request log: %w", err)
		}
		for j := range chunk {
			r := &chunk[j]
			// RETURNING names each stored row once; a second row with
			// the same id in the batch was not stored.
			if ids[r.ID] {
				delete(ids, r.ID)
				days.add(rowDay(r), 1)
				continue
			}
			skipped = append(skipped, i+j)
		}
		i += len(chunk)
	}
	if replace && len(skipped) > 0 {
		// Rare (a task failed while its call still ran): one row at a
		// time, in batch order, as if each had been inserted alone.
		stmt, err := tx.PrepareContext(ctx, "INSERT INTO request_log ("+logColumns+") VALUES ("+
			h.Dialect.Placeholders(1, logColumnCount)+") ON CONFLICT (id) DO NOTHING")
		if err != nil {
			return fmt.Errorf("store: insert request log: %w", err)
		}
		defer stmt.Close()
		for _, i := range skipped {
			if err := insertLogRow(ctx, tx, stmt, &rows[i], days); err != nil {
				return fmt.Errorf("store: insert request log: %w", err)
			}
		}
	}
	// The days last, in key order, after every row lock this insert takes.
	if err := addLogDays(ctx, h, tx, days.sorted()); err != nil {
		return fmt.Errorf("store: insert request log: add days: %w", err)
	}
	return nil
}

// logChunkArgs is the first bound of rows' columns in logColumns order,
// row after row: the rest are the literals of the chunk's tail.
func logChunkArgs(rows []platform.RequestLog, bound int) []any {
	// Room for the last row's whole append (appendLogArgs).
	args := make([]any, 0, len(rows)*bound+logColumnCount-bound)
	for j := range rows {
		args = appendLogArgs(args, &rows[j], bound)
	}
	return args
}

// appendLogArgs appends the first bound of r's columns (logColumns);
// args needs room for all of them.
func appendLogArgs(args []any, r *platform.RequestLog, bound int) []any {
	n := len(args)
	// Numbers as int64, a driver value as it is: an int goes through
	// database/sql's reflective converter, boxed a second time.
	args = append(args, r.ID, r.RequestID, ms(r.CreatedAt), r.AccountID, r.KeyID, r.Model, r.Endpoint,
		b2i(r.Stream), int64(r.Usage.PromptTokens), int64(r.Usage.CompletionTokens), int64(r.Usage.TotalTokens),
		r.LatencyMS, int64(r.HTTPStatus), r.Backend, r.Charge.Amount, r.Charge.PaidBy, int64(r.Usage.Images),
		b2i(r.Estimated), r.ErrorCode, r.ErrorDetail)
	return args[:n+bound]
}

// insertLogChunk inserts a chunk of rows (values: its VALUES list, args:
// their logChunkArgs) in one statement and returns the ids it stored: ON
// CONFLICT DO NOTHING skips an id already stored, and RETURNING names
// only the rows that were new. One multi-row statement instead of one per row: the
// per-statement work (binding through database/sql, a VDBE run) was most
// of a row's cost. On SQLite it runs only for a chunk BatchInsertAll
// could not store whole.
func insertLogChunk(ctx context.Context, h *DB, tx *sql.Tx, rows int, values string, args []any) (map[string]bool, error) {
	q, err := h.BatchQuery(ctx, tx, "INSERT INTO request_log ("+logColumns+") VALUES "+values+
		" ON CONFLICT (id) DO NOTHING RETURNING id", args)
	if err != nil {
		return nil, err
	}
	defer q.Close()
	ids := make(map[string]bool, rows)
	for q.Next() {
		var id string
		if err := q.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, q.Err()
}

// replaceTries bounds the delete-and-insert of a replaced row: another
// transaction can store the id again between the two only while its own
// insert was in flight, so a second try succeeds.
const replaceTries = 3

// insertLogRow stores r in place of the row its id already has: that row
// is deleted — its values, returned by the DELETE, taken out of days —
// and r inserted and added to days.
func insertLogRow(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, r *platform.RequestLog, days logDays) error {
	for try := 0; try < replaceTries; try++ {
		old, err := tx.QueryContext(ctx, `DELETE FROM request_log WHERE id = $1 RETURNING `+dayRowColumns, r.ID)
		if err != nil {
			return err
		}
		for old.Next() {
			d, err := scanDayRow(old)
			if err != nil {
				old.Close()
				return err
			}
			days.add(d, -1)
		}
		if err := old.Close(); err != nil {
			return err
		}
		if err := old.Err(); err != nil {
			return err
		}
		res, err := stmt.ExecContext(ctx, appendLogArgs(make([]any, 0, logColumnCount), r, logColumnCount)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 1 {
			days.add(rowDay(r), 1)
			return nil
		}
	}
	return fmt.Errorf("row %s: stored again by another writer %d times", r.ID, replaceTries)
}

// ListRequestLogs reads rows oldest first.
func (s *SQL) ListRequestLogs(ctx context.Context, f platform.RequestLogFilter) ([]platform.RequestLog, error) {
	q := `SELECT ` + logColumns + ` FROM request_log WHERE created_at >= $1`
	args := []any{ms(f.Since)}
	if f.AccountID != "" {
		args = append(args, f.AccountID)
		q += ` AND account_id = $` + strconv.Itoa(len(args))
	}
	q += ` ORDER BY created_at, id`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list request log: %w", err)
	}
	out, err := scanLogRows(rows)
	if err != nil {
		return nil, fmt.Errorf("store: list request log: %w", err)
	}
	return out, nil
}
