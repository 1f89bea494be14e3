package store

import (
	"context"
	"database/sql"
	"fmt"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Postgres is the dialect for postgres:// URLs: the shared statements,
// row locks for money transactions, FOR UPDATE SKIP LOCKED when replicas
// claim async tasks, and a repeatable-read snapshot for audits.
var Postgres = Dialect{
	Name:      "postgres",
	ClaimLock: "FOR UPDATE SKIP LOCKED",
	ForUpdate: " FOR UPDATE",
	// Replicas starting together must not run one migration twice.
	MigrationLock: "SELECT pg_advisory_xact_lock(7427001)",
	Snapshot:      &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	open:          openPostgres,
}

// pgMaxConns caps the pool: each connection is a server process, and
// replicas multiply the count.
const pgMaxConns = 16

func openPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open postgres: %w", err)
	}
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: connect to postgres: %w", err)
	}
	return db, nil
}
