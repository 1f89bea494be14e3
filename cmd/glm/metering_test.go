package main

// Metering through real glm serve processes and the real CLI: the
// 64-request storm on SQLite, PostgreSQL and 3 replicas on PostgreSQL;
// kill -9 between reserve and settle; bills that reconcile with usage.

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// billSite is one database as the CLI and the servers address it.
type billSite struct {
	dir  string   // test dir (config file, data dirs)
	db   []string // --db/--data-dir flags for the CLI
	env  []string // environment for servers and CLI
	cfg  string   // backends config
	up   *zhipuaitest.Server
	data func(i int) string // data dir of server i
	dsn  string
}

const billAdminTok = "metering-test-admin-token-0123456789"

func newBillSite(t *testing.T, pgDSN string) *billSite {
	t.Helper()
	up := zhipuaitest.NewServer()
	t.Cleanup(up.Close)
	dir := t.TempDir()
	s := &billSite{dir: dir, up: up, cfg: writeConfig(t, dir, up)}
	if pgDSN == "" {
		data := filepath.Join(dir, "data")
		s.db = []string{"--data-dir", data}
		s.env = []string{"GLMKIT_MASTER_KEY=", "GLMKIT_ADMIN_TOKEN=" + billAdminTok}
		s.data = func(int) string { return data }
		s.dsn = filepath.Join(data, "glm.db")
	} else {
		s.db = []string{"--db", pgDSN, "--data-dir", filepath.Join(dir, "cli")}
		// Replicas share the master key and the admin token (their data
		// dirs differ).
		s.env = []string{"GLMKIT_MASTER_KEY=" + strings.Repeat("5a", 32), "GLMKIT_ADMIN_TOKEN=" + billAdminTok}
		s.data = func(i int) string { return filepath.Join(dir, fmt.Sprintf("r%d", i)) }
		s.dsn = pgDSN
	}
	// The operator commands below run before the first start: they need
	// the database made first (every command but serve and init refuses
	// a missing one).
	s.glm(t, "init")
	return s
}

func (s *billSite) start(t *testing.T, i int, extra ...string) *proc {
	t.Helper()
	if strings.Contains(s.dsn, "://") {
		extra = append([]string{"--db", s.dsn}, extra...)
	}
	return startServeEnv(t, s.env, s.data(i), s.cfg, extra...)
}

func (s *billSite) glm(t *testing.T, args ...string) []byte {
	t.Helper()
	return runGLMEnv(t, s.env, append(args, s.db...)...)
}

// stop ends a server with SIGTERM: drain, flush usage, return leases.
func billStop(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("glm serve exited with %v: %s", err, p.stderr.String())
	}
}

const billStormBody = `{"model":"glm-4","max_tokens":1000,"messages":[{"role":"user","content":"storm: what is 1+1?"}]}`

// billStormTokens is what one storm request reserves and uses: the
// server's prompt estimate plus max_tokens. The scripted upstream reports
// exactly that, so each request costs what it reserved.
func billStormTokens(t *testing.T) (prompt, completion int) {
	var req zhipuai.ChatCompletionRequest
	if err := json.Unmarshal([]byte(billStormBody), &req); err != nil {
		t.Fatal(err)
	}
	return platform.EstimateChatPromptTokens(&req), 1000
}

// billAccount makes account acme with a key, a glm-4 package worth 3
// requests and cash for 7 more and the prompt and 4 tokens of an 11th: it
// can pay for 10 storm requests, and what is left is short of the prompt
// and the minimum output an 11th would be admitted with
// (platform.MinUsefulOutput, docs/design.md §7).
func billAccount(t *testing.T, s *billSite) (key string, cost int64, pkgTokens int64, cash int64) {
	t.Helper()
	p, c := billStormTokens(t)
	tokens := int64(p + c)
	cost = tokens * 100 // glm-4: ¥0.1 per 1K tokens = 100 µ¥ per token
	s.glm(t, "accounts", "create", "acme", "--name", "ACME")
	var k struct{ Key string }
	if err := json.Unmarshal(s.glm(t, "keys", "create", "--account", "acme", "--name", "storm", "--json"), &k); err != nil {
		t.Fatal(err)
	}
	pkgTokens = 3 * tokens
	s.glm(t, "packages", "grant", "--account", "acme", "--tokens", strconv.FormatInt(pkgTokens, 10), "--days", "30", "--models", "glm-4", "--type", "purchased", "--name", "storm package")
	cash = 7*cost + int64(p+4)*100
	s.glm(t, "topup", "--account", "acme", "--cny", billing.Micros(cash).String())
	return k.Key, cost, pkgTokens, cash
}

type billOutcome struct {
	ok, refused int
	ids         map[string]bool // X-Request-Id of every answer
}

// billStorm sends n concurrent chats spread over the servers.
func billStorm(t *testing.T, servers []*proc, key string, n int) billOutcome {
	t.Helper()
	out := billOutcome{ids: map[string]bool{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(p *proc) {
			defer wg.Done()
			<-start
			resp, err := p.post("/chat/completions", key, billStormBody)
			if err != nil {
				t.Error(err)
				return
			}
			code, body := bodyOf(t, resp, nil)
			var env zhipuai.ErrorEnvelope
			mu.Lock()
			defer mu.Unlock()
			out.ids[resp.Header.Get("X-Request-Id")] = true
			switch {
			case code == 200:
				out.ok++
			case code == http.StatusTooManyRequests && json.Unmarshal(body, &env) == nil && env.Error.Code == "1113" && env.RequestID != "":
				out.refused++
			default:
				t.Errorf("unexpected answer %d %s", code, body)
			}
		}(servers[i%len(servers)])
	}
	close(start)
	wg.Wait()
	if len(out.ids) != n {
		t.Fatalf("%d distinct request ids for %d requests", len(out.ids), n)
	}
	return out
}

type billUsageRow struct {
	RequestID string         `json:"request_id"`
	Outcome   string         `json:"outcome"`
	CreatedAt time.Time      `json:"created_at"`
	Charge    billing.Charge `json:"charge"`
}

// billLedger checks, with every server stopped, that each request has
// exactly one usage row, each paid request cost what it used, and the sum
// of charges equals the drop in packages + cash, to the micro.
func billLedger(t *testing.T, s *billSite, ids map[string]bool, paid int, cost, pkgTokens, cash int64) []billUsageRow {
	t.Helper()
	return billLedgerBounded(t, s, ids, paid, cost, pkgTokens, cash, false)
}

// billLedgerBounded is billLedger where, with bounded, a paid request may
// cost less than a whole one: admitted with its output bounded to the
// credit it found (docs/design.md §7).
func billLedgerBounded(t *testing.T, s *billSite, ids map[string]bool, paid int, cost, pkgTokens, cash int64, bounded bool) []billUsageRow {
	t.Helper()
	var rows []billUsageRow
	if err := json.Unmarshal(s.glm(t, "usage", "--account", "acme", "--json"), &rows); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	var amount, disc, cashPaid, short, pkgUsed int64
	charged := 0
	for _, r := range rows {
		seen[r.RequestID]++
		amount += int64(r.Charge.Amount)
		disc += int64(r.Charge.Discount)
		cashPaid += int64(r.Charge.Cash)
		short += int64(r.Charge.Shortfall)
		pkgUsed += r.Charge.PackageTokens
		switch r.Outcome {
		case "ok":
			charged++
			if a := int64(r.Charge.Amount); a != cost && (!bounded || a > cost) {
				t.Errorf("row %s charged %s, want %s", r.RequestID, r.Charge.Amount, billing.Micros(cost))
			}
		case billing.OutcomeRejected:
			if r.Charge.Amount != 0 {
				t.Errorf("refused row %s charged %s", r.RequestID, r.Charge.Amount)
			}
		default:
			t.Errorf("row %s outcome %s", r.RequestID, r.Outcome)
		}
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("request %s has %d usage rows", id, seen[id])
		}
	}
	if len(rows) != len(ids) || charged != paid {
		t.Fatalf("%d usage rows (%d charged) for %d requests (%d paid)", len(rows), charged, len(ids), paid)
	}
	// The tags matter: without them encoding/json leaves both fields 0
	// ("tokens_remaining" never matches TokensRemaining), which made the
	// package drop read as the whole package and failed the 3-replica storm
	// whenever a replica returned unspent package tokens at SIGTERM.
	var pk []struct {
		TokensGranted   int64 `json:"tokens_granted"`
		TokensRemaining int64 `json:"tokens_remaining"`
	}
	if err := json.Unmarshal(s.glm(t, "packages", "list", "--account", "acme", "--json"), &pk); err != nil || len(pk) != 1 || pk[0].TokensGranted != pkgTokens {
		t.Fatalf("packages %+v %v (granted %d)", pk, err, pkgTokens)
	}
	var accts []struct {
		ID      string
		Balance int64 `json:"balance_micros"`
	}
	if err := json.Unmarshal(s.glm(t, "accounts", "list", "--json"), &accts); err != nil {
		t.Fatal(err)
	}
	bal := int64(-1)
	for _, a := range accts {
		if a.ID == "acme" {
			bal = a.Balance
		}
	}
	pkgDrop := pkgTokens - pk[0].TokensRemaining
	cashDrop := cash - bal
	if short != 0 || amount != disc+cashPaid || pkgUsed != pkgDrop || disc != pkgDrop*100 || cashPaid != cashDrop || (!bounded && amount != int64(paid)*cost) {
		billAudit(t, s)
		t.Fatalf("ledger: charges %d = discount %d + cash %d (+ shortfall %d); package drop %d tokens (rows say %d); cash drop %d; paid %d × %d",
			amount, disc, cashPaid, short, pkgDrop, pkgUsed, cashDrop, paid, cost)
	}
	if bal < 0 || pk[0].TokensRemaining < 0 {
		t.Fatalf("negative balance %d or package %d", bal, pk[0].TokensRemaining)
	}
	billAudit(t, s)
	return rows
}

// billAudit checks the ledger invariant straight from the database
// (billing.Store.Audit) with every server stopped: each package's and the
// cash's drop equals what the usage parts paid, lease by lease, and no lease
// is left open. On failure it logs every lease row.
func billAudit(t *testing.T, s *billSite) {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenDB(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := billing.NewStore(ledger.New(db), nil).Audit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Err() == nil && a.OpenLeases == 0 {
		return
	}
	rows, err := db.SQL.QueryContext(ctx, `SELECT id, holder, source, granted, spent, uncollected, state, returned, close_note FROM billing_leases ORDER BY created_at`)
	if err == nil {
		for rows.Next() {
			var id, h, src, st, note string
			var g, sp, u, ret int64
			if err := rows.Scan(&id, &h, &src, &g, &sp, &u, &st, &ret, &note); err == nil {
				t.Logf("lease %s %s %s granted %d spent %d uncollected %d %s returned %d %q", id, h, src, g, sp, u, st, ret, note)
			}
		}
		rows.Close()
	}
	for _, src := range a.Sources {
		t.Logf("source %+v", src)
	}
	t.Fatalf("ledger audit: %v; %d leases open holding %d", a.Err(), a.OpenLeases, a.Leased())
}

func billCheckStorm(t *testing.T, s *billSite, out billOutcome, n int) {
	t.Helper()
	if out.ok+out.refused != n {
		t.Fatalf("ok %d + 1113 %d != %d", out.ok, out.refused, n)
	}
	// 1113 is answered before any upstream call.
	if got := len(s.up.Requests()); got != out.ok {
		t.Fatalf("upstream saw %d calls for %d paid requests", got, out.ok)
	}
}

func billStormSingle(t *testing.T, s *billSite) {
	key, cost, pkgTokens, cash := billAccount(t, s)
	p, c := billStormTokens(t)
	s.up.Enqueue(zhipuaitest.Text("2").WithUsage(p, c).Times(64))
	srv := s.start(t, 0)
	out := billStorm(t, []*proc{srv}, key, 64)
	billCheckStorm(t, s, out, 64)
	if out.ok != 10 || out.refused != 54 {
		t.Fatalf("%d paid, %d refused; the account pays for exactly 10", out.ok, out.refused)
	}
	billStop(t, srv)
	rows := billLedger(t, s, out.ids, 10, cost, pkgTokens, cash)
	billBillsReconcile(t, s, rows)
}

// TestMeteringStormSQLite: 64 concurrent chats through glm serve on SQLite
// against an account that can pay for 10.
func TestMeteringStormSQLite(t *testing.T) { billStormSingle(t, newBillSite(t, "")) }

// TestMeteringStormPostgres: the same on PostgreSQL.
func TestMeteringStormPostgres(t *testing.T) { billStormSingle(t, newBillSite(t, freshPGSchema(t))) }

// TestMeteringStormThreeReplicas: the storm spread over 3 glm serve
// processes on one PostgreSQL. No overspend, ever; a replica whose
// request the database cannot pay waits for the credit another replica
// holds for requests in flight, or is admitted with its output bounded to
// the credit it finds (docs/design.md §7): the credit is spent before the
// first 1113, without a shortfall, and a fresh server afterwards finds
// nothing more to serve.
func TestMeteringStormThreeReplicas(t *testing.T) {
	s := newBillSite(t, freshPGSchema(t))
	key, cost, pkgTokens, cash := billAccount(t, s)
	p, c := billStormTokens(t)
	// The scripted model stops at max_tokens, as a real one does.
	s.up.Handle(func(r *zhipuaitest.Request) zhipuaitest.Reply {
		if r.Chat != nil && r.Chat.MaxTokens != nil && *r.Chat.MaxTokens < c {
			return zhipuaitest.Text("2").WithUsage(p, *r.Chat.MaxTokens).WithFinish("length")
		}
		return zhipuaitest.Text("2").WithUsage(p, c)
	})
	var servers []*proc
	for i := 0; i < 3; i++ {
		servers = append(servers, s.start(t, i))
	}
	out := billStorm(t, servers, key, 64)
	billCheckStorm(t, s, out, 64)
	if out.ok < 10 {
		t.Fatalf("%d paid in the storm; the account pays for at least 10 before its first 1113", out.ok)
	}
	for _, srv := range servers {
		billStop(t, srv)
	}
	rows := billLedgerBounded(t, s, out.ids, out.ok, cost, pkgTokens, cash, true)
	var spent int64
	for _, r := range rows {
		spent += int64(r.Charge.Amount)
	}
	credit := pkgTokens*100 + cash
	t.Logf("storm over 3 replicas: %d paid, %d refused; %.1f %% of the credit spent", out.ok, out.refused, 100*float64(spent)/float64(credit))
	if spent*100 < credit*95 {
		t.Errorf("spent %d of %d micros in the storm, want ≥ 95 %%", spent, credit)
	}

	last := s.start(t, 3)
	paid := out.ok
	for i := 0; ; i++ {
		code, body := last.postB(t, "/chat/completions", key, billStormBody)
		if code == 429 && strings.Contains(string(body), `"1113"`) {
			break
		}
		if code != 200 || i > 10 {
			t.Fatalf("after the storm: %d %s", code, body)
		}
		paid++
	}
	if paid != out.ok {
		t.Fatalf("%d more requests paid after the storm, want none", paid-out.ok)
	}
	billStop(t, last)
	billAudit(t, s)
}

// billBillsReconcile: `glm bills --month` (JSON and text) and its CSV
// export reconcile with `glm usage --json` to the last micro.
func billBillsReconcile(t *testing.T, s *billSite, rows []billUsageRow) {
	t.Helper()
	byMonth := map[string][3]int64{}
	for _, r := range rows {
		m := r.CreatedAt.In(billing.BillingZone).Format("2006-01")
		v := byMonth[m]
		v[0] += int64(r.Charge.Amount)
		v[1] += int64(r.Charge.Discount)
		v[2] += int64(r.Charge.Cash)
		byMonth[m] = v
	}
	for month, want := range byMonth {
		var b billing.Bill
		if err := json.Unmarshal(s.glm(t, "bills", "--month", month, "--account", "acme", "--json"), &b); err != nil {
			t.Fatal(err)
		}
		if got := [3]int64{int64(b.Totals.Total), int64(b.Totals.Discount), int64(b.Totals.Payable)}; got != want {
			t.Fatalf("bill %s totals %v, usage rows say %v", month, got, want)
		}
		text := string(s.glm(t, "bills", "--month", month, "--account", "acme"))
		if !strings.Contains(text, "总消费金额 ¥"+billing.Micros(want[0]).String()) || !strings.Contains(text, "应付金额 ¥"+billing.Micros(want[2]).String()) {
			t.Fatalf("bill text:\n%s", text)
		}
		recs, err := csv.NewReader(strings.NewReader(string(s.glm(t, "bills", "--month", month, "--account", "acme", "--csv")))).ReadAll()
		if err != nil || len(recs) < 3 {
			t.Fatalf("csv %v %v", recs, err)
		}
		head, total := recs[0], recs[len(recs)-1]
		col := func(name string) string {
			for i, h := range head {
				if h == name {
					return total[i]
				}
			}
			t.Fatalf("csv has no %s column: %v", name, head)
			return ""
		}
		if col("date") != "total" || col("total_cny") != billing.Micros(want[0]).String() ||
			col("discount_cny") != billing.Micros(want[1]).String() || col("payable_cny") != billing.Micros(want[2]).String() {
			t.Fatalf("csv total row %v, usage rows say %v", total, want)
		}
	}
}

// TestMeteringKill9BetweenReserveAndSettle: a server is killed (-9) while
// a request holds a reservation (a slow scripted stream); after a restart
// the dead server's leases are reconciled: the open reservation is
// released, not charged (notes/metering.md "Crash story"), settled rows
// stay charged once, and the balance is exactly initial − settled charges.
func TestMeteringKill9BetweenReserveAndSettle(t *testing.T) {
	s := newBillSite(t, "")
	s.glm(t, "accounts", "create", "acme")
	var k struct{ Key string }
	if err := json.Unmarshal(s.glm(t, "keys", "create", "--account", "acme", "--json"), &k); err != nil {
		t.Fatal(err)
	}
	s.glm(t, "topup", "--account", "acme", "--cny", "1")
	srv := s.start(t, 0, "--lease-ttl", "2s")
	s.up.Enqueue(zhipuaitest.Text("settled").WithUsage(100, 100))
	if code, body := srv.postB(t, "/chat/completions", k.Key, `{"model":"glm-4","max_tokens":100,"messages":[{"role":"user","content":"one"}]}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	db, err := store.OpenDB(context.Background(), s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bst := billing.NewStore(ledger.New(db), nil)
	usage := func() []billing.UsageRecord {
		rows, err := bst.ListUsage(context.Background(), billing.UsageFilter{AccountID: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	poll(t, "the settled row to be written", func() bool { return len(usage()) == 1 })
	settled := usage()[0].Amount
	if settled != 20_000 { // 200 tokens × 100 µ¥
		t.Fatalf("settled %s", settled)
	}
	// A slow stream: reserved, upstream called, never settled.
	s.up.Enqueue(zhipuaitest.Text("never ends").WithChunks("never ", "ends").WithUsage(100, 100).WithDelay(10 * time.Minute))
	go func() {
		resp, err := srv.post("/chat/completions", k.Key, `{"model":"glm-4","stream":true,"max_tokens":500,"messages":[{"role":"user","content":"two"}]}`)
		if err == nil {
			resp.Body.Close()
		}
	}()
	poll(t, "the slow request to reach the upstream", func() bool { return len(s.up.Requests()) == 2 })
	activeLeases := func() int {
		var n int
		if err := db.SQL.QueryRow(`SELECT COUNT(*) FROM billing_leases WHERE state = 'active'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if activeLeases() == 0 {
		t.Fatal("no active lease while a reservation is open")
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	if activeLeases() == 0 {
		t.Fatal("kill -9 returned the leases (it must not be able to)")
	}
	// Restart: the new server's engine reconciles the dead holder's leases
	// once they expire (--lease-ttl).
	srv2 := s.start(t, 0, "--lease-ttl", "2s")
	poll(t, "the dead server's leases to be reconciled", func() bool { return activeLeases() == 0 })
	b, err := bst.Balance(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if b.Cash != billing.MicrosPerCNY-settled || b.Unleased != b.Cash {
		t.Fatalf("after reconcile: cash %s (unleased %s), want %s", b.Cash, b.Unleased, billing.MicrosPerCNY-settled)
	}
	if rows := usage(); len(rows) != 1 {
		t.Fatalf("%d usage rows; the killed request must not be charged", len(rows))
	}
	// The restarted server charges new requests normally.
	s.up.Enqueue(zhipuaitest.Text("after").WithUsage(10, 10))
	if code, body := srv2.postB(t, "/chat/completions", k.Key, `{"model":"glm-4","max_tokens":100,"messages":[{"role":"user","content":"three"}]}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	billStop(t, srv2)
	b, _ = bst.Balance(context.Background(), "acme")
	if rows := usage(); len(rows) != 2 || b.Cash != billing.MicrosPerCNY-settled-2_000 {
		t.Fatalf("after restart: %d rows, cash %s", len(rows), b.Cash)
	}
	billAudit(t, s)
}

// TestMeteringSmallPackageWithoutMaxTokens: an account holding a
// 1,000-token package sends a chat without max_tokens. The model's
// maximum output (8192 for glm-4) is more than the package pays for, so the
// request is admitted with max_tokens bounded to what the package pays
// after the prompt (docs/design.md §7): the upstream receives that bound,
// the reply ends with finish_reason "length", the package is spent to the
// token with no shortfall, and the next request gets 1113.
func TestMeteringSmallPackageWithoutMaxTokens(t *testing.T) {
	s := newBillSite(t, "")
	s.glm(t, "accounts", "create", "small")
	var k struct{ Key string }
	if err := json.Unmarshal(s.glm(t, "keys", "create", "--account", "small", "--json"), &k); err != nil {
		t.Fatal(err)
	}
	s.glm(t, "packages", "grant", "--account", "small", "--tokens", "1000", "--days", "30", "--models", "glm-4")
	const body = `{"model":"glm-4","messages":[{"role":"user","content":"写一篇长文"}]}`
	var req zhipuai.ChatCompletionRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	prompt := platform.EstimateChatPromptTokens(&req)
	// The scripted model writes 5,000 tokens unless max_tokens stops it.
	s.up.Handle(func(r *zhipuaitest.Request) zhipuaitest.Reply {
		if r.Chat != nil && r.Chat.MaxTokens != nil && *r.Chat.MaxTokens < 5000 {
			return zhipuaitest.Text("长文……").WithUsage(prompt, *r.Chat.MaxTokens).WithFinish("length")
		}
		return zhipuaitest.Text("长文").WithUsage(prompt, 5000)
	})
	srv := s.start(t, 0)
	code, got := srv.postB(t, "/chat/completions", k.Key, body)
	if code != 200 {
		t.Fatalf("got %d %s, want 200", code, got)
	}
	var reply zhipuai.ChatCompletion
	if err := json.Unmarshal(got, &reply); err != nil || len(reply.Choices) != 1 {
		t.Fatalf("reply %s: %v", got, err)
	}
	if fr := reply.Choices[0].FinishReason; fr != "length" {
		t.Errorf("got finish_reason %q, want length", fr)
	}
	seen := s.up.Requests()
	if len(seen) != 1 || seen[0].Chat == nil || seen[0].Chat.MaxTokens == nil || *seen[0].Chat.MaxTokens != 1000-prompt {
		t.Fatalf("upstream saw %+v, want one chat with max_tokens %d", seen, 1000-prompt)
	}
	code, got = srv.postB(t, "/chat/completions", k.Key, body)
	if code != 429 || !strings.Contains(string(got), `"1113"`) {
		t.Errorf("second request: got %d %s, want 429 with 1113", code, got)
	}
	billStop(t, srv)
	var rows []billUsageRow
	if err := json.Unmarshal(s.glm(t, "usage", "--account", "small", "--json"), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Charge.PackageTokens != 1000 || rows[0].Charge.Shortfall != 0 || rows[0].Charge.Cash != 0 {
		t.Fatalf("usage rows %+v, want the first paid by 1000 package tokens, no shortfall, then a refusal", rows)
	}
	t.Logf("1,000-token package, no max_tokens: upstream max_tokens %d (prompt %d), finish_reason %s, package tokens charged %d",
		*seen[0].Chat.MaxTokens, prompt, reply.Choices[0].FinishReason, rows[0].Charge.PackageTokens)
	billAudit(t, s)
}
