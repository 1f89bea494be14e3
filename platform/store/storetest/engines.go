package storetest

import (
	"path/filepath"
	"testing"

	"github.com/glmkit/glmkit/internal/pgtest"
)

// EachEngine runs fn once on a fresh SQLite file and once on a fresh
// PostgreSQL schema (skipped without the test server, see pgtest): every
// test of the platform's tables — the store's and billing's — runs on
// both engines through this one helper. fn gets a DSN; every open of it
// sees the same database, as replicas would. prefix names the schema.
func EachEngine(t *testing.T, prefix string, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, filepath.Join(t.TempDir(), "glm.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, pgtest.Schema(t, prefix))
	})
}
