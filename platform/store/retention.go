package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Retention of the request log: old rows are deleted, a small batch at a
// time, while the server keeps writing new rows. Their days stay: every
// row was added to its day (request_log_daily) when it was inserted
// (migration 0011, docs/design.md §3 "Request-log days"), so deleting the
// raw row changes no day's figures.

// DefaultRollUpBatch is the number of rows one roll-up transaction moves:
// small enough that SQLite's one writer is free again within milliseconds.
const DefaultRollUpBatch = 1000

// RollUpOptions say which rows a roll-up moves and how.
type RollUpOptions struct {
	// Before is the cut-off: rows created before it are rolled up.
	Before time.Time
	// Batch is the rows per transaction (DefaultRollUpBatch when < 1).
	Batch int
	// Pause is waited between transactions, so that a long roll-up leaves
	// the database to the server's own writes.
	Pause time.Duration
}

func (o RollUpOptions) batch() int {
	if o.Batch < 1 {
		return DefaultRollUpBatch
	}
	return o.Batch
}

// RollUpResult is what a roll-up did.
type RollUpResult struct {
	// Rows were deleted (their days keep them).
	Rows int64
	// Batches is the number of transactions that moved rows.
	Batches int
}

// RollUpRequestLogs deletes the request-log rows created before o.Before,
// o.Batch rows per transaction, until none is left. Their days already
// count them, so a job that dies midway, or two replicas running at once,
// leave every day exact.
func (s *SQL) RollUpRequestLogs(ctx context.Context, o RollUpOptions) (RollUpResult, error) {
	var res RollUpResult
	for {
		n, err := s.rollUpLogBatch(ctx, o)
		if err != nil {
			return res, fmt.Errorf("store: roll up request log: %w", err)
		}
		if n == 0 {
			return res, nil
		}
		res.Rows += int64(n)
		res.Batches++
		if err := platform.Pause(ctx, o.Pause); err != nil {
			return res, err
		}
	}
}

// rollUpLogBatch deletes one batch and returns how many rows it deleted.
func (s *SQL) rollUpLogBatch(ctx context.Context, o RollUpOptions) (int, error) {
	var n int64
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM request_log WHERE id IN (SELECT id FROM request_log WHERE created_at < $1
			ORDER BY created_at, id LIMIT $2)`, ms(o.Before), o.batch())
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
