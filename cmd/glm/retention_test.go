package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// seedChunk is the rows the seeder writes per transaction, with the
// leases that paid for them.
const seedChunk = 20_000

// seedRetention fills a fresh database with n request-log rows and n usage
// rows (with their parts) spread evenly over [from, to): 7 accounts, 11
// keys, 4 models, packages and cash paying, some requests refused with
// 1113 and some short of money. The money is consistent — every lease that
// paid is closed with spent = its parts, wallets and packages hold what is
// left — so the audit is exact before any roll-up.
func seedRetention(t testing.TB, dsn string, n int, from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	st, err := store.Open(ctx, dsn, store.Options{MasterKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l := ledger.New(st.Handle())
	const accounts = 7
	acct := func(i int) string { return "acct" + strconv.Itoa(i%accounts) }
	pkg := func(a string) string { return "pkg_" + a }
	err = l.Tx(ctx, func(tx billing.LedgerTx) error {
		for i := 0; i < accounts; i++ {
			a := acct(i)
			if err := tx.AddCash(ctx, a, 1e12, from); err != nil {
				return err
			}
			if err := tx.InsertCredit(ctx, billing.Credit{ID: "cr_cash_" + a, AccountID: a, Kind: billing.CreditTopUp, Micros: 1e12, CreatedAt: from}); err != nil {
				return err
			}
			p := billing.Package{ID: pkg(a), AccountID: a, Name: "seed", Kind: billing.KindPurchased, TokensGranted: 1e12,
				PurchasedAt: from, EffectiveAt: from, ExpiresAt: to.AddDate(1, 0, 0)}
			if _, err := tx.InsertPackage(ctx, p, from, false); err != nil {
				return err
			}
			if err := tx.InsertCredit(ctx, billing.Credit{ID: "cr_pkg_" + a, AccountID: a, Kind: billing.CreditPackage, Tokens: 1e12, Ref: p.ID, CreatedAt: from}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	models := []string{"glm-4", "glm-4-air", "glm-3-turbo", "embedding-2"}
	span := to.Sub(from)
	for c := 0; c < n; c += seedChunk {
		var logs []platform.RequestLog
		var recs []*billing.UsageRecord
		type lease struct {
			acct, src string
			spent     int64
		}
		leases := map[string]*lease{}
		pay := func(r *billing.UsageRecord, src string, tokens int64, micros billing.Micros) {
			id := fmt.Sprintf("lease_%07d_%s_%s", c, r.AccountID, src)
			if leases[id] == nil {
				leaseSrc := pkg(r.AccountID)
				if src == billing.PartCash {
					leaseSrc = "cash:" + r.AccountID // billing's lease source of an account's cash
				}
				leases[id] = &lease{acct: r.AccountID, src: leaseSrc}
			}
			if src == billing.PartCash {
				leases[id].spent += int64(micros)
			} else {
				leases[id].spent += tokens
			}
			r.Parts = append(r.Parts, billing.Part{Source: src, LeaseID: id, Tokens: tokens, Micros: micros})
		}
		for i := c; i < min(c+seedChunk, n); i++ {
			at := from.Add(time.Duration(float64(span) * float64(i) / float64(n)))
			a, k, m := acct(i), "key"+strconv.Itoa(i%11), models[i%len(models)]
			prompt, completion := int64(20+i%500), int64(i%300)
			r := &billing.UsageRecord{RequestID: fmt.Sprintf("req_%08d", i), AccountID: a, KeyID: k, Model: m,
				Outcome: string(platform.OutcomeOK), Estimated: i%31 == 0, ReservedAt: at, CreatedAt: at}
			row := platform.RequestLog{ID: r.RequestID, RequestID: "client-" + strconv.Itoa(i), CreatedAt: at, AccountID: a,
				KeyID: k, Model: m, Endpoint: platform.EndpointChat, Stream: i%2 == 0, LatencyMS: int64(i % 900),
				HTTPStatus: 200, Backend: "cloud"}
			switch {
			case i%50 == 0: // refused: 1113, nothing charged
				r.Outcome = billing.OutcomeRejected
				row.HTTPStatus, row.ErrorCode = 429, "1113"
			case i%40 == 1: // the request log also holds requests no key got through
				row.AccountID, row.KeyID, row.Model, row.HTTPStatus, row.ErrorCode = "", "", "", 401, "1001"
				fallthrough
			default:
				r.PromptTokens, r.CompletionTokens = prompt, completion
				r.Amount = billing.Micros((prompt + completion) * 3)
				switch i % 3 {
				case 0:
					r.Discount, r.PackageTokens = r.Amount, prompt+completion
					pay(r, pkg(a), r.PackageTokens, r.Discount)
				case 1:
					r.Cash = r.Amount
					if i%97 == 1 { // money ran out mid-request
						r.Shortfall = 7
						r.Cash -= 7
					}
					pay(r, billing.PartCash, 0, r.Cash)
				default:
					r.Discount, r.PackageTokens = r.Amount/2, (prompt+completion)/2
					r.Cash = r.Amount - r.Discount
					pay(r, pkg(a), r.PackageTokens, r.Discount)
					pay(r, billing.PartCash, 0, r.Cash)
				}
				if row.AccountID != "" {
					row.Usage = platform.Usage{PromptTokens: int(prompt), CompletionTokens: int(completion), TotalTokens: int(prompt + completion)}
					row.Charge = platform.Charge{Amount: int64(r.Amount), PaidBy: "seed"}
				}
			}
			recs = append(recs, r)
			logs = append(logs, row)
		}
		ids := make([]string, 0, len(leases))
		for id := range leases {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		at := recs[len(recs)-1].CreatedAt
		err := l.Tx(ctx, func(tx billing.LedgerTx) error {
			for _, id := range ids {
				x := leases[id]
				if err := tx.InsertLease(ctx, billing.LeaseRow{ID: id, Holder: "seed", AccountID: x.acct, Source: x.src,
					Granted: x.spent, CreatedAt: at, ExpiresAt: at.Add(time.Minute)}); err != nil {
					return err
				}
				var err error
				if strings.HasPrefix(x.src, "cash:") {
					err = tx.TakeCash(ctx, x.acct, x.spent, at)
				} else {
					err = tx.TakePackageTokens(ctx, x.src, x.spent)
				}
				if err != nil {
					return err
				}
			}
			if _, err := tx.InsertUsage(ctx, recs); err != nil {
				return err
			}
			var parts []billing.UsagePart
			for _, r := range recs {
				for seq, p := range r.Parts {
					parts = append(parts, billing.UsagePart{RequestID: r.RequestID, Seq: seq, Part: p})
				}
			}
			if err := tx.InsertUsageParts(ctx, parts); err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := tx.AddLeaseSpent(ctx, id, leases[id].spent); err != nil {
					return err
				}
				if err := tx.CloseLease(ctx, id, 0, "seed", at); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(logs); i += 5000 {
			if err := st.InsertRequestLogs(ctx, logs[i:min(i+5000, len(logs))]); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// tableCounts reads the row counts of the tables retention moves rows
// between.
func tableCounts(t testing.TB, dsn string) map[string]int64 {
	t.Helper()
	db, err := store.OpenDB(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]int64{}
	for _, tbl := range []string{"request_log", "request_log_daily", "billing_usage", "billing_usage_parts", "billing_usage_daily", "billing_usage_parts_rollup"} {
		var n int64
		if err := db.SQL.QueryRow(`SELECT COUNT(*) FROM ` + tbl).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tbl] = n
	}
	return out
}

// operatorViews runs the operator's read commands and returns what each
// printed: glm bills --json over every month, each month's bill as JSON
// and CSV, and glm usage --daily --json.
func operatorViews(t testing.TB, dir, dsn string, months []string) map[string]string {
	t.Helper()
	run := func(args ...string) string {
		out, stderr, err := cliRunCmd(t.(*testing.T), "", append(args, "--db", dsn, "--data-dir", dir)...)
		if err != nil {
			t.Fatalf("glm %v: %v: %s", args, err, stderr)
		}
		return out
	}
	views := map[string]string{
		"bills --json":         run("bills", "--json", "--months", strconv.Itoa(len(months)+1)),
		"usage --daily --json": run("usage", "--daily", "--json"),
	}
	for _, m := range months {
		views["bills --month "+m+" --json"] = run("bills", "--month", m, "--json")
		views["bills --month "+m+" --csv"] = run("bills", "--month", m, "--csv")
		views["bills --account acct3 --month "+m+" --json"] = run("bills", "--account", "acct3", "--month", m, "--json")
	}
	return views
}

// logDays is the request log by day, rolled up or not.
func logDays(t testing.TB, dsn string) []store.RequestLogDay {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{MasterKey: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := st.RequestLogDays(context.Background(), store.RequestLogDayFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// retentionProof seeds n rows of each kind over the last 13 months, runs
// glm retention run with its defaults (older than 90 days), and checks
// that every bill, daily figure and the audit are what they were.
func retentionProof(t *testing.T, n int) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "glm.db")
	now := time.Now()
	from := now.AddDate(0, -13, 0)
	t0 := time.Now()
	seedRetention(t, dsn, n, from, now.Add(-2*day))
	t.Logf("seeded %d request-log and %d usage rows in %s", n, n, time.Since(t0).Round(time.Millisecond))
	var months []string
	for m := from; !m.After(now.AddDate(0, 1, 0)); m = m.AddDate(0, 1, 0) {
		months = append(months, m.In(billing.BillingZone).Format("2006-01"))
	}
	countsBefore := tableCounts(t, dsn)
	viewsBefore := operatorViews(t, dir, dsn, months)
	daysBefore := logDays(t, dsn)

	t0 = time.Now()
	out, stderr, err := cliRunCmd(t, "", "retention", "run", "--json", "--db", dsn, "--data-dir", dir)
	if err != nil {
		t.Fatalf("glm retention run: %v: %s", err, stderr)
	}
	took := time.Since(t0)
	var res retentionResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("glm retention run --json: %v in %s", err, out)
	}
	countsAfter := tableCounts(t, dsn)
	for _, tbl := range []string{"request_log", "request_log_daily", "billing_usage", "billing_usage_parts", "billing_usage_daily", "billing_usage_parts_rollup"} {
		t.Logf("%-27s %9d → %9d rows", tbl, countsBefore[tbl], countsAfter[tbl])
	}
	t.Logf("glm retention run (before %s): %s in all; request_log %s, billing_usage %s", res.Before.In(billing.BillingZone).Format(time.DateOnly),
		took.Round(time.Millisecond), time.Duration(res.RequestLog.Took).Round(time.Millisecond), time.Duration(res.Usage.Took).Round(time.Millisecond))
	if got, want := countsBefore["request_log"]-countsAfter["request_log"], res.RequestLog.RolledUp; got != want || got == 0 {
		t.Errorf("request_log: got %d rows fewer, the run says %d rolled up; want equal and not 0", got, want)
	}
	if got, want := countsBefore["billing_usage"]-countsAfter["billing_usage"], res.Usage.RolledUp; got != want || got == 0 || res.Usage.Kept != 0 {
		t.Errorf("billing_usage: got %d rows fewer, the run says %d rolled up and %d kept; want equal, not 0, none kept", got, want, res.Usage.Kept)
	}
	if d := cmp.Diff(viewsBefore, operatorViews(t, dir, dsn, months)); d != "" {
		t.Errorf("glm bills / usage --daily changed (-before +after):\n%s", d)
	}
	if d := cmp.Diff(daysBefore, logDays(t, dsn)); d != "" {
		t.Errorf("request log by day changed (-before +after):\n%s", d)
	}
	db, err := store.OpenDB(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := billing.NewStore(ledger.New(db), nil).Audit(ctx, "")
	if err != nil || len(a.Problems) != 0 {
		t.Errorf("audit after the roll-up: %v, problems %q", err, a.Problems)
	}
}

// glm retention run rolls up rows older than 90 days; glm bills (every
// month, JSON and CSV), glm usage --daily and the request log by day print
// the same bytes before and after, and the audit stays exact.
func TestRetentionRunKeepsBills(t *testing.T) { retentionProof(t, 4000) }

// The measurement on a million rows of each kind (a few minutes):
//
//	GLMKIT_RETENTION_ROWS=1000000 go test -run TestRetentionMillionRows -v -timeout 60m ./cmd/glm
func TestRetentionMillionRows(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("GLMKIT_RETENTION_ROWS"))
	if n <= 0 {
		t.Skip("set GLMKIT_RETENTION_ROWS (e.g. 1000000) to measure a roll-up of that many rows")
	}
	retentionProof(t, n)
}

// Bad flags are refused with a message in flag words.
func TestRetentionFlags(t *testing.T) {
	dir := t.TempDir()
	dsn := filepath.Join(dir, "glm.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--older-than", "12h"}, "at least 1d"},
		{[]string{"--older-than", "-3d"}, "whole days"},
		{[]string{"--older-than", "soon"}, "whole days"},
		{[]string{"--older-than", "0"}, "keeps everything"},
		{[]string{"--before", time.Now().Add(-time.Hour).Format(time.RFC3339)}, "at least 1d ago"},
		{[]string{"--before", "yesterday"}, `--before "yesterday"`},
		{[]string{"--before", "2024-01-01", "--older-than", "90d"}, "give one"},
		{[]string{"--batch", "0"}, "--batch must be at least 1"},
	} {
		_, _, err := cliRunCmd(t, "", append([]string{"retention", "run", "--db", dsn, "--data-dir", dir}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("retention run %v: got %v, want an error containing %q", c.args, err, c.want)
		}
	}
	o := &serveOptions{}
	for _, v := range []string{"1h", "x"} {
		if err := (ageValue{&o.retention}).Set(v); err == nil {
			t.Errorf("--retention %s: got no error, want one", v)
		}
	}
	for v, want := range map[string]time.Duration{"0": 0, "90d": 90 * day, "36h": 36 * time.Hour} {
		if err := (ageValue{&o.retention}).Set(v); err != nil || o.retention != want {
			t.Errorf("--retention %s: got %s, %v; want %s", v, o.retention, err, want)
		}
	}
}

// glm serve --retention rolls old rows up in the background, counts them
// on /metrics, and leaves the bills as they were.
func TestServeRollsUpInBackground(t *testing.T) {
	dir := t.TempDir()
	dsn := filepath.Join(dir, "glm.db")
	now := time.Now()
	seedRetention(t, dsn, 2000, now.AddDate(0, -6, 0), now.Add(-2*day))
	months := []string{now.AddDate(0, -6, 0).In(billing.BillingZone).Format("2006-01"), now.AddDate(0, -4, 0).In(billing.BillingZone).Format("2006-01")}
	before := operatorViews(t, dir, dsn, months)
	up := zhipuaitest.NewServer()
	t.Cleanup(up.Close)
	s := startInProcess(t, dir, writeConfig(t, dir, up), "--retention", "30d")
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c := tableCounts(t, dsn)
		if c["request_log_daily"] > 0 && c["billing_usage_daily"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no roll-up after 2 minutes: %v", c)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Wait for the run to finish: the metric is counted at its end.
	var metrics string
	for {
		resp, err := http.Get(s.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		metrics = string(b)
		if strings.Contains(metrics, `glm_retention_runs_total{result="ok",table="billing_usage"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished retention run on /metrics:\n%s", metrics)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{`glm_retention_rows_total{result="rolled_up",table="request_log"}`, `glm_retention_rows_total{result="rolled_up",table="billing_usage"}`} {
		if !strings.Contains(metrics, want) || strings.Contains(metrics, want+" 0\n") {
			t.Errorf("/metrics: got no %s above 0", want)
		}
	}
	s.stop()
	if d := cmp.Diff(before, operatorViews(t, dir, dsn, months)); d != "" {
		t.Errorf("bills changed by the background roll-up (-before +after):\n%s", d)
	}
}
