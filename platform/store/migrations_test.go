package store

import (
	"context"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform/store/storetest"
)

// billingVersions reads the versions the previous release's billing
// migrator looks for.
func billingVersions(t *testing.T, db *DB) string {
	t.Helper()
	rows, err := db.SQL.QueryContext(context.Background(), `SELECT version FROM billing_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("billing_migrations: %v", err)
	}
	defer rows.Close()
	var vs []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(vs, ",")
}

// A fresh database records billing's versions 1 and 2 the way the
// previous release did, so that release finds its tables made and does
// not try to create them again after a rollback; reopening adds nothing.
func TestFreshDatabaseKeepsBillingMigrations(t *testing.T) {
	storetest.EachEngine(t, "store", func(t *testing.T, dsn string) {
		ctx := context.Background()
		for i := 0; i < 2; i++ {
			db, err := OpenDB(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			got := billingVersions(t, db)
			db.Close()
			if want := "1,2"; got != want {
				t.Fatalf("open %d: got billing_migrations versions %q, want %q", i+1, got, want)
			}
		}
	})
}
