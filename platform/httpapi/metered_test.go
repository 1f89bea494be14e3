package httpapi

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// meteredEnv is newEnv with the real billing engine as the Meter on its
// own SQLite file, a settable clock, and the admin API mounted beside the
// V4 API as glm serve mounts it.
type meteredEnv struct {
	*env
	bill   *billing.Store
	eng    *billing.Engine
	clock  *testClock
	limits *limits.Reloader
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

const testAdminToken = "test-admin-token-0123456789"

func newMeteredEnv(t *testing.T, start time.Time) *meteredEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenDB(ctx, filepath.Join(t.TempDir(), "billing.db"))
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: start}
	// Manual: the test drives flushes; a day-long lease TTL keeps leases
	// valid across the clock jumps below (validity is TTL/2).
	eng, err := billing.NewEngine(ctx, ledger.New(db), billing.Config{Now: clock.Now, Manual: true, LeaseTTL: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bst := billing.NewStore(ledger.New(db), clock.Now)
	meter := billing.Meter{Engine: eng}
	e := newEnv(t, func(_ *proxyConfig, o *Options, to *taskOptions) {
		to.Calls.Meter = meter
		o.Now = clock.Now
	})
	mountAdmin(e, admin.Options{Billing: bst, PackagesChanged: eng.PackagesChanged, Now: clock.Now})
	t.Cleanup(func() {
		_ = eng.Close(context.Background())
		db.Close()
	})
	return &meteredEnv{env: e, bill: bst, eng: eng, clock: clock}
}

// mountAdmin mounts the admin API on e's root mux, with e's store and
// authenticator, as glm serve does on a shared listener.
func mountAdmin(e *env, o admin.Options) {
	o.Token, o.Accounts, o.Keys, o.Revoker = testAdminToken, e.store, e.store, e.auth
	e.root.Mount(admin.NewHandler(o))
}

// usage flushes the engine and returns the account's usage rows.
func (m *meteredEnv) usage() []billing.UsageRecord {
	m.t.Helper()
	if err := m.eng.Flush(context.Background()); err != nil {
		m.t.Fatal(err)
	}
	rows, err := m.bill.ListUsage(context.Background(), billing.UsageFilter{AccountID: "acct-1", WithParts: true})
	if err != nil {
		m.t.Fatal(err)
	}
	return rows
}

func (m *meteredEnv) grant(name string, tokens int64, models []string, eff, exp time.Time) billing.Package {
	m.t.Helper()
	p, err := m.bill.GrantPackage(context.Background(), billing.Grant{AccountID: "acct-1", Name: name, Tokens: tokens,
		Models: models, EffectiveAt: eff, ExpiresAt: exp})
	if err != nil {
		m.t.Fatal(err)
	}
	return p
}

const meteredChat = `{"model":"glm-4","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`

// Package order through HTTP: scope first, earliest
// expiry first, a package not yet effective is skipped until it is, a
// package stops paying at the exact instant it expires, then cash.
func TestMeteredPackageOrderAndBoundaries(t *testing.T) {
	T := time.Date(2026, 3, 1, 10, 0, 0, 0, billing.BillingZone)
	m := newMeteredEnv(t, T)
	late := m.grant("late, all models", 15, nil, T, T.AddDate(0, 0, 10))
	early := m.grant("early, glm-4", 1_000_000, []string{"glm-4"}, T, T.AddDate(0, 0, 1))
	future := m.grant("future, glm-4", 1_000_000, []string{"glm-4"}, T.Add(time.Hour), T.Add(23*time.Hour))
	other := m.grant("glm-4v only", 1_000_000, []string{"glm-4v"}, T, T.Add(12*time.Hour))
	if _, err := m.bill.TopUp(context.Background(), "acct-1", billing.MicrosPerCNY, "test"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at      time.Time
		payers  []string // sources of the parts, in order
		comment string
	}{
		{T, []string{early.ID}, "future is not effective yet; other's scope is glm-4v"},
		{T.Add(2 * time.Hour), []string{future.ID}, "future is effective and expires first"},
		{T.Add(23*time.Hour - time.Millisecond), []string{future.ID}, "last instant of future"},
		{T.Add(23 * time.Hour), []string{early.ID}, "future expired at the boundary"},
		{T.AddDate(0, 0, 1).Add(-time.Millisecond), []string{early.ID}, "last instant of early"},
		{T.AddDate(0, 0, 1), []string{late.ID}, "early expired at the boundary: late pays (10 of its 15)"},
		{T.AddDate(0, 0, 1), []string{late.ID, billing.PartCash}, "late runs out: 5 tokens, then cash"},
		{T.AddDate(0, 0, 1), []string{billing.PartCash}, "only cash left"},
	}
	m.up.Enqueue(zhipuaitest.Text("ok").WithUsage(5, 5).Times(len(steps)))
	for i, st := range steps {
		m.clock.Set(st.at)
		// What the engine's background loop does every LeaseTTL/4:
		// renew leases, return idle ones (the engine runs Manual here).
		if err := m.eng.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
		resp := m.do("POST", "/chat/completions", meteredChat)
		if b := read(t, resp); resp.StatusCode != 200 {
			t.Fatalf("step %d: %d %s", i, resp.StatusCode, b)
		}
		rows := m.usage()
		if len(rows) != i+1 {
			t.Fatalf("step %d: %d usage rows", i, len(rows))
		}
		var r billing.UsageRecord
		for _, row := range rows {
			if row.RequestID == resp.Header.Get("X-Request-Id") {
				r = row
			}
		}
		var got []string
		for _, p := range r.Parts {
			// One package may pay through two leases (one per engine
			// acquisition): list each payer once, in order.
			if len(got) == 0 || got[len(got)-1] != p.Source {
				got = append(got, p.Source)
			}
		}
		if strings.Join(got, ",") != strings.Join(st.payers, ",") {
			t.Fatalf("step %d (%s): paid by %v, want %v; row %+v", i, st.comment, got, st.payers, r)
		}
		// glm-4: 0.1 CNY per 1K tokens = 100 µ¥ per token; 10 tokens.
		if r.Amount != 1000 || r.Discount+r.Cash != r.Amount || r.Shortfall != 0 {
			t.Fatalf("step %d: charge %+v", i, r.Charge)
		}
	}
	for _, r := range m.usage() {
		for _, p := range r.Parts {
			if p.Source == other.ID {
				t.Fatalf("the glm-4v package paid for glm-4: %+v", r)
			}
		}
	}
	bal, err := m.bill.Balance(context.Background(), "acct-1")
	if err != nil {
		t.Fatal(err)
	}
	// Cash paid 5 tokens (500) and then 10 tokens (1000).
	if bal.Cash != billing.MicrosPerCNY-1500 {
		t.Fatalf("cash %s, want %s", bal.Cash, billing.MicrosPerCNY-1500)
	}
}

// Exhaustion mid-stream: the reservation is payable,
// the stream then reports far more usage than reserved. The stream is
// delivered whole (no retry, no cut after the first byte), the charge takes
// what exists and records the rest as shortfall, the balance never goes
// negative, and the next request is refused with 1113 before any upstream
// call.
func TestMeteredExhaustionMidStream(t *testing.T) {
	m := newMeteredEnv(t, time.Now())
	if _, err := m.bill.TopUp(context.Background(), "acct-1", 10_000, "¥0.01 = 100 glm-4 tokens"); err != nil {
		t.Fatal(err)
	}
	m.up.Enqueue(zhipuaitest.Text("a long answer in many pieces").WithChunks("a long ", "answer ", "in many ", "pieces").WithUsage(5, 5000))
	resp := m.do("POST", "/chat/completions", `{"model":"glm-4","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("stream: %d %s", resp.StatusCode, read(t, resp))
	}
	var text strings.Builder
	done := false
	rd := sse.NewReader(resp.Body)
	for {
		ev, err := rd.Next()
		if err != nil {
			break
		}
		if string(ev.Data) == "[DONE]" {
			done = true
			continue
		}
		if strings.Contains(string(ev.Data), `"error"`) {
			t.Fatalf("in-band error: %s", ev.Data)
		}
		text.WriteString(string(ev.Data))
	}
	resp.Body.Close()
	if !done || !strings.Contains(text.String(), "pieces") {
		t.Fatalf("stream not delivered whole (done=%v): %s", done, text.String())
	}
	rows := m.usage()
	if len(rows) != 1 {
		t.Fatalf("%d usage rows", len(rows))
	}
	r := rows[0]
	if r.CompletionTokens != 5000 || r.Amount != 500_500 || r.Cash != 10_000 || r.Shortfall != 490_500 || r.Discount != 0 {
		t.Fatalf("charge %+v, want amount 500500 = cash 10000 + shortfall 490500", r.Charge)
	}
	bal, _ := m.bill.Balance(context.Background(), "acct-1")
	if bal.Cash != 0 {
		t.Fatalf("cash %s after exhaustion, want 0", bal.Cash)
	}
	before := len(m.up.Requests())
	resp = m.do("POST", "/chat/completions", meteredChat)
	wantError(t, resp, http.StatusTooManyRequests, "1113")
	if got := len(m.up.Requests()); got != before {
		t.Fatalf("a refused request reached the upstream (%d → %d calls)", before, got)
	}
	rows = m.usage()
	rejected := 0
	for _, r := range rows {
		if r.Outcome == billing.OutcomeRejected && r.Amount == 0 && r.RequestID == resp.Header.Get("X-Request-Id") {
			rejected++
		}
	}
	if len(rows) != 2 || rejected != 1 {
		t.Fatalf("want one zero row for the refused request: %+v", rows)
	}
}
