package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/glmkit/glmkit/platform"
)

const logColumns = `id, request_id, created_at, account_id, key_id, model, endpoint, stream, prompt_tokens,
	completion_tokens, total_tokens, images, estimated, latency_ms, http_status, error_code, backend,
	charge_amount, charge_paid_by, error_detail`

const logColumnCount = 20

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
	if err := InsertRequestLogsTx(ctx, tx, s.dialect, rows, false); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: insert request log: %w", err)
	}
	return nil
}

// InsertRequestLogsTx writes rows inside tx and adds the rows it really
// inserted to their days (request_log_daily) in the same transaction, so
// a day counts every stored row once (docs/design.md §3 "Request-log
// days"). The billing flush calls it in the transaction that writes the
// rows' usage rows, so a charged request has its row or neither is stored
// (docs/design.md §3 "Crash consistency"). An id already stored is
// skipped (its day already counts it), or, with replace, overwritten: a
// call's own row, written with its usage row, replaces the row a task's
// failure left when its lease ran out while the call was still running,
// so a row's charge is always its usage row's. The replaced row is taken
// out of its day and the new one added.
func InsertRequestLogsTx(ctx context.Context, tx *sql.Tx, d Dialect, rows []platform.RequestLog, replace bool) error {
	if len(rows) == 0 {
		return nil
	}
	// One prepared statement executed per row: SQLite parses it once per
	// batch. (A multi-row VALUES list was tried first: SQLite resolves $N
	// names by linear search, so a 950-parameter statement cost more to
	// parse than the rows cost to insert.)
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO request_log ("+logColumns+") VALUES ("+
		d.Placeholders(1, logColumnCount)+") ON CONFLICT (id) DO NOTHING")
	if err != nil {
		return fmt.Errorf("store: insert request log: %w", err)
	}
	defer stmt.Close()
	days := logDays{}
	for i := range rows {
		if err := insertLogRow(ctx, tx, stmt, &rows[i], replace, days); err != nil {
			return fmt.Errorf("store: insert request log: %w", err)
		}
	}
	// The days last, in key order, after every row lock this insert takes.
	if err := addLogDays(ctx, tx, days.sorted()); err != nil {
		return fmt.Errorf("store: insert request log: add days: %w", err)
	}
	return nil
}

// replaceTries bounds the delete-and-insert of a replaced row: another
// transaction can store the id again between the two only while its own
// insert was in flight, so a second try succeeds.
const replaceTries = 3

// insertLogRow inserts r and adds it to days when the insert stored it.
// ON CONFLICT DO NOTHING reports 0 rows for an id already stored; with
// replace, that row is deleted — its values, returned by the DELETE, taken
// out of days — and the insert tried again.
func insertLogRow(ctx context.Context, tx *sql.Tx, stmt *sql.Stmt, r *platform.RequestLog, replace bool, days logDays) error {
	for try := 0; try < replaceTries; try++ {
		res, err := stmt.ExecContext(ctx, r.ID, r.RequestID, ms(r.CreatedAt), r.AccountID, r.KeyID, r.Model, r.Endpoint,
			b2i(r.Stream), r.Usage.PromptTokens, r.Usage.CompletionTokens, r.Usage.TotalTokens, r.Usage.Images,
			b2i(r.Estimated), r.LatencyMS, r.HTTPStatus, r.ErrorCode, r.Backend, r.Charge.Amount, r.Charge.PaidBy, r.ErrorDetail)
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
		if !replace {
			return nil
		}
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
