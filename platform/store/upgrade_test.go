package store_test

// Forward migration of databases made by the previous release, in which
// billing created its own tables (with its own billing_migrations table)
// beside the store's. testdata/README says how the fixtures were made.

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/pgtest"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	_ "github.com/jackc/pgx/v5/stdlib" // the dump loader opens its own connection
)

// prevMasterKey loads the master key the fixtures' API keys were sealed
// with (git does not keep the file's 0600 mode, so it is copied).
func prevMasterKey(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "prev-release.master.key"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, store.MasterKeyFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := store.LoadMasterKey(func(string) string { return "" }, dir)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestUpgradePreviousReleaseSQLite(t *testing.T) {
	gz, err := os.ReadFile(filepath.Join("testdata", "prev-release.db.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "glm.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	checkUpgraded(t, path)
}

// schemaRef matches the previous release's schema name in the dump.
var schemaRef = regexp.MustCompile(`\bglmkit_prev_release\b`)

func TestUpgradePreviousReleasePostgres(t *testing.T) {
	dsn := pgtest.Schema(t, "upgrade")
	schema := ""
	if m := regexp.MustCompile(`search_path=([A-Za-z0-9_]+)`).FindStringSubmatch(dsn); m != nil {
		schema = m[1]
	} else {
		t.Fatalf("no search_path in the test DSN")
	}
	dump, err := os.ReadFile(filepath.Join("testdata", "prev-release.pg.sql"))
	if err != nil {
		t.Fatal(err)
	}
	// Load the plain-SQL dump into the fresh schema: drop psql's meta
	// commands, the schema creation (pgtest made it) and the search_path
	// reset, and point the qualified names at the fresh schema.
	var kept []string
	for _, line := range strings.Split(string(dump), "\n") {
		switch {
		case strings.HasPrefix(line, `\`),
			strings.HasPrefix(line, "CREATE SCHEMA "),
			strings.Contains(line, "set_config('search_path'"):
			continue
		}
		kept = append(kept, line)
	}
	load, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer load.Close()
	if _, err := load.ExecContext(context.Background(), schemaRef.ReplaceAllString(strings.Join(kept, "\n"), schema)); err != nil {
		t.Fatalf("load dump: %v", err)
	}
	load.Close()
	checkUpgraded(t, dsn)
}

// checkUpgraded opens the previous release's database with today's code
// and checks that everything it held reads back, that the ledger audits
// exact, and that money keeps moving on it.
func checkUpgraded(t *testing.T, dsn string) {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn, store.Options{MasterKey: prevMasterKey(t)})
	if err != nil {
		t.Fatalf("open previous release's database: %v", err)
	}
	defer s.Close()
	// Reopening (a second replica, a restart) applies nothing twice.
	s2, err := store.Open(ctx, dsn, store.Options{MasterKey: prevMasterKey(t)})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	s2.Close()

	versions := column(t, s, `SELECT version FROM schema_migrations ORDER BY version`)
	if got, want := strings.Join(versions, ","), "0001_init,0002_billing,0003_billing_limits,0004_billing_migrations,0005_request_log_daily,0006_billing_usage_daily,0007_audit_log,0008_users,0009_request_log_error_detail,0010_billing_tiers,0011_request_log_day,0012_files_batches,0013_account_settings,0014_billing_usage_one_part"; got != want {
		t.Fatalf("got migrations %s, want %s", got, want)
	}

	// The previous release's own version rows survive, so it can still
	// open the database after a rollback.
	billingVersions := column(t, s, `SELECT version FROM billing_migrations ORDER BY version`)
	if got, want := strings.Join(billingVersions, ","), "1,2"; got != want {
		t.Fatalf("got billing_migrations versions %s, want %s", got, want)
	}

	accts, err := s.ListAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range accts {
		ids = append(ids, a.ID)
	}
	if got, want := strings.Join(ids, ","), "default,acme,broke"; got != want {
		t.Fatalf("got accounts %s, want %s", got, want)
	}
	keys, err := s.ListKeysMasked(ctx, "")
	if err != nil {
		t.Fatalf("open the previous release's sealed keys: %v", err)
	}
	if len(keys) != 3 {
		t.Fatalf("got %d keys, want 3", len(keys))
	}
	for _, k := range keys {
		full, err := s.GetKey(ctx, k.ID)
		if err != nil || len(full.Secret) < 8 {
			t.Fatalf("key %s: got secret of %d chars, %v", k.ID, len(full.Secret), err)
		}
	}
	logs, err := s.ListRequestLogs(ctx, platform.RequestLogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) < 12 {
		t.Fatalf("got %d request-log rows, want the 13 requests made", len(logs))
	}
	// Migration 0011 backfilled the per-day roll-up from the rows the
	// previous release stored: every account's days add up its rows.
	type dayKey struct{ day, account, key, model string }
	want := map[dayKey]platform.RequestDay{}
	for _, r := range logs {
		k := dayKey{r.CreatedAt.In(billing.BillingZone).Format(time.DateOnly), r.AccountID, r.KeyID, r.Model}
		d := want[k]
		d.Day, d.KeyID, d.Model = k.day, k.key, k.model
		d.Requests++
		d.Tokens += int64(r.Usage.PromptTokens + r.Usage.CompletionTokens)
		d.Charge += r.Charge.Amount
		want[k] = d
	}
	got := map[dayKey]platform.RequestDay{}
	for _, acct := range []string{"default", "acme", "broke"} {
		days, err := s.RequestDays(ctx, acct, "2000-01-01", "2100-01-01")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range days {
			got[dayKey{d.Day, acct, d.KeyID, d.Model}] = d
		}
	}
	if len(got) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("got backfilled days %v, want the rows added up %v", got, want)
	}

	bst := billing.NewStore(ledger.New(s.Handle()), nil)
	pkgs, err := bst.ListPackages(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	byAcct := map[string]billing.Package{}
	for _, p := range pkgs {
		byAcct[p.AccountID] = p
	}
	if p := byAcct["default"]; p.ID != "pkg_welcome_default" || p.TokensGranted != 100_000_000 {
		t.Fatalf("got default's package %+v, want the welcome package", p)
	}
	if p := byAcct["acme"]; p.TokensGranted != 300 || p.TokensRemaining != 0 || len(p.Models) != 1 || p.Models[0] != "embedding-2" {
		t.Fatalf("got acme's package %+v, want 300 embedding-2 tokens, all spent", p)
	}
	usage, err := bst.ListUsage(ctx, billing.UsageFilter{WithParts: true})
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	var acmeCash billing.Micros
	rejected := 0
	for _, u := range usage {
		per[u.AccountID]++
		if u.AccountID == "acme" {
			acmeCash += u.Cash
		}
		if u.Outcome == billing.OutcomeRejected {
			rejected++
		}
	}
	if per["acme"] != 8 || per["default"] != 4 || per["broke"] != 1 || rejected != 1 {
		t.Fatalf("got usage rows per account %v (%d rejected), want acme 8, default 4, broke 1 rejected", per, rejected)
	}
	bal, err := bst.Balance(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if acmeCash <= 0 || bal.Cash != billing.MicrosPerCNY-acmeCash {
		t.Fatalf("got acme cash %d after paying %d, want 1 CNY less what usage paid", bal.Cash, acmeCash)
	}
	prices, err := bst.Prices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p := billing.PriceIn(prices, "glm-4"); p.Input != 200_000 {
		t.Fatalf("got glm-4 input price %d, want the operator's 0.2 CNY/1K kept", p.Input)
	}
	if len(prices) != len(billing.DefaultPrices()) {
		t.Fatalf("got %d prices, want %d", len(prices), len(billing.DefaultPrices()))
	}
	// Migration 0010 added the 2026 models' rows with their cached price.
	if p := billing.PriceIn(prices, "glm-4.5"); p.Input != 2000 || p.CachedInput != 400 || p.Output != 8000 {
		t.Fatalf("got glm-4.5 price %+v, want 2000/400/8000 µ¥ per 1K", p)
	}
	// Rows charged before tiers keep their amount, unsplit, with no class.
	for _, u := range usage {
		if u.Class != "" || u.Tiers() != (billing.TierCost{Unsplit: billing.Nanos(u.Amount) * 1000}) {
			t.Fatalf("got old row %s class %q tiers %+v, want no class and %d µ¥ unsplit", u.RequestID, u.Class, u.Tiers(), u.Amount)
		}
	}
	if r, ok, err := bst.GetLimit(ctx, billing.LimitAccount, "acme"); err != nil || !ok || r.RPM != 600 {
		t.Fatalf("got acme's limit %+v %v %v, want rpm 600", r, ok, err)
	}
	audit(t, bst)

	// Money keeps moving on the migrated database, and stays exact.
	if _, err := bst.TopUp(ctx, "broke", billing.MicrosPerCNY, "after upgrade"); err != nil {
		t.Fatal(err)
	}
	eng, err := billing.NewEngine(ctx, ledger.New(s.Handle()), billing.Config{Manual: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := eng.Reserve(ctx, billing.ReserveRequest{RequestID: "after-upgrade", AccountID: "broke", KeyID: keys[0].ID, Model: "embedding-2", PromptTokens: 1000})
	if err != nil {
		t.Fatal(err)
	}
	c, err := eng.Settle(ctx, res, billing.Usage{PromptTokens: 1000}, "ok", false)
	if err != nil || c.Cash != 500 {
		t.Fatalf("got charge %+v, %v; want 500 micros cash", c, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := eng.Close(cctx); err != nil {
		t.Fatal(err)
	}
	audit(t, bst)
}

func audit(t *testing.T, bst *billing.Store) {
	t.Helper()
	a, err := bst.Audit(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Err(); err != nil || a.OpenLeases != 0 {
		t.Fatalf("got audit problems %v, %d open leases; want none", err, a.OpenLeases)
	}
}

// column returns the first column of query's rows as strings.
func column(t *testing.T, s *store.SQL, query string) []string {
	t.Helper()
	rows, err := s.DB().QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
