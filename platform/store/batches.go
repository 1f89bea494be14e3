package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform"
)

var _ platform.BatchStore = (*SQL)(nil)

const batchColumns = `id, account_id, key_id, endpoint, input_file_id, completion_window, metadata, auto_delete_input,
	status, final, total, completed, failed, output_file_id, error_file_id, errors, created_at, in_progress_at,
	expires_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at`

func scanBatch(sc scanner) (platform.Batch, error) {
	var b platform.Batch
	var meta, errs string
	var auto int
	var ts [9]int64
	if err := sc.Scan(&b.ID, &b.AccountID, &b.KeyID, &b.Endpoint, &b.InputFileID, &b.CompletionWindow, &meta, &auto,
		&b.Status, &b.Final, &b.Total, &b.Completed, &b.Failed, &b.OutputFileID, &b.ErrorFileID, &errs,
		&ts[0], &ts[1], &ts[2], &ts[3], &ts[4], &ts[5], &ts[6], &ts[7], &ts[8]); err != nil {
		return platform.Batch{}, err
	}
	b.AutoDeleteInput = auto != 0
	if meta != "" {
		if err := json.Unmarshal([]byte(meta), &b.Metadata); err != nil {
			return b, fmt.Errorf("batch %s metadata: %w", b.ID, err)
		}
	}
	if errs != "" {
		if err := json.Unmarshal([]byte(errs), &b.Errors); err != nil {
			return b, fmt.Errorf("batch %s errors: %w", b.ID, err)
		}
	}
	b.CreatedAt, b.InProgressAt, b.ExpiresAt, b.FinalizingAt, b.CompletedAt = fromMS(ts[0]), fromMS(ts[1]), fromMS(ts[2]), fromMS(ts[3]), fromMS(ts[4])
	b.FailedAt, b.ExpiredAt, b.CancellingAt, b.CancelledAt = fromMS(ts[5]), fromMS(ts[6]), fromMS(ts[7]), fromMS(ts[8])
	return b, nil
}

// CreateBatch stores a batch and its lines in one transaction.
func (s *SQL) CreateBatch(ctx context.Context, b platform.Batch, lines []platform.BatchLine) error {
	var meta, errs []byte
	var err error
	if len(b.Metadata) > 0 {
		if meta, err = json.Marshal(b.Metadata); err != nil {
			return fmt.Errorf("store: create batch: %w", err)
		}
	}
	if len(b.Errors) > 0 {
		if errs, err = json.Marshal(b.Errors); err != nil {
			return fmt.Errorf("store: create batch: %w", err)
		}
	}
	err = s.h.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO batches (`+batchColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)`,
			b.ID, b.AccountID, b.KeyID, b.Endpoint, b.InputFileID, b.CompletionWindow, string(meta), b2i(b.AutoDeleteInput),
			b.Status, b.Final, b.Total, b.Completed, b.Failed, b.OutputFileID, b.ErrorFileID, string(errs),
			ms(b.CreatedAt), ms(b.InProgressAt), ms(b.ExpiresAt), ms(b.FinalizingAt), ms(b.CompletedAt), ms(b.FailedAt),
			ms(b.ExpiredAt), ms(b.CancellingAt), ms(b.CancelledAt)); err != nil {
			return err
		}
		for _, l := range lines {
			if _, err := tx.ExecContext(ctx, `INSERT INTO batch_lines (batch_id, line, custom_id, model, prompt, body, state, result)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				b.ID, l.Line, l.CustomID, l.Model, l.Prompt, string(l.Body), l.State, string(l.Result)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create batch: %w", err)
	}
	return nil
}

// GetBatch reads an account's batch ("" with the operator: any).
func (s *SQL) GetBatch(ctx context.Context, accountID, id string) (platform.Batch, error) {
	b, err := scanBatch(s.db.QueryRowContext(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1 AND ($2 = '' OR account_id = $2)`, id, accountID))
	if err != nil {
		return platform.Batch{}, fmt.Errorf("store: get batch: %w", notFound(err))
	}
	return b, nil
}

// ListBatches returns a page of batches, newest first.
func (s *SQL) ListBatches(ctx context.Context, q platform.BatchQuery) ([]platform.Batch, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+batchColumns+` FROM batches
		WHERE ($1 = '' OR account_id = $1) AND ($2 = '' OR created_at < (SELECT created_at FROM batches WHERE id = $2)
			OR (created_at = (SELECT created_at FROM batches WHERE id = $2) AND id < $2))
		ORDER BY created_at DESC, id DESC LIMIT $3`, q.AccountID, q.After, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: list batches: %w", err)
	}
	defer rows.Close()
	var out []platform.Batch
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list batches: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list batches: %w", err)
	}
	return out, nil
}

// CancelBatch moves a running batch to cancelling; its queued lines are
// cancelled in the same transaction, so no worker claims them after.
func (s *SQL) CancelBatch(ctx context.Context, accountID, id string, now time.Time) (platform.Batch, bool, error) {
	var ok bool
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE batches SET status = 'cancelling', final = 'cancelled', cancelling_at = $3
			WHERE id = $1 AND account_id = $2 AND status IN ('validating', 'in_progress')`, id, accountID, ms(now))
		if err != nil {
			return err
		}
		if ok, err = affected(res); err != nil || !ok {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE batch_lines SET state = 'cancelled' WHERE batch_id = $1 AND state = 'queued'`, id)
		return err
	})
	if err != nil {
		return platform.Batch{}, false, fmt.Errorf("store: cancel batch: %w", err)
	}
	b, err := s.GetBatch(ctx, accountID, id)
	return b, ok, err
}

const lineColumns = `l.batch_id, l.line, l.custom_id, l.model, l.prompt, l.body, l.state, l.result`

func scanLine(sc scanner, more ...any) (platform.BatchLine, error) {
	var l platform.BatchLine
	var body, result string
	if err := sc.Scan(append([]any{&l.BatchID, &l.Line, &l.CustomID, &l.Model, &l.Prompt, &body, &l.State, &result}, more...)...); err != nil {
		return l, err
	}
	l.Body = []byte(body)
	if result != "" {
		l.Result = []byte(result)
	}
	return l, nil
}

// ClaimLines claims queued lines of in-progress batches, oldest batch
// first, leaving any batch at most perBatch running lines. It reads the
// in-progress batches with their running counts (few rows), then takes
// each one's first queued lines by the index (state, batch_id, line), so
// a claim costs the same in a batch of ten lines or of fifty thousand.
// PostgreSQL locks the picked lines (FOR UPDATE SKIP LOCKED), so replicas
// claim different lines of one batch at once; SQLite runs the whole claim
// under its write lock. The running count is read when the claim starts,
// so replicas claiming at the same instant may overshoot perBatch by
// their number.
func (s *SQL) ClaimLines(ctx context.Context, worker string, n, perBatch int, now, leaseUntil time.Time) ([]platform.BatchLine, error) {
	if n <= 0 {
		return nil, nil
	}
	var out []platform.BatchLine
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, `SELECT b.id, b.account_id, b.key_id,
			(SELECT COUNT(*) FROM batch_lines r WHERE r.state = 'running' AND r.batch_id = b.id)
			FROM batches b WHERE b.status = 'in_progress' ORDER BY b.created_at, b.id`)
		if err != nil {
			return err
		}
		type open struct {
			id, account, key string
			room             int
		}
		var batches []open
		for rows.Next() {
			var b open
			var running int
			if err := rows.Scan(&b.id, &b.account, &b.key, &running); err != nil {
				rows.Close()
				return err
			}
			if b.room = perBatch - running; b.room > 0 {
				batches = append(batches, b)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, b := range batches {
			if len(out) >= n {
				break
			}
			lines, err := s.claimBatchLines(ctx, tx, b.id, min(b.room, n-len(out)), worker, now, leaseUntil)
			if err != nil {
				return err
			}
			for _, l := range lines {
				l.AccountID, l.KeyID = b.account, b.key
				out = append(out, l)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim lines: %w", err)
	}
	return out, nil
}

// claimBatchLines claims up to k queued lines of one batch, first lines
// first.
func (s *SQL) claimBatchLines(ctx context.Context, tx *sql.Tx, batchID string, k int, worker string, now, leaseUntil time.Time) ([]platform.BatchLine, error) {
	rows, err := tx.QueryContext(ctx, `SELECT line FROM batch_lines WHERE state = 'queued' AND batch_id = $1 AND lease_until <= $2
		ORDER BY line LIMIT $3 `+s.dialect.ClaimLock, batchID, ms(now), k)
	if err != nil {
		return nil, err
	}
	var picked []int
	for rows.Next() {
		var line int
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return nil, err
		}
		picked = append(picked, line)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []platform.BatchLine
	for _, line := range picked {
		l, err := scanLine(tx.QueryRowContext(ctx, `UPDATE batch_lines SET state = 'running', worker = $3, lease_until = $4, attempts = attempts + 1
			WHERE batch_id = $1 AND line = $2 AND state = 'queued'
			RETURNING batch_id, line, custom_id, model, prompt, body, state, result`, batchID, line, worker, ms(leaseUntil)))
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// RenewLines extends the leases of a worker's running lines.
func (s *SQL) RenewLines(ctx context.Context, worker string, leaseUntil time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE batch_lines SET lease_until = $2 WHERE worker = $1 AND state = 'running'`,
		worker, ms(leaseUntil)); err != nil {
		return fmt.Errorf("store: renew lines: %w", err)
	}
	return nil
}

// FinishLine stores a held line's outcome and counts it in its batch.
func (s *SQL) FinishLine(ctx context.Context, l platform.BatchLine, worker string) (bool, error) {
	var ok bool
	col := "completed"
	if l.State != platform.LineDone {
		col = "failed"
	}
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE batch_lines SET state = $4, result = $5, lease_until = 0
			WHERE batch_id = $1 AND line = $2 AND worker = $3 AND state = 'running'`,
			l.BatchID, l.Line, worker, l.State, string(l.Result))
		if err != nil {
			return err
		}
		if ok, err = affected(res); err != nil || !ok {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE batches SET `+col+` = `+col+` + 1 WHERE id = $1`, l.BatchID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: finish line: %w", err)
	}
	return ok, nil
}

// RequeueLine puts a held line back in the queue.
func (s *SQL) RequeueLine(ctx context.Context, l platform.BatchLine, worker string, notBefore time.Time) error {
	// A batch cancelled or expired meanwhile claims no more lines: the
	// line is cancelled instead, so the batch can end.
	if _, err := s.db.ExecContext(ctx, `UPDATE batch_lines SET
		state = CASE WHEN (SELECT status FROM batches WHERE id = batch_lines.batch_id) = 'in_progress' THEN 'queued' ELSE 'cancelled' END,
		worker = '', lease_until = $4
		WHERE batch_id = $1 AND line = $2 AND worker = $3 AND state = 'running'`, l.BatchID, l.Line, worker, ms(notBefore)); err != nil {
		return fmt.Errorf("store: requeue line: %w", err)
	}
	return nil
}

// RecoverLines requeues running lines whose worker stopped renewing. A
// line of a cancelling batch is cancelled instead: cancel stops new runs.
func (s *SQL) RecoverLines(ctx context.Context, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE batch_lines SET
		state = CASE WHEN (SELECT status FROM batches WHERE id = batch_lines.batch_id) = 'in_progress' THEN 'queued' ELSE 'cancelled' END,
		worker = '', lease_until = 0
		WHERE state = 'running' AND lease_until < $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("store: recover lines: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ExpireBatches ends in-progress batches past their expiry: their queued
// lines fail with result(line) (counted as failed), running lines finish,
// and the batch ends expired once they have.
func (s *SQL) ExpireBatches(ctx context.Context, now time.Time, result func(platform.BatchLine) []byte) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM batches WHERE status = 'in_progress' AND expires_at > 0 AND expires_at <= $1`, ms(now))
	if err != nil {
		return 0, fmt.Errorf("store: expire batches: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: expire batches: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		err := s.h.Tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE batches SET status = 'cancelling', final = 'expired', expired_at = $2
				WHERE id = $1 AND status = 'in_progress'`, id, ms(now))
			if err != nil {
				return err
			}
			if ok, err := affected(res); err != nil || !ok {
				return err
			}
			q, err := tx.QueryContext(ctx, `SELECT `+lineColumns+` FROM batch_lines l WHERE l.batch_id = $1 AND l.state = 'queued'`, id)
			if err != nil {
				return err
			}
			var lines []platform.BatchLine
			for q.Next() {
				l, err := scanLine(q)
				if err != nil {
					q.Close()
					return err
				}
				lines = append(lines, l)
			}
			q.Close()
			for _, l := range lines {
				if _, err := tx.ExecContext(ctx, `UPDATE batch_lines SET state = 'failed', result = $3 WHERE batch_id = $1 AND line = $2`,
					id, l.Line, string(result(l))); err != nil {
					return err
				}
			}
			_, err = tx.ExecContext(ctx, `UPDATE batches SET failed = failed + $2 WHERE id = $1`, id, len(lines))
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("store: expire batch %s: %w", id, err)
		}
	}
	return len(ids), nil
}

// ClaimFinalize claims a batch whose lines are all settled.
func (s *SQL) ClaimFinalize(ctx context.Context, worker string, now, leaseUntil time.Time) (platform.Batch, bool, error) {
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT id FROM batches b
		WHERE (status IN ('in_progress', 'cancelling') OR (status = 'finalizing' AND lease_until < $1))
		AND NOT EXISTS (SELECT 1 FROM batch_lines l WHERE l.batch_id = b.id AND l.state IN ('queued', 'running'))
		ORDER BY created_at LIMIT 1`, ms(now)).Scan(&id)
	if err == sql.ErrNoRows {
		return platform.Batch{}, false, nil
	}
	if err != nil {
		return platform.Batch{}, false, fmt.Errorf("store: claim finalize: %w", err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE batches SET
		final = CASE WHEN final = '' THEN 'completed' ELSE final END,
		finalizing_at = CASE WHEN finalizing_at = 0 THEN $3 ELSE finalizing_at END,
		status = 'finalizing', worker = $2, lease_until = $4
		WHERE id = $1 AND (status IN ('in_progress', 'cancelling') OR (status = 'finalizing' AND lease_until < $3))`,
		id, worker, ms(now), ms(leaseUntil))
	if err != nil {
		return platform.Batch{}, false, fmt.Errorf("store: claim finalize: %w", err)
	}
	if ok, err := affected(res); err != nil || !ok {
		return platform.Batch{}, false, err
	}
	b, err := s.GetBatch(ctx, "", id)
	return b, err == nil, err
}

// BatchLines returns a batch's lines in order.
func (s *SQL) BatchLines(ctx context.Context, batchID string) ([]platform.BatchLine, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+lineColumns+` FROM batch_lines l WHERE l.batch_id = $1 ORDER BY l.line`, batchID)
	if err != nil {
		return nil, fmt.Errorf("store: batch lines: %w", err)
	}
	defer rows.Close()
	var out []platform.BatchLine
	for rows.Next() {
		l, err := scanLine(rows)
		if err != nil {
			return nil, fmt.Errorf("store: batch lines: %w", err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// FinishBatch ends a finalizing batch held by worker.
func (s *SQL) FinishBatch(ctx context.Context, b platform.Batch, worker string, now time.Time) (bool, error) {
	col := map[string]string{platform.BatchCompleted: "completed_at", platform.BatchCancelled: "cancelled_at",
		platform.BatchExpired: "expired_at", platform.BatchFailed: "failed_at"}[b.Final]
	if col == "" {
		return false, fmt.Errorf("store: finish batch %s: unknown final status %q", b.ID, b.Final)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE batches SET status = final, output_file_id = $3, error_file_id = $4,
		`+col+` = CASE WHEN `+col+` = 0 THEN $5 ELSE `+col+` END, worker = '', lease_until = 0
		WHERE id = $1 AND worker = $2 AND status = 'finalizing'`, b.ID, worker, b.OutputFileID, b.ErrorFileID, ms(now))
	if err != nil {
		return false, fmt.Errorf("store: finish batch: %w", err)
	}
	return affected(res)
}
