package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform"
)

const taskColumns = `id, account_id, key_id, request_id, model, state, request, result, error_code, error_message,
	worker, lease_until, attempts, created_at, updated_at, finished_at`

type scanner interface{ Scan(dest ...any) error }

func scanTask(sc scanner) (platform.Task, error) {
	var t platform.Task
	var req, res string
	var lease, created, updated, finished int64
	if err := sc.Scan(&t.ID, &t.AccountID, &t.KeyID, &t.RequestID, &t.Model, &t.State, &req, &res,
		&t.ErrorCode, &t.ErrorMessage, &t.Worker, &lease, &t.Attempts, &created, &updated, &finished); err != nil {
		return platform.Task{}, err
	}
	t.Request, t.Result = []byte(req), []byte(res)
	if res == "" {
		t.Result = nil
	}
	t.LeaseUntil, t.CreatedAt, t.UpdatedAt, t.FinishedAt = fromMS(lease), fromMS(created), fromMS(updated), fromMS(finished)
	return t, nil
}

// CreateTask inserts a queued task.
func (s *SQL) CreateTask(ctx context.Context, t platform.Task) error {
	if t.State == "" {
		t.State = platform.TaskQueued
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tasks (`+taskColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		t.ID, t.AccountID, t.KeyID, t.RequestID, t.Model, t.State, string(t.Request), string(t.Result),
		t.ErrorCode, t.ErrorMessage, t.Worker, ms(t.LeaseUntil), t.Attempts, ms(t.CreatedAt), ms(t.CreatedAt), ms(t.FinishedAt))
	if err != nil {
		return fmt.Errorf("store: create task: %w", err)
	}
	return nil
}

// CreateTaskCapped inserts a queued task unless its key already has
// maxQueued tasks queued; created is false then. The count and the insert
// are one statement, so submits racing on one database overshoot the cap
// by at most the number running at once (PostgreSQL's read committed).
func (s *SQL) CreateTaskCapped(ctx context.Context, t platform.Task, maxQueued int) (created bool, err error) {
	if t.State == "" {
		t.State = platform.TaskQueued
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO tasks (`+taskColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
		WHERE (SELECT COUNT(*) FROM tasks WHERE key_id = $3 AND state = 'queued') < $17`,
		t.ID, t.AccountID, t.KeyID, t.RequestID, t.Model, t.State, string(t.Request), string(t.Result),
		t.ErrorCode, t.ErrorMessage, t.Worker, ms(t.LeaseUntil), t.Attempts, ms(t.CreatedAt), ms(t.CreatedAt), ms(t.FinishedAt), maxQueued)
	if err != nil {
		return false, fmt.Errorf("store: create task: %w", err)
	}
	return affected(res)
}

// GetTask reads a task of the account.
func (s *SQL) GetTask(ctx context.Context, accountID, id string) (platform.Task, error) {
	t, err := scanTask(s.db.QueryRowContext(ctx, `SELECT `+taskColumns+` FROM tasks WHERE id = $1 AND account_id = $2`, id, accountID))
	if err != nil {
		return platform.Task{}, fmt.Errorf("store: get task: %w", notFound(err))
	}
	return t, nil
}

// ClaimTasks claims up to n queued tasks in one statement. The outer
// "state = 'queued'" is re-checked by PostgreSQL on a row another
// transaction changed meanwhile, and the dialect's ClaimLock (FOR UPDATE
// SKIP LOCKED) keeps replicas off each other's rows; on SQLite the
// statement runs under the database write lock, so it is atomic as is.
func (s *SQL) ClaimTasks(ctx context.Context, worker string, n int, now, leaseUntil time.Time) ([]platform.Task, error) {
	if n <= 0 {
		return nil, nil
	}
	// The pick is a MATERIALIZED CTE: as a plain IN (subquery) PostgreSQL
	// may rescan the subquery and claim more than n rows.
	rows, err := s.db.QueryContext(ctx, `WITH picked AS MATERIALIZED (
			SELECT id AS pick_id FROM tasks WHERE state = 'queued' ORDER BY created_at, id LIMIT $4 `+s.dialect.ClaimLock+`)
		UPDATE tasks SET state = 'running', worker = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
		WHERE state = 'queued' AND id IN (SELECT pick_id FROM picked)
		RETURNING `+taskColumns,
		worker, ms(leaseUntil), ms(now), n)
	if err != nil {
		return nil, fmt.Errorf("store: claim tasks: %w", err)
	}
	defer rows.Close()
	var out []platform.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, fmt.Errorf("store: claim tasks: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: claim tasks: %w", err)
	}
	return out, nil
}

// RenewLease extends a held claim.
func (s *SQL) RenewLease(ctx context.Context, id, worker string, leaseUntil time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET lease_until = $3 WHERE id = $1 AND worker = $2 AND state = 'running'`,
		id, worker, ms(leaseUntil))
	if err != nil {
		return false, fmt.Errorf("store: renew lease: %w", err)
	}
	return affected(res)
}

// FinishTask stores the outcome of a held task.
func (s *SQL) FinishTask(ctx context.Context, id, worker string, t platform.Task) (bool, error) {
	now := ms(t.FinishedAt)
	if now == 0 {
		now = time.Now().UnixMilli()
	}
	res, err := s.db.ExecContext(ctx, `UPDATE tasks SET state = $3, result = $4, error_code = $5, error_message = $6,
		updated_at = $7, finished_at = $7, lease_until = 0
		WHERE id = $1 AND worker = $2 AND state = 'running'`,
		id, worker, t.State, string(t.Result), t.ErrorCode, t.ErrorMessage, now)
	if err != nil {
		return false, fmt.Errorf("store: finish task: %w", err)
	}
	return affected(res)
}

// FailExpiredTasks fails running tasks whose worker stopped renewing,
// and writes each one's request-log row in the same transaction.
func (s *SQL) FailExpiredTasks(ctx context.Context, now time.Time, code, message string) (int, error) {
	n, err := s.failTasks(ctx, `state = 'running' AND lease_until < $1`, now, code, message)
	if err != nil {
		return 0, fmt.Errorf("store: fail expired tasks: %w", err)
	}
	return n, nil
}

// ReleaseTasks fails the tasks a worker still holds, with their
// request-log rows.
func (s *SQL) ReleaseTasks(ctx context.Context, worker string, now time.Time, code, message string) (int, error) {
	n, err := s.failTasks(ctx, `state = 'running' AND worker = $4`, now, code, message, worker)
	if err != nil {
		return 0, fmt.Errorf("store: release tasks: %w", err)
	}
	return n, nil
}

// failTasks fails the tasks where selects ($1 is now; more args from $4)
// and writes, in the same transaction, a request-log row for each: a task
// a crash or a shutdown ended is logged like any other failed call
// (docs/design.md §3 "Crash consistency"). A row its call already wrote
// (the id is the task's) is kept: the call settled and logged before the
// task's result could be stored.
func (s *SQL) failTasks(ctx context.Context, where string, now time.Time, code, message string, more ...any) (int, error) {
	status := platform.Errorf(code, "%s", message).Status()
	args := append([]any{ms(now), code, message}, more...)
	var rows []platform.RequestLog
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		rows = rows[:0]
		q, err := tx.QueryContext(ctx, `UPDATE tasks SET state = 'failed', error_code = $2, error_message = $3,
			updated_at = $1, finished_at = $1, lease_until = 0
			WHERE `+where+` RETURNING id, request_id, account_id, key_id, model`, args...)
		if err != nil {
			return err
		}
		defer q.Close()
		for q.Next() {
			r := platform.RequestLog{CreatedAt: now.UTC(), Endpoint: platform.EndpointAsyncTask, HTTPStatus: status, ErrorCode: code}
			if err := q.Scan(&r.ID, &r.RequestID, &r.AccountID, &r.KeyID, &r.Model); err != nil {
				return err
			}
			rows = append(rows, r)
		}
		if err := q.Err(); err != nil {
			return err
		}
		q.Close()
		return InsertRequestLogsTx(ctx, s.h, tx, rows, false)
	})
	return len(rows), err
}

// PurgeTasks deletes tasks finished before the cut-off.
func (s *SQL) PurgeTasks(ctx context.Context, finishedBefore time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM tasks WHERE finished_at > 0 AND finished_at < $1`, ms(finishedBefore))
	if err != nil {
		return 0, fmt.Errorf("store: purge tasks: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func affected(res sql.Result) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: rows affected: %w", err)
	}
	return n > 0, nil
}
