package store

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// Batch statements: texts that repeat, prepared once per pool.
//
// Batched rows (usage rows, their parts, request-log rows) are written as
// multi-row INSERTs whose row counts are a few powers of two (ChunkRows),
// so each table has a handful of distinct texts (docs/design.md §6).
// Parsing such a statement is dear on SQLite (a 100-row INSERT's parse
// was a fifth of its rows' CPU), so on SQLite each text is prepared once
// on the pool and bound to a transaction with Tx.StmtContext
// (database/sql keeps the statement per connection). PostgreSQL's driver
// keeps a prepared statement per connection and text on its own, and
// preparing outside the transaction there could wait for a connection of
// its capped pool, so there the transaction runs the text directly.

// ChunkRows is how many of n remaining rows the next INSERT carries: the
// largest power of two ≤ min(n, max), max a power of two.
func ChunkRows(n, max int) int {
	c := max
	for c > n {
		c >>= 1
	}
	return c
}

// stmtCache holds a pool's prepared batch statements, keyed by text; the
// texts are few (ChunkRows), so it is never pruned.
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

// BatchQuery runs a batch statement with RETURNING in tx, a transaction
// of db's pool: on SQLite prepared once (see above).
func (db *DB) BatchQuery(ctx context.Context, tx *sql.Tx, q string, args []any) (*sql.Rows, error) {
	if db.Dialect.Name != SQLite.Name {
		return tx.QueryContext(ctx, q, args...)
	}
	s, err := db.stmts.stmt(ctx, db.SQL, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, s).QueryContext(ctx, args...)
}

// BatchExec is BatchQuery for a statement without RETURNING.
func (db *DB) BatchExec(ctx context.Context, tx *sql.Tx, q string, args []any) error {
	if db.Dialect.Name != SQLite.Name {
		_, err := tx.ExecContext(ctx, q, args...)
		return err
	}
	s, err := db.stmts.stmt(ctx, db.SQL, q)
	if err != nil {
		return err
	}
	_, err = tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	return err
}

// TxStmt returns q as a statement of tx, for a text a transaction runs
// several times (the caller closes it): on SQLite the pool's statement
// bound to tx (prepared once, above), on PostgreSQL prepared in tx.
func (db *DB) TxStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	if db.Dialect.Name != SQLite.Name {
		return tx.PrepareContext(ctx, q)
	}
	s, err := db.stmts.stmt(ctx, db.SQL, q)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, s), nil
}

// BatchInsertAll runs q, a multi-row INSERT without ON CONFLICT, in tx
// and reports whether it stored every row. It is the common case of a
// batch whose ids are all new, without the RETURNING that names them: on
// SQLite a RETURNING runs a trigger program and buffers a result row per
// row, and the caller scans and allocates each id (docs/design.md §6).
// A row whose key is already stored makes SQLite undo this one statement
// (its default conflict action, ABORT) and keep the transaction; then
// stored is false, nothing of q is stored, and the caller writes the
// batch its careful way (ON CONFLICT DO NOTHING RETURNING). On
// PostgreSQL any error ends the transaction, so there BatchInsertAll
// runs nothing and reports false.
func (db *DB) BatchInsertAll(ctx context.Context, tx *sql.Tx, q string, args []any) (stored bool, err error) {
	if db.Dialect.Name != SQLite.Name {
		return false, nil
	}
	if err := db.BatchExec(ctx, tx, q, args); err != nil {
		if IsUniqueViolation(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// valuesKey names one VALUES list: rows tuples of cols placeholders,
// each followed by the literals tail.
type valuesKey struct {
	dialect    string
	rows, cols int
	tail       string
}

// valuesLists holds the VALUES lists made so far: a batch insert's text
// repeats (ChunkRows), so its list is made once, not per batch.
var valuesLists sync.Map // valuesKey → string

// Values returns "(…), (…)": rows tuples of cols placeholders numbered
// from $1 (or SQLite's ?s), for a multi-row INSERT whose arguments are the
// rows' columns in order.
func (d Dialect) Values(rows, cols int) string { return d.ValuesTail(rows, cols, nil) }

// A Tail is the literals a chunk of a batch insert writes for its last
// columns instead of binding them (SQL literals: a 0, an empty text).
// A batch's rows mostly leave their rarely-set columns (errors, images,
// discounts) at zero, and each bound parameter costs the insert its
// conversion and bind on every row (docs/design.md §6 "Lean batch rows");
// a literal is parsed once with the statement.
type Tail struct {
	n   int    // columns
	sql string // ", 0, ''": what follows a tuple's placeholders
}

// NewTail returns the tail of literals lits, in column order.
func NewTail(lits ...string) *Tail {
	t := &Tail{n: len(lits)}
	for _, l := range lits {
		t.sql += ", " + l
	}
	return t
}

// Len is how many columns t writes; 0 for nil.
func (t *Tail) Len() int {
	if t == nil {
		return 0
	}
	return t.n
}

// ValuesTail is Values for rows whose last columns are tail's literals
// in every row of the statement: each tuple binds its first cols columns
// and writes tail (nil: none) as text.
func (d Dialect) ValuesTail(rows, cols int, tail *Tail) string {
	lit := ""
	if tail != nil {
		lit = tail.sql
	}
	k := valuesKey{d.Name, rows, cols, lit}
	if v, ok := valuesLists.Load(k); ok {
		return v.(string)
	}
	var b strings.Builder
	for j := 0; j < rows; j++ {
		if j > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(" + d.Placeholders(j*cols+1, cols) + lit + ")")
	}
	v, _ := valuesLists.LoadOrStore(k, b.String())
	return v.(string)
}

// LeanTail picks the tail a chunk of n rows is written with: shapes are
// the tails a table allows, longest first; zeros(i) is how many of row
// i's last columns are at their zero. The longest shape every row of the
// chunk covers wins (nil, no tail, when none does), so a chunk keeps its
// rows' order and each row stores the values it would have bound.
func LeanTail(n int, zeros func(i int) int, shapes []*Tail) *Tail {
	least := -1
	for i := 0; i < n; i++ {
		if z := zeros(i); least < 0 || z < least {
			least = z
		}
	}
	for _, s := range shapes {
		if s.n <= least {
			return s
		}
	}
	return nil
}
