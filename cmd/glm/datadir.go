package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/glmkit/glmkit/platform/store"
)

// Where a command's data lives, and the guard rails around it
// (docs/design.md §9 "Data directory"):
//
//   - the data directory is --data-dir, else $GLMKIT_HOME, else the
//     directory of a --db file, else ./.glmkit;
//   - the database is --db, else DATA_DIR/glm.db;
//   - the master key is $GLMKIT_MASTER_KEY, else DATA_DIR/master.key —
//     the one rule every command uses;
//   - only glm serve and glm init create a SQLite database; every other
//     command refuses one that does not exist, naming the path and what
//     chose it, so a command run in the wrong directory does not make an
//     empty platform there;
//   - a master key that does not open the database's key secrets is an
//     error naming both, before anything is served.

// location is where the data of a command is, and why.
type location struct {
	dataDir string
	dsn     string
	isURL   bool
	// chosenBy names what chose dsn, in the command's own terms.
	chosenBy string
}

func (f *storeFlags) locate() location {
	dataDir, dsn := f.resolve()
	l := location{dataDir: dataDir, dsn: dsn, isURL: strings.Contains(dsn, "://")}
	switch {
	case f.db != "":
		l.chosenBy = "--db"
	case f.dataDir != "":
		l.chosenBy = "--data-dir"
	case os.Getenv(envHome) != "":
		l.chosenBy = "$" + envHome
	default:
		l.chosenBy = "default, as no --db, --data-dir or $" + envHome + " was given"
	}
	return l
}

// keyPath says where the master key comes from.
func (l location) keyPath() string {
	if os.Getenv(store.MasterKeyEnv) != "" {
		return "$" + store.MasterKeyEnv
	}
	return filepath.Join(l.dataDir, store.MasterKeyFile)
}

// errNoDatabase is the refusal of a command pointed at a database that
// does not exist.
func (l location) errNoDatabase() error {
	abs, err := filepath.Abs(l.dsn)
	if err != nil {
		abs = l.dsn
	}
	return fmt.Errorf("no database at %s (chosen by %s): point --db, --data-dir or $%s at glm serve's data, "+
		"or create one with glm init", abs, l.chosenBy, envHome)
}

// exists reports whether the SQLite file is there (a URL is a server's
// business: its own error says whether the database exists).
func (l location) exists() (bool, error) {
	if l.isURL {
		return true, nil
	}
	_, err := os.Stat(l.dsn)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("database %s: %w", l.dsn, err)
}

// existing returns the DSN of a database that exists, else the refusal.
func (f *storeFlags) existing() (string, error) {
	l := f.locate()
	ok, err := l.exists()
	if err != nil {
		return "", err
	}
	if !ok {
		return "", l.errNoDatabase()
	}
	return l.dsn, nil
}

// openStore opens the command's store. With create (glm serve, glm init)
// a missing SQLite database is made, in a directory that exists or is the
// data directory; without it a missing database is refused.
func (f *storeFlags) openStore(ctx context.Context, create bool) (*store.SQL, error) {
	l := f.locate()
	ok, err := l.exists()
	if err != nil {
		return nil, err
	}
	if !ok {
		if !create {
			return nil, l.errNoDatabase()
		}
		// serve and init make the data directory the operator named
		// (--data-dir, $GLMKIT_HOME), never one a --db path implies.
		named := f.dataDir != "" || os.Getenv(envHome) != ""
		if dir := filepath.Dir(l.dsn); f.db != "" && !dirExists(dir) && !(named && filepath.Clean(dir) == filepath.Clean(l.dataDir)) {
			return nil, fmt.Errorf("--db %s: directory %s does not exist", f.db, dir)
		}
	}
	key, err := f.masterKey(ctx, l, ok)
	if err != nil {
		return nil, err
	}
	s, err := store.Open(ctx, l.dsn, store.Options{MasterKey: key})
	if err != nil {
		return nil, err
	}
	if _, err := s.CheckMasterKey(ctx); err != nil {
		s.Close()
		if errors.Is(err, store.ErrMasterKeyMismatch) {
			return nil, fmt.Errorf("the master key %s does not open the key secrets in %s: use the master key this "+
				"database was made with (--data-dir of the directory holding its master.key, or $%s)",
				l.keyPath(), l.dsn, store.MasterKeyEnv)
		}
		return nil, err
	}
	return s, nil
}

// masterKey loads the master key by the one rule. A missing master.key is
// made only when the database holds no key secret (a new database, or one
// without keys): for a database with secrets, a new key would open none.
func (f *storeFlags) masterKey(ctx context.Context, l location, dbExists bool) ([]byte, error) {
	path := filepath.Join(l.dataDir, store.MasterKeyFile)
	if os.Getenv(store.MasterKeyEnv) == "" && dbExists && !fileExists(path) {
		probe := make([]byte, 32)
		_, _ = rand.Read(probe)
		s, err := store.Open(ctx, l.dsn, store.Options{MasterKey: probe})
		if err != nil {
			return nil, err
		}
		sealed, err := s.CheckMasterKey(ctx)
		s.Close()
		if sealed {
			return nil, fmt.Errorf("no master key at %s (and no $%s), but %s holds key secrets sealed under one: "+
				"point --data-dir at the directory holding its master.key, or set $%s", path, store.MasterKeyEnv, l.dsn, store.MasterKeyEnv)
		}
		if err != nil && !errors.Is(err, store.ErrMasterKeyMismatch) {
			return nil, err
		}
	}
	return store.LoadMasterKey(os.Getenv, l.dataDir)
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
