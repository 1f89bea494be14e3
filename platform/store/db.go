package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the default, cgo-free database
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Dialect is what differs between database engines. Statements are shared.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// ClaimLock is appended to the SELECT that picks tasks to claim:
	// "FOR UPDATE SKIP LOCKED" on PostgreSQL, so replicas skip each
	// other's rows; empty on SQLite, where a write statement holds the
	// database lock anyway.
	ClaimLock string
	// ForUpdate is appended to a SELECT that reads rows the transaction
	// will change: row locks on PostgreSQL, so two replicas taking credit
	// from one package serialise; empty on SQLite, whose immediate
	// transactions already hold the database write lock.
	ForUpdate string
	// MigrationLock, when set, runs first in each migration transaction so
	// that concurrent starts apply a migration once (SQLite's immediate
	// transactions already serialise).
	MigrationLock string
	// Snapshot is the options of a read-only transaction that sees one
	// consistent state of every table (an audit). nil on SQLite, where any
	// transaction of this pool holds the write lock and so sees one state.
	Snapshot *sql.TxOptions

	open func(ctx context.Context, dsn string) (*sql.DB, error)
}

// Placeholders returns n placeholders for the arguments start … start+n-1
// of a statement whose argument count varies (multi-row inserts, IN
// lists). Statements written out use $N on both engines, but SQLite treats
// $N as a name and resolves every name by a linear search, at parse and
// again at bind time: a multi-row insert of a few thousand arguments then
// costs milliseconds of CPU per batch. On SQLite these lists are anonymous
// ?s instead, which SQLite numbers by position (one more than the largest
// number before them), so start must continue the statement's numbering
// — it always does where a list ends the statement or follows $1…$start-1.
func (d Dialect) Placeholders(start, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		if d.Name == SQLite.Name {
			b.WriteByte('?')
			continue
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(start + i))
	}
	return b.String()
}

// privateFile makes sure the database file holds its secrets (sealed key
// secrets, money) for its owner only: a new file is created 0600 before
// SQLite opens it (its -wal and -shm files take the same mode), an
// existing one — or its -wal/-shm — that others can read is refused.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := CheckPrivate(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// CheckPrivate refuses a file that its group or others may read or write,
// naming the fix. A missing file is fs.ErrNotExist.
func CheckPrivate(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s is open to other users (mode %v); run: chmod 600 %s", path, perm, path)
	}
	return nil
}

// Arg appends v to args and returns its placeholder, for statements whose
// conditions depend on the filter ("… AND model = " + Arg(&args, m)).
func Arg(args *[]any, v any) string {
	*args = append(*args, v)
	return "$" + strconv.Itoa(len(*args))
}

// SQLite is the default dialect: a file path, bare or as a file: or
// sqlite:// URL.
var SQLite = Dialect{Name: "sqlite", open: openSQLite}

// dialectFor picks the engine from the DSN's URL scheme; anything that is
// not a URL is a SQLite file path.
func dialectFor(dsn string) (Dialect, error) {
	i := strings.Index(dsn, "://")
	if i <= 0 {
		return SQLite, nil
	}
	switch scheme := dsn[:i]; scheme {
	case "sqlite", "file":
		return SQLite, nil
	case "postgres", "postgresql":
		return Postgres, nil
	default:
		return Dialect{}, fmt.Errorf("store: no database driver for %q (use a SQLite file path or a postgres:// URL)", scheme+"://")
	}
}

// busyTimeout is how long a SQLite connection waits for the write lock
// before reporting SQLITE_BUSY. The CLI and every server process share the
// file, and a usage flush of a full batch holds the lock for a while; a
// long wait is cheaper than a failed money transaction.
const busyTimeout = 20 * time.Second

func openSQLite(ctx context.Context, dsn string) (*sql.DB, error) {
	path := strings.TrimPrefix(dsn, "sqlite://")
	path = strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create db dir: %w", err)
		}
	}
	if err := privateFile(path); err != nil {
		return nil, err
	}
	// WAL lets readers run beside the one writer; busy_timeout waits for
	// the lock instead of failing; _txlock=immediate takes the write lock
	// at BEGIN, so two read-then-write transactions cannot deadlock on
	// lock upgrade and a money transaction is serialised against every
	// other writer (SQLite has no SELECT … FOR UPDATE).
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Statement journals (a multi-row insert inside a batch transaction
	// keeps one, to undo just that statement) go to memory, not a temp
	// file: they are small and live for one statement, and the file's
	// writes were ~9 % of the metered benchmark's CPU (docs/design.md §6).
	// Durability is the WAL's, unchanged.
	q.Add("_pragma", "temp_store(MEMORY)")
	// The WAL is copied back into the database file every 8,000 pages
	// (32 MB at 4 KiB pages), not SQLite's default 1,000: a flush rewrites
	// the same tail pages of each B-tree in every batch, and a checkpoint
	// copies a page once however often the WAL holds it, so a longer WAL
	// copies far less. At ~4,500 metered requests a second the default
	// checkpointed every few batches, ~10 µs of CPU per request
	// (docs/design.md §6). Durability is unchanged; the WAL file is larger.
	q.Add("_pragma", "wal_autocheckpoint(8000)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// Every new connection re-runs the pragmas; keeping idle ones avoids
	// that on each burst.
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open sqlite %s: %w", path, err)
	}
	return db, nil
}

// DB is the one handle on the platform's database: one pool, one dialect,
// the schema migrated. The platform store (SQL) and billing both work on
// it, so their transactions share the pool's locking rules.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect

	stmts stmtCache // batch statements prepared once (stmts.go)
}

// OpenDB connects to dsn (a SQLite file path, or a postgres:// URL) and
// applies pending migrations.
func OpenDB(ctx context.Context, dsn string) (*DB, error) {
	d, err := dialectFor(dsn)
	if err != nil {
		return nil, err
	}
	sdb, err := d.open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	db := &DB{SQL: sdb, Dialect: d}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() error { return db.SQL.Close() }

// txAttempts bounds the retries of a transaction that keeps meeting
// transient conflicts.
const txAttempts = 8

// Tx runs fn in a transaction and retries it when the database reports a
// transient conflict (IsTransient), so callers see either the whole effect
// or an error. fn may run more than once: it must not keep state from a
// failed attempt.
func (db *DB) Tx(ctx context.Context, fn func(*sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < txAttempts; attempt++ {
		err = db.tx1(ctx, fn)
		if err == nil || !IsTransient(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(time.Duration(attempt+1) * 5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
	return err
}

func (db *DB) tx1(ctx context.Context, fn func(*sql.Tx) error) error {
	t, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(t); err != nil {
		_ = t.Rollback()
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

// migrate applies the embedded migrations in name order, each in its own
// transaction together with its row in schema_migrations, so a crash never
// leaves a half-applied version recorded as done.
func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		body, err := migrationFS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", version, err)
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return db.applyMigration(ctx, tx, version, string(body)) }); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, tx *sql.Tx, version, body string) error {
	if db.Dialect.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, db.Dialect.MigrationLock); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = $1`, version).Scan(&n); err != nil {
		return fmt.Errorf("store: migration %s: %w", version, err)
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range splitStatements(body) {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("store: migration %s: %w", version, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
		version, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("store: migration %s: %w", version, err)
	}
	return nil
}

// splitStatements splits a migration on semicolons that end a line and
// drops "--" comment lines (the migrations hold no string literals with
// semicolons), because drivers differ on multi-statement Exec.
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

var errNoRows = sql.ErrNoRows

// IsNoRows reports whether err is database/sql's "no rows".
func IsNoRows(err error) bool { return errors.Is(err, errNoRows) }
