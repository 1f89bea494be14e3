// Package ledger keeps billing's money in the platform's database: it
// implements billing.Ledger with the SQL of billing's tables (wallets,
// packages, credits, prices, leases, usage, limit rules), which the store's
// migrations create. The money rules stay in platform/billing; every
// statement here reads or writes rows as billing asks.
package ledger

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// DB is billing's ledger on the platform's one database handle: its
// transactions run on the same pool through store.DB.Tx, which retries
// transient conflicts.
type DB struct {
	db *store.DB
}

var (
	_ billing.Ledger   = (*DB)(nil)
	_ billing.LedgerTx = (*txn)(nil)
)

// New returns the ledger on db.
func New(db *store.DB) *DB { return &DB{db: db} }

// Tx implements billing.Ledger.
func (l *DB) Tx(ctx context.Context, fn func(billing.LedgerTx) error) error {
	return l.db.Tx(ctx, func(tx *sql.Tx) error {
		return fn(&txn{tx: tx, dialect: l.db.Dialect, forUpdate: l.db.Dialect.ForUpdate, h: l.db})
	})
}

// txn is one transaction: billing.LedgerTx.
type txn struct {
	tx      *sql.Tx
	dialect store.Dialect
	// forUpdate is appended to the SELECTs that lock what they read.
	forUpdate string
	h         *store.DB // the handle: its pool prepares the batch statements (stmts.go)
	// inline names the usage rows this transaction stored with their
	// one part (usage.go), whose part is not a parts row.
	inline map[string]bool
}

// ms is the storage form of a time: Unix milliseconds in a BIGINT, the one
// time type both engines compare identically.
func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func joinModels(models []string) string { return strings.Join(models, ",") }

func splitModels(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
