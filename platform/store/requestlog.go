package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/platform"
)

const logColumns = `id, request_id, created_at, account_id, key_id, model, endpoint, stream, prompt_tokens,
	completion_tokens, total_tokens, images, estimated, latency_ms, http_status, error_code, backend,
	charge_amount, charge_paid_by, error_detail`

const logColumnCount = 20

// logUpdates overwrites every column but id with the new row's.
var logUpdates = func() string {
	var b strings.Builder
	for i, c := range strings.Split(logColumns, ",") {
		c = strings.TrimSpace(c)
		if i == 0 { // id
			continue
		}
		if i > 1 {
			b.WriteString(", ")
		}
		b.WriteString(c + " = excluded." + c)
	}
	return b.String()
}()

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

// InsertRequestLogsTx writes rows inside tx. The billing flush calls it
// in the transaction that writes the rows' usage rows, so a charged
// request has its row or neither is stored (docs/design.md §3 "Crash
// consistency"). An id already stored is skipped, or, with replace,
// overwritten: a call's own row, written with its usage row, replaces the
// row a task's failure left when its lease ran out while the call was
// still running, so a row's charge is always its usage row's.
func InsertRequestLogsTx(ctx context.Context, tx *sql.Tx, d Dialect, rows []platform.RequestLog, replace bool) error {
	if len(rows) == 0 {
		return nil
	}
	conflict := " ON CONFLICT (id) DO NOTHING"
	if replace {
		conflict = " ON CONFLICT (id) DO UPDATE SET " + logUpdates
	}
	// One prepared statement executed per row: SQLite parses it once per
	// batch. (A multi-row VALUES list was tried first: SQLite resolves $N
	// names by linear search, so a 950-parameter statement cost more to
	// parse than the rows cost to insert.)
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO request_log ("+logColumns+") VALUES ("+
		d.Placeholders(1, logColumnCount)+")"+conflict)
	if err != nil {
		return fmt.Errorf("store: insert request log: %w", err)
	}
	defer stmt.Close()
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r.ID, r.RequestID, ms(r.CreatedAt), r.AccountID, r.KeyID, r.Model, r.Endpoint,
			b2i(r.Stream), r.Usage.PromptTokens, r.Usage.CompletionTokens, r.Usage.TotalTokens, r.Usage.Images,
			b2i(r.Estimated), r.LatencyMS, r.HTTPStatus, r.ErrorCode, r.Backend, r.Charge.Amount, r.Charge.PaidBy, r.ErrorDetail); err != nil {
			return fmt.Errorf("store: insert request log: %w", err)
		}
	}
	return nil
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
