package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/store"
)

// Environment variable naming the data directory (database, master key).
const envHome = "GLMKIT_HOME"

// DefaultAccountID is the account glm serve creates on first start, and the
// one `glm keys create` uses when no --account is given.
const DefaultAccountID = "default"

// storeFlags are the database flags every server-side command shares, so
// `glm serve`, `glm keys` (and the metering commands) open the same data.
type storeFlags struct {
	db      string
	dataDir string
}

func (f *storeFlags) register(cmd *cobra.Command) { f.addFlags(cmd.Flags()) }

func (f *storeFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.db, "db", "", "database: a SQLite file path (default DATA_DIR/glm.db)")
	fs.StringVar(&f.dataDir, "data-dir", "", "data directory for the default database and master.key (default $"+envHome+", else ./.glmkit)")
}

// resolve returns the data directory and the database DSN. The data dir is
// --data-dir, else $GLMKIT_HOME, else the directory of a --db file, else
// ./.glmkit.
func (f *storeFlags) resolve() (dataDir, dsn string) {
	dataDir = f.dataDir
	if dataDir == "" {
		dataDir = os.Getenv(envHome)
	}
	isURL := strings.Contains(f.db, "://")
	if dataDir == "" && f.db != "" && !isURL {
		dataDir = filepath.Dir(f.db)
	}
	if dataDir == "" {
		dataDir = ".glmkit"
	}
	dsn = f.db
	if dsn == "" {
		dsn = filepath.Join(dataDir, "glm.db")
	}
	return dataDir, dsn
}

// open opens (and migrates) the store of a database that exists
// (datadir.go: the guard rails).
func (f *storeFlags) open(ctx context.Context) (*store.SQL, error) {
	return f.openStore(ctx, false)
}

// withStore runs fn on the opened store and closes it afterwards.
func (f *storeFlags) withStore(ctx context.Context, fn func(s *store.SQL) error) error {
	s, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// writeJSONOut prints the --json output of the server-side commands.
func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable is the tabwriter of the server-side commands' tables.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// printList prints v as JSON when asJSON; otherwise a table: the header
// line, then what rows writes (tab-separated lines).
func printList(w io.Writer, asJSON bool, v any, header string, rows func(tw io.Writer)) error {
	if asJSON {
		return writeJSONOut(w, v)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

// ensureDefaultAccount creates the default account when the database has
// no account yet. created reports whether this call made it; a concurrent
// first start of another process loses the insert race harmlessly.
func ensureDefaultAccount(ctx context.Context, s platform.Store) (created bool, err error) {
	accts, err := s.ListAccounts(ctx)
	if err != nil {
		return false, err
	}
	if len(accts) > 0 {
		return false, nil
	}
	err = s.CreateAccount(ctx, platform.Account{ID: DefaultAccountID, Name: "default", CreatedAt: time.Now().UTC()})
	if err != nil {
		if _, gerr := s.GetAccount(ctx, DefaultAccountID); gerr == nil {
			return false, nil // another process created it first
		}
		return false, err
	}
	return true, nil
}

// newKey creates and stores a key for an account.
func newKey(ctx context.Context, s platform.Store, accountID, name string) (platform.Key, error) {
	if _, err := s.GetAccount(ctx, accountID); err != nil {
		if errors.Is(err, platform.ErrNotFound) {
			return platform.Key{}, fmt.Errorf("no account %q", accountID)
		}
		return platform.Key{}, err
	}
	return admin.CreateKey(ctx, s, accountID, name, time.Now())
}
