package httpapi

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// newLimitsEnv is a server whose limiter is fed from billing_limit_rules
// by a reloader, as glm serve wires it (reload loop not started: the test
// shows the admin call applies at once on the serving process).
func newLimitsEnv(t *testing.T, file limits.Rules) *meteredEnv {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenDB(ctx, filepath.Join(t.TempDir(), "billing.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bst := billing.NewStore(ledger.New(db), nil)
	// A fixed limiter clock: the RPM window cannot roll over mid-test.
	at := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)
	lim := limits.New(limits.Config{Now: func() time.Time { return at }})
	rl := limits.NewReloader(lim, file, func(ctx context.Context) (limits.Rules, error) {
		rs, err := bst.ListLimits(ctx)
		return admin.LimitRules(rs), err
	}, time.Hour, nil)
	if err := rl.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(_ *proxyConfig, _ *Options, to *taskOptions) {
		to.Calls.Limiter = lim
	})
	mountAdmin(e, admin.Options{Billing: bst, Limits: rl})
	return &meteredEnv{env: e, bill: bst, limits: rl}
}

// Limits through the admin API: PUT applies on this server at once (the
// third request of the minute gets 1303 in the V4 envelope and never
// reaches the upstream), fields merge, GET shows the stored and the
// enforced rules, DELETE falls back to the file's rule.
func TestAdminLimits(t *testing.T) {
	m := newLimitsEnv(t, limits.Rules{Accounts: map[string]limits.Rule{"acct-1": {DailyTokens: 1_000_000}}})
	chat := `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`
	authz := "Bearer " + m.key.Full()
	path := "/limits/keys/" + m.key.ID
	wantError(t, m.admin("GET", path, ""), 404, "1214") // no rule yet

	r := adminDecode[platform.LimitRule](t, m.admin("PUT", path, `{"rpm":2}`), 200)
	if r.RPM != 2 || r.Subject != "key" || r.ID != m.key.ID {
		t.Fatalf("%+v", r)
	}
	m.up.Enqueue(zhipuaitest.Text("ok").Times(2))
	for i := 0; i < 2; i++ {
		if resp := m.do("POST", "/chat/completions", chat, authz); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, read(t, resp))
		}
	}
	if n := len(m.up.Requests()); n != 2 {
		t.Fatalf("upstream saw %d", n)
	}
	env := wantError(t, m.do("POST", "/chat/completions", chat, authz), 429, "1303")
	if env.RequestID == "" {
		t.Fatalf("envelope without request id: %+v", env)
	}
	if n := len(m.up.Requests()); n != 2 {
		t.Fatalf("upstream saw the refused request (%d calls)", n)
	}

	// Merge: setting concurrency keeps rpm.
	r = adminDecode[platform.LimitRule](t, m.admin("PUT", path, `{"max_concurrent":1}`), 200)
	if r.RPM != 2 || r.MaxConcurrent != 1 {
		t.Fatalf("merge: %+v", r)
	}
	got := adminDecode[platform.LimitRule](t, m.admin("GET", path, ""), 200)
	if got.RPM != 2 || got.MaxConcurrent != 1 {
		t.Fatalf("get: %+v", got)
	}
	list := adminDecode[struct {
		Data     []platform.LimitRule `json:"data"`
		Enforced struct {
			Rules limits.Rules `json:"rules"`
		} `json:"enforced"`
	}](t, m.admin("GET", "/limits", ""), 200)
	if len(list.Data) != 1 || list.Enforced.Rules.Keys[m.key.ID] != (limits.Rule{RPM: 2, MaxConcurrent: 1}) ||
		list.Enforced.Rules.Accounts["acct-1"].DailyTokens != 1_000_000 {
		t.Fatalf("list %+v", list)
	}

	// Clear: the key is unlimited again (the file's account rule stays).
	adminDecode[map[string]any](t, m.admin("DELETE", path, ""), 200)
	m.up.Enqueue(zhipuaitest.Text("ok"))
	if resp := m.do("POST", "/chat/completions", chat, authz); resp.StatusCode != 200 {
		t.Fatalf("after clear: %d %s", resp.StatusCode, read(t, resp))
	}
	wantError(t, m.admin("DELETE", path, ""), 404, "1214")
	list2 := adminDecode[struct {
		Data     []platform.LimitRule `json:"data"`
		Enforced struct {
			Rules limits.Rules `json:"rules"`
		} `json:"enforced"`
	}](t, m.admin("GET", "/limits", ""), 200)
	if len(list2.Data) != 0 || len(list2.Enforced.Rules.Keys) != 0 || list2.Enforced.Rules.Accounts["acct-1"].DailyTokens != 1_000_000 {
		t.Fatalf("after clear %+v", list2)
	}

	// An account rule overrides the file's rule for that account as a whole.
	adminDecode[platform.LimitRule](t, m.admin("PUT", "/limits/accounts/acct-1", `{"daily_tokens":0,"rpm":100}`), 200)
	rules, _ := newLimitsEnvEnforced(m)
	if rules.Accounts["acct-1"] != (limits.Rule{RPM: 100}) {
		t.Fatalf("override %+v", rules.Accounts)
	}
}

func newLimitsEnvEnforced(m *meteredEnv) (limits.Rules, time.Time) {
	return m.limits.Enforced()
}
