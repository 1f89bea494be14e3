// Package store is the platform's persistent state on database/sql: SQLite
// (modernc.org/sqlite, pure Go) by default, PostgreSQL (pgx) for
// postgres:// URLs. It owns the one handle on the database (DB): opening,
// pragmas, pool, dialect, migrations — billing's tables included — the
// retrying transaction helper and error classification. All SQL is
// written once with $N placeholders and portable types, so both engines
// run the same statements and the same test suite (storetest.RunSuite).
package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Options configure a store.
type Options struct {
	// MasterKey (32 bytes) seals API-key secrets at rest; see LoadMasterKey.
	MasterKey []byte
}

// SQL is the database/sql implementation of platform.Store.
type SQL struct {
	db      *sql.DB
	h       *DB
	dialect Dialect
	seal    *sealer
}

var _ platform.Store = (*SQL)(nil)

// Open connects to dsn (a SQLite file path, or a postgres:// URL) and
// applies pending migrations (OpenDB); the store owns the handle.
func Open(ctx context.Context, dsn string, opts Options) (*SQL, error) {
	seal, err := newSealer(opts.MasterKey)
	if err != nil {
		return nil, err
	}
	db, err := OpenDB(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &SQL{db: db.SQL, h: db, dialect: db.Dialect, seal: seal}, nil
}

// DB exposes the pool (a health check pings it).
func (s *SQL) DB() *sql.DB { return s.db }

// Handle is the store's database handle, for billing, which works on the
// same pool and migrations.
func (s *SQL) Handle() *DB { return s.h }

// Dialect reports the engine in use.
func (s *SQL) Dialect() Dialect { return s.dialect }

// Close closes the database.
func (s *SQL) Close() error { return s.db.Close() }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// b2i is a flag as the integer column it is stored in (an int64, the
// driver's own value type).
func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return platform.ErrNotFound
	}
	return err
}
