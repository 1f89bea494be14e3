package ledger

import (
	"context"
	"database/sql"

	"github.com/glmkit/glmkit/platform/store"
)

// Batch inserts go through the pool's statement cache
// (store.DB.BatchQuery): a usage batch is cut into chunks of a few fixed
// sizes (store.ChunkRows), each text prepared once on SQLite
// (docs/design.md §6).

// chunkRows is store.ChunkRows.
func chunkRows(n, max int) int { return store.ChunkRows(n, max) }

// batchQuery runs a batch INSERT … RETURNING in t.
func (t *txn) batchQuery(ctx context.Context, q string, args []any) (*sql.Rows, error) {
	return t.h.BatchQuery(ctx, t.tx, q, args)
}

// batchExec is batchQuery for an INSERT without RETURNING.
func (t *txn) batchExec(ctx context.Context, q string, args []any) error {
	return t.h.BatchExec(ctx, t.tx, q, args)
}
