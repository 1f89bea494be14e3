package store

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Errors are classified by the drivers' codes, never by message text:
// messages change between driver versions and locales, codes do not.

// SQLite result codes (https://sqlite.org/rescode.html). Extended codes
// carry the primary code in their low byte; the driver reports extended
// codes.
const (
	sqliteBusy             = 5
	sqliteLocked           = 6
	sqliteConstraint       = 19
	sqliteConstraintCheck  = 275
	sqliteConstraintFK     = 787
	sqliteConstraintPK     = 1555
	sqliteConstraintUnique = 2067
)

// PostgreSQL SQLSTATE codes (appendix A of its manual).
const (
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgCheckViolation       = "23514"
)

// ErrConflict marks a transaction that found rows changed underneath it
// in a way the database did not report (a guarded UPDATE that matched no
// row). It is transient: Tx runs the transaction again.
var ErrConflict = errors.New("store: concurrent change, retry")

func sqliteCode(err error) (int, bool) {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

func pgCode(err error) (string, bool) {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code, true
	}
	return "", false
}

// IsTransient reports whether err is a conflict that running the same
// transaction again may resolve: SQLite busy or locked (including
// BUSY_SNAPSHOT, a WAL reader that must restart), a PostgreSQL
// serialisation failure or deadlock, or ErrConflict.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrConflict) {
		return true
	}
	if c, ok := sqliteCode(err); ok {
		p := c & 0xff
		return p == sqliteBusy || p == sqliteLocked
	}
	if c, ok := pgCode(err); ok {
		return c == pgSerializationFailure || c == pgDeadlockDetected
	}
	return false
}

// IsUniqueViolation reports whether err is a duplicate primary or unique
// key.
func IsUniqueViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c == sqliteConstraintPK || c == sqliteConstraintUnique
	}
	c, ok := pgCode(err)
	return ok && c == pgUniqueViolation
}

// IsForeignKeyViolation reports whether err is a reference to a missing
// row.
func IsForeignKeyViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c == sqliteConstraintFK
	}
	c, ok := pgCode(err)
	return ok && c == pgForeignKeyViolation
}

// IsCheckViolation reports whether err is a failed CHECK constraint (a
// balance that would go negative).
func IsCheckViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c == sqliteConstraintCheck
	}
	c, ok := pgCode(err)
	return ok && c == pgCheckViolation
}

// IsConstraintViolation reports whether err is any integrity-constraint
// failure (unique, foreign key, check, not null).
func IsConstraintViolation(err error) bool {
	if c, ok := sqliteCode(err); ok {
		return c&0xff == sqliteConstraint
	}
	c, ok := pgCode(err)
	return ok && len(c) == 5 && c[:2] == "23"
}
