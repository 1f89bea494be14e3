package ledger

import (
	"context"
	"database/sql"
	"sync"

	"github.com/glmkit/glmkit/platform/store"
)

// Batch inserts: statements whose text repeats, prepared once.
//
// A usage batch is written as multi-row INSERTs (docs/design.md §6).
// Parsing such a statement is dear on SQLite (a 100-row INSERT's parse
// was a fifth of the rows' insert CPU), and a text made for each batch
// size never repeats. So a batch is cut into chunks whose row
// counts are powers of two up to a maximum: at most a handful of distinct
// texts per table, each prepared once per connection and reused by every
// later batch (database/sql keeps a statement per connection and rebinds
// it to a transaction's connection); PostgreSQL's driver does the same
// by text on its own.

// chunkRows is how many of n remaining rows the next INSERT carries: the
// largest power of two ≤ min(n, max), max a power of two.
func chunkRows(n, max int) int {
	c := max
	for c > n {
		c >>= 1
	}
	return c
}

// stmtCache holds the prepared batch statements of one ledger, keyed by
// text; the texts are few (see chunkRows), so it is never pruned.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// stmt returns q prepared on db, preparing it on first use. A statement
// that fails to prepare is not kept: the caller's error path runs, and
// the next batch tries again.
func (c *stmtCache) stmt(ctx context.Context, db *sql.DB, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[q]; ok {
		return s, nil
	}
	s, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[q] = s
	return s, nil
}

// batchQuery runs a batch INSERT … RETURNING in t. On SQLite through
// the cache; PostgreSQL's driver already keeps a prepared statement per
// connection and text, and preparing outside the transaction there could
// wait for a connection of its capped pool.
func (t *txn) batchQuery(ctx context.Context, q string, args []any) (*sql.Rows, error) {
	if t.dialect.Name != store.SQLite.Name {
		return t.tx.QueryContext(ctx, q, args...)
	}
	s, err := t.stmts.stmt(ctx, t.db, q)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
}

// batchExec is batchQuery for an INSERT without RETURNING.
func (t *txn) batchExec(ctx context.Context, q string, args []any) error {
	if t.dialect.Name != store.SQLite.Name {
		_, err := t.tx.ExecContext(ctx, q, args...)
		return err
	}
	s, err := t.stmts.stmt(ctx, t.db, q)
	if err != nil {
		return err
	}
	_, err = t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	return err
}
