package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform/store/storetest"
)

// eachEngine runs fn on a fresh SQLite file and, when the PostgreSQL test
// server is configured, on a fresh PostgreSQL schema.
func eachEngine(t *testing.T, fn func(t *testing.T, db *DB)) {
	storetest.EachEngine(t, "store", func(t *testing.T, dsn string) {
		db, err := OpenDB(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		fn(t, db)
	})
}

func TestConstraintErrors(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		for _, stmt := range []string{
			`CREATE TABLE parent (id TEXT PRIMARY KEY, email TEXT UNIQUE)`,
			`CREATE TABLE child (id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parent(id), n BIGINT NOT NULL CHECK (n >= 0))`,
			`INSERT INTO parent (id, email) VALUES ('p', 'a@x')`,
		} {
			if _, err := db.SQL.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		exec := func(q string) error {
			_, err := db.SQL.ExecContext(ctx, q)
			if err == nil {
				t.Fatalf("%s: got no error, want a constraint violation", q)
			}
			return fmt.Errorf("wrapped: %w", err)
		}
		dupPK := exec(`INSERT INTO parent (id, email) VALUES ('p', 'b@x')`)
		dupUnique := exec(`INSERT INTO parent (id, email) VALUES ('q', 'a@x')`)
		fk := exec(`INSERT INTO child (id, parent_id, n) VALUES ('c', 'nope', 1)`)
		check := exec(`INSERT INTO child (id, parent_id, n) VALUES ('c', 'p', -1)`)
		notNull := exec(`INSERT INTO child (id, n) VALUES ('c', 1)`)
		for _, c := range []struct {
			name                          string
			err                           error
			unique, fk, check, constraint bool
		}{
			{"duplicate primary key", dupPK, true, false, false, true},
			{"duplicate unique", dupUnique, true, false, false, true},
			{"foreign key", fk, false, true, false, true},
			{"check", check, false, false, true, true},
			{"not null", notNull, false, false, false, true},
		} {
			got := [4]bool{IsUniqueViolation(c.err), IsForeignKeyViolation(c.err), IsCheckViolation(c.err), IsConstraintViolation(c.err)}
			want := [4]bool{c.unique, c.fk, c.check, c.constraint}
			if got != want {
				t.Errorf("%s (%v): got unique/fk/check/constraint %v, want %v", c.name, c.err, got, want)
			}
			if IsTransient(c.err) {
				t.Errorf("%s: got transient, want not", c.name)
			}
		}
		plain := errors.New("database is locked (5)")
		if IsTransient(plain) || IsUniqueViolation(plain) || IsConstraintViolation(plain) {
			t.Error("an error's text was classified; want codes only")
		}
	})
}

// A writer that cannot get the SQLite write lock gets SQLITE_BUSY, which
// is transient.
func TestSQLiteBusyIsTransient(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "glm.db")
	db, err := OpenDB(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	holder, err := db.SQL.BeginTx(ctx, nil) // immediate: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	impatient, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()
	_, err = impatient.BeginTx(ctx, nil)
	if err == nil {
		t.Fatal("got a second write lock, want SQLITE_BUSY")
	}
	if c, _ := sqliteCode(err); c&0xff != sqliteBusy || !IsTransient(err) {
		t.Fatalf("got code %d transient %v (%v), want busy and transient", c, IsTransient(err), err)
	}
}

// Two PostgreSQL transactions that lock two rows in opposite orders
// deadlock; the one the server aborts gets 40P01, which is transient.
func TestPostgresDeadlockIsTransient(t *testing.T) {
	ctx := context.Background()
	db, err := OpenDB(ctx, freshPG(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE pair (id TEXT PRIMARY KEY, n BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL.ExecContext(ctx, `INSERT INTO pair VALUES ('a', 0), ('b', 0)`); err != nil {
		t.Fatal(err)
	}
	lock := func(tx *sql.Tx, id string) error {
		_, err := tx.ExecContext(ctx, `UPDATE pair SET n = n + 1 WHERE id = $1`, id)
		return err
	}
	t1, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Rollback()
	t2, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer t2.Rollback()
	if err := lock(t1, "a"); err != nil {
		t.Fatal(err)
	}
	if err := lock(t2, "b"); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- lock(t1, "b") }()
	time.Sleep(50 * time.Millisecond)
	go func() { errs <- lock(t2, "a") }()
	first := <-errs
	if first == nil {
		// The survivor got its lock; the victim's error is the other one.
		first = <-errs
	}
	if c, _ := pgCode(first); c != pgDeadlockDetected || !IsTransient(first) {
		t.Fatalf("got %v (code %q), want a transient deadlock", first, c)
	}
}

// Tx runs a transaction again after a transient conflict and keeps only
// the attempt that committed.
func TestTxRetriesTransient(t *testing.T) {
	eachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE hits (n BIGINT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		calls := 0
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			calls++
			if _, err := tx.ExecContext(ctx, `INSERT INTO hits (n) VALUES ($1)`, calls); err != nil {
				return err
			}
			if calls < 3 {
				return fmt.Errorf("guarded update missed: %w", ErrConflict)
			}
			return nil
		})
		if err != nil || calls != 3 {
			t.Fatalf("got calls %d err %v, want 3 calls and no error", calls, err)
		}
		var rows, n int
		if err := db.SQL.QueryRowContext(ctx, `SELECT COUNT(*), MAX(n) FROM hits`).Scan(&rows, &n); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || n != 3 {
			t.Fatalf("got %d rows (max %d), want only the committed attempt's row", rows, n)
		}
		permanent := errors.New("bad input")
		calls = 0
		if err := db.Tx(ctx, func(*sql.Tx) error { calls++; return permanent }); !errors.Is(err, permanent) || calls != 1 {
			t.Fatalf("got calls %d err %v, want one call and the error", calls, err)
		}
	})
}
