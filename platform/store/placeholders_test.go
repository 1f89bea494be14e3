package store

import "testing"

// Generated lists are $N on PostgreSQL and anonymous ?s on SQLite (see
// Dialect.Placeholders for why).
func TestPlaceholders(t *testing.T) {
	for _, c := range []struct {
		d    Dialect
		want string
	}{
		{Postgres, "$2, $3, $4"},
		{SQLite, "?, ?, ?"},
	} {
		if got := c.d.Placeholders(2, 3); got != c.want {
			t.Errorf("%s: got %q, want %q", c.d.Name, got, c.want)
		}
	}
}

// On SQLite a generated list after $1 takes the arguments that follow it,
// in order: the shape of the lease renewal and of multi-row inserts.
func TestPlaceholdersBindInOrder(t *testing.T) {
	db, err := OpenDB(t.Context(), t.TempDir()+"/p.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.SQL.Close()
	var got string
	q := `SELECT $1 || '-' || ` + "(" + db.Dialect.Placeholders(2, 1) + ") || '-' || (" + db.Dialect.Placeholders(3, 1) + ")"
	if err := db.SQL.QueryRowContext(t.Context(), q, "a", "b", "c").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "a-b-c"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
