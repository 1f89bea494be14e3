package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/console"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// playEnv is the console with the playground wired as glm serve wires it:
// the real billing engine and request log on the same database, the real
// limiter and router, and the scripted cloud as the only stand-in.
type playEnv struct {
	*env
	up   *zhipuaitest.Server
	eng  *billing.Engine
	bill *billing.Store
	rlog *requestlog.Batcher
}

// playEngines runs f on SQLite and, when GLMKIT_TEST_PG_DSN is set,
// PostgreSQL, with sign-up configured by su.
func playEngines(t *testing.T, su console.SignUpOptions, f func(t *testing.T, e *playEnv)) {
	engines(t, func(t *testing.T, base *env) {
		base.srv.Close() // the plain console of engines is not used here
		f(t, newPlayEnv(t, base.st, su))
	})
}

func newPlayEnv(t *testing.T, st *store.SQL, su console.SignUpOptions) *playEnv {
	ctx := context.Background()
	e := &playEnv{up: zhipuaitest.NewServer()}
	t.Cleanup(e.up.Close)
	// acme pays from a package; broke has nothing; busy may start one
	// request a minute.
	for _, id := range []string{"broke", "busy"} {
		if err := st.CreateAccount(ctx, platform.Account{ID: id, Name: id, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []admin.NewUser{
		{Email: "member@acme.test", AccountID: "acme", Role: platform.RoleMember, Password: "member-pass"},
		{Email: "owner@broke.test", AccountID: "broke", Role: platform.RoleOwner, Password: "owner-pass"},
		{Email: "owner@busy.test", AccountID: "busy", Role: platform.RoleOwner, Password: "owner-pass"},
	} {
		if _, err := admin.CreateUser(ctx, st, st, u, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if e.eng, err = billing.NewEngine(ctx, ledger.New(st.Handle()), billing.Config{Manual: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.eng.Close(context.Background()) })
	e.bill = billing.NewStore(ledger.New(st.Handle()), nil)
	if err := e.bill.SetPrice(ctx, billing.Price{Model: "glm-4", Input: 100000, Output: 100000}); err != nil {
		t.Fatal(err)
	}
	if err := e.eng.ReloadPrices(ctx); err != nil {
		t.Fatal(err)
	}
	for _, acct := range []string{"acme", "busy"} {
		if _, err := e.bill.GrantPackage(ctx, billing.Grant{AccountID: acct, Name: "pack", Tokens: 100000,
			ExpiresAt: time.Now().Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	backends, err := router.New(ctx, router.Config{Backends: []router.BackendConfig{
		{Name: "cloud", Type: router.TypeZhipu, BaseURL: e.up.URL(), APIKey: e.up.APIKey}}})
	if err != nil {
		t.Fatal(err)
	}
	e.rlog = requestlog.New(st, requestlog.Options{Interval: 10 * time.Millisecond})
	t.Cleanup(func() { _ = e.rlog.Close(context.Background()) })
	lim := limits.New(limits.Config{Accounts: map[string]limits.Rule{"busy": {RPM: 1}}})
	calls := metered.New(metered.Options{Backend: backends, Catalogue: backends, Meter: billing.Meter{Engine: e.eng},
		Limiter: lim, Log: e.rlog})
	c := console.New(console.Options{Store: st, Billing: e.bill, Revoker: auth.New(st, auth.Options{}),
		KeyRecheck: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Play: console.PlayOptions{Calls: calls, Catalogue: backends}, SignUp: su})
	root := mux.New(nil)
	root.Mount(c)
	srv := httptest.NewServer(root)
	t.Cleanup(srv.Close)
	e.env = &env{t: t, st: st, srv: srv}
	return e
}

// playEvent is one line of the playground's stream.
type playEvent struct {
	T, R      string
	U         *platform.Usage
	Error     string
	Field     string
	Done      bool
	RequestID string `json:"request_id"`
}

// stream posts the playground form as the page's script does and reads
// the answer line by line.
func (b *browser) stream(form url.Values) (*http.Response, []playEvent) {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+"/console/playground", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Console-Stream", "1")
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []playEvent
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var ev playEvent
		if err := json.NewDecoder(resp.Body).Decode(&ev); err != nil {
			b.e.t.Fatalf("refusal body: %v", err)
		}
		return resp, []playEvent{ev}
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev playEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			b.e.t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return resp, evs
}

func (e *playEnv) playForm(b *browser, vals ...string) url.Values {
	e.t.Helper()
	_, page := b.do("GET", "/console/playground", nil)
	f := url.Values{"csrf_token": {csrfOf(e.t, page)}, "model": {"glm-4"}, "message": {"你好"}, "temperature": {"0.5"}}
	for i := 0; i+1 < len(vals); i += 2 {
		f.Set(vals[i], vals[i+1])
	}
	return f
}

// settled flushes the meter and the request log and returns the
// account's request-log rows and usage rows.
func (e *playEnv) settled(account string) ([]platform.RequestLog, []billing.UsageRecord) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.eng.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
	if err := e.rlog.Flush(ctx); err != nil {
		e.t.Fatal(err)
	}
	rows, err := e.st.RecentRequestLogs(ctx, platform.RecentRequests{AccountID: account, Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	usage, err := e.bill.ListUsage(ctx, billing.UsageFilter{AccountID: account})
	if err != nil {
		e.t.Fatal(err)
	}
	return rows, usage
}

func TestPlaygroundStreamsThroughTheMeteredCall(t *testing.T) {
	playEngines(t, console.SignUpOptions{}, func(t *testing.T, e *playEnv) {
		ctx := context.Background()
		b := e.browser()
		b.mustSignIn("owner@acme.test", "owner-pass")
		resp, page := b.do("GET", "/console/playground", nil)
		if resp.StatusCode != 200 || !strings.Contains(page, `<option value="glm-4"`) || !strings.Contains(page, "/console/static/play.js") {
			t.Fatalf("playground page: got %d, want 200 with the chat models and its script:\n%.1500s", resp.StatusCode, page)
		}
		if strings.Contains(page, `<option value="embedding-2"`) {
			t.Fatal("the playground offers an embedding model")
		}

		e.up.Enqueue(zhipuaitest.Text("你好，世界！").WithChunks("你好", "，", "世界", "！").WithUsage(12, 6))
		resp, evs := b.stream(e.playForm(b, "system", "你是一个助手", "temperature", "0.3"))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson; charset=utf-8" {
			t.Fatalf("stream: got %d %q, want 200 application/x-ndjson", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var text string
		pieces := 0
		var last playEvent
		for _, ev := range evs {
			if ev.T != "" {
				text += ev.T
				pieces++
			}
			if ev.U != nil {
				last.U = ev.U
			}
			if ev.Done {
				last.Done, last.RequestID = true, ev.RequestID
			}
		}
		if text != "你好，世界！" || pieces < 2 || !last.Done || last.U == nil || last.U.TotalTokens != 18 {
			t.Fatalf("got text %q in %d pieces, done %v, usage %+v; want 你好，世界！ in pieces, done, 18 tokens", text, pieces, last.Done, last.U)
		}
		got := e.up.Requests()
		if len(got) != 1 || got[0].Chat == nil || len(got[0].Chat.Messages) != 2 || got[0].Chat.Temperature == nil || *got[0].Chat.Temperature != 0.3 {
			t.Fatalf("upstream got %+v, want one chat with the system prompt, the message and temperature 0.3", got)
		}

		rows, usage := e.settled("acme")
		if len(rows) != 1 || len(usage) != 1 {
			t.Fatalf("got %d request-log rows and %d usage rows, want one of each", len(rows), len(usage))
		}
		row := rows[0]
		if row.ID != last.RequestID || row.Model != "glm-4" || row.Endpoint != platform.EndpointChat || !row.Stream ||
			row.HTTPStatus != 200 || row.Usage.TotalTokens != 18 || usage[0].RequestID != row.ID {
			t.Fatalf("got row %+v, usage %+v; want the streamed call's row (id %s) and its usage row", row, usage[0], last.RequestID)
		}
		ps, _ := e.bill.ListPackages(ctx, "acme")
		if len(ps) != 1 || ps[0].TokensRemaining != 100000-18 {
			t.Fatalf("got packages %+v, want the package charged 18 tokens once", ps)
		}

		// The call ran under the account's console key: stored revoked, so
		// the API refuses it, and not on the keys page.
		k, err := e.st.GetKey(ctx, row.KeyID)
		if err != nil || k.AccountID != "acme" || !k.Revoked() {
			t.Fatalf("got console key %+v (%v), want acme's key stored revoked", k, err)
		}
		if _, err := auth.New(e.st, auth.Options{}).Authenticate(ctx, "Bearer "+k.Full()); err == nil {
			t.Fatal("the API accepted the console key")
		}
		if _, page := b.do("GET", "/console/keys", nil); strings.Contains(page, k.ID) {
			t.Fatal("the keys page lists the console key")
		}

		// A second call reuses the key; the page without the script gets
		// the whole answer.
		e.up.Enqueue(zhipuaitest.Text("第二次").WithUsage(3, 2))
		resp, page = b.do("POST", "/console/playground", e.playForm(b))
		if resp.StatusCode != 200 || !strings.Contains(page, `<pre id="play-answer">第二次</pre>`) {
			t.Fatalf("form without the script: got %d, want 200 with the answer:\n%.2000s", resp.StatusCode, page)
		}
		rows, usage = e.settled("acme")
		if len(rows) != 2 || len(usage) != 2 || rows[0].KeyID != row.KeyID {
			t.Fatalf("got %d rows, %d usage rows, key %s; want 2, 2 and the same console key %s", len(rows), len(usage), rows[0].KeyID, row.KeyID)
		}
	})
}

func TestPlaygroundRefusals(t *testing.T) {
	playEngines(t, console.SignUpOptions{}, func(t *testing.T, e *playEnv) {
		b := e.browser()
		b.mustSignIn("owner@acme.test", "owner-pass")
		noToken := url.Values{"model": {"glm-4"}, "message": {"hi"}}
		if resp, _ := b.do("POST", "/console/playground", noToken); resp.StatusCode != 403 {
			t.Fatalf("no csrf_token: got %d, want 403", resp.StatusCode)
		}
		resp, page := b.do("POST", "/console/playground", e.playForm(b, "temperature", "1.5", "message", "留着我"))
		if resp.StatusCode != 400 || !strings.Contains(page, "temperature 须在 0 到 1 之间") || !strings.Contains(page, "留着我</textarea>") ||
			!strings.Contains(page, `value="1.5"`) {
			t.Fatalf("temperature 1.5: got %d, want 400 with the message next to the field and the form kept:\n%.2500s", resp.StatusCode, page)
		}
		resp, evs := b.stream(e.playForm(b, "temperature", "abc"))
		if resp.StatusCode != 400 || evs[0].Field != "temperature" || evs[0].Error != "temperature 须在 0 到 1 之间" {
			t.Fatalf("temperature abc (script): got %d %+v, want 400 naming the field", resp.StatusCode, evs)
		}
		resp, evs = b.stream(e.playForm(b, "model", "embedding-2"))
		if resp.StatusCode != 400 || evs[0].Field != "model" {
			t.Fatalf("embedding model: got %d %+v, want 400 naming the model field", resp.StatusCode, evs)
		}
		resp, evs = b.stream(e.playForm(b, "message", "  "))
		if resp.StatusCode != 400 || evs[0].Field != "message" {
			t.Fatalf("empty message: got %d %+v, want 400 naming the message field", resp.StatusCode, evs)
		}
		if n := len(e.up.Requests()); n != 0 {
			t.Fatalf("refused forms reached the model %d times, want 0", n)
		}

		// The model's backend fails before answering.
		e.up.Enqueue(zhipuaitest.Error(500, "500", "upstream exploded"))
		resp, evs = b.stream(e.playForm(b))
		if resp.StatusCode < 500 || !strings.Contains(evs[0].Error, "模型服务暂时不可用") || strings.Contains(evs[0].Error, "exploded") {
			t.Fatalf("upstream failure: got %d %+v, want a 5xx with the readable message and no upstream text", resp.StatusCode, evs)
		}
		rows, usage := e.settled("acme")
		if len(rows) != 1 || rows[0].ErrorCode == "" || rows[0].HTTPStatus < 500 {
			t.Fatalf("upstream failure: got rows %+v, want one row with its code and status", rows)
		}
		for _, u := range usage {
			if u.Amount != 0 {
				t.Fatalf("upstream failure: got usage %+v, want nothing charged", u)
			}
		}

		// No balance: 1113 before any model call.
		broke := e.browser()
		broke.mustSignIn("owner@broke.test", "owner-pass")
		before := len(e.up.Requests())
		resp, evs = broke.stream(e.playForm(broke))
		if resp.StatusCode != platform.Errorf(platform.CodeArrears, "").Status() || !strings.Contains(evs[0].Error, "余额不足（1113）") {
			t.Fatalf("no balance: got %d %+v, want the 1113 message", resp.StatusCode, evs)
		}
		if len(e.up.Requests()) != before {
			t.Fatal("a call without balance reached the model")
		}
		rows, _ = e.settled("broke")
		if len(rows) != 1 || rows[0].ErrorCode != platform.CodeArrears {
			t.Fatalf("no balance: got rows %+v, want one row with 1113", rows)
		}

		// The account's limit: one request a minute.
		busy := e.browser()
		busy.mustSignIn("owner@busy.test", "owner-pass")
		e.up.Enqueue(zhipuaitest.Text("ok"))
		if resp, _ := busy.stream(e.playForm(busy)); resp.StatusCode != 200 {
			t.Fatalf("busy's first call: got %d, want 200", resp.StatusCode)
		}
		resp, evs = busy.stream(e.playForm(busy))
		if resp.StatusCode != 429 || !strings.Contains(evs[0].Error, "限制") {
			t.Fatalf("busy's second call: got %d %+v, want 429 with the limit message", resp.StatusCode, evs)
		}
		rows, _ = e.settled("busy")
		if len(rows) != 2 || rows[0].ErrorCode != platform.CodeRateLimit {
			t.Fatalf("limit: got rows %+v, want the refused call logged with 1303", rows)
		}
	})
}

func TestMemberKeySwitch(t *testing.T) {
	playEngines(t, console.SignUpOptions{}, func(t *testing.T, e *playEnv) {
		ctx := context.Background()
		owner, member := e.browser(), e.browser()
		owner.mustSignIn("owner@acme.test", "owner-pass")
		member.mustSignIn("member@acme.test", "member-pass")
		_, page := member.do("GET", "/console/keys", nil)
		if strings.Contains(page, `id="create-key"`) || strings.Contains(page, `id="members-switch"`) {
			t.Fatal("a member sees the create form or the owner's switch")
		}
		mcsrf := csrfOf(t, page)
		if resp, _ := member.do("POST", "/console/keys", url.Values{"name": {"m"}, "csrf_token": {mcsrf}}); resp.StatusCode != 403 {
			t.Fatalf("member creates a key while not allowed: got %d, want 403", resp.StatusCode)
		}
		if resp, _ := member.do("POST", "/console/settings/members", url.Values{"members_manage_keys": {"on"}, "csrf_token": {mcsrf}}); resp.StatusCode != 403 {
			t.Fatalf("member flips the switch: got %d, want 403", resp.StatusCode)
		}
		_, page = owner.do("GET", "/console/keys", nil)
		ocsrf := csrfOf(t, page)
		if !strings.Contains(page, `id="members-switch"`) || strings.Contains(page, `id="members-manage" value="on" checked`) {
			t.Fatal("the owner does not see the switch, off")
		}
		if resp, _ := owner.do("POST", "/console/settings/members", url.Values{"members_manage_keys": {"on"}}); resp.StatusCode != 403 {
			t.Fatalf("switch without csrf_token: got %d, want 403", resp.StatusCode)
		}
		resp, _ := owner.do("POST", "/console/settings/members", url.Values{"members_manage_keys": {"on"}, "csrf_token": {ocsrf}})
		if resp.StatusCode != 303 {
			t.Fatalf("owner turns the switch on: got %d, want 303", resp.StatusCode)
		}
		_, page = member.do("GET", "/console/keys", nil)
		if !strings.Contains(page, `id="create-key"`) {
			t.Fatal("an allowed member does not see the create form")
		}
		resp, page = member.do("POST", "/console/keys", url.Values{"name": {"by member"}, "csrf_token": {mcsrf}})
		if resp.StatusCode != 200 || !strings.Contains(page, `id="fullkey"`) {
			t.Fatalf("allowed member creates a key: got %d, want 200 with the key", resp.StatusCode)
		}
		keys, _ := e.st.ListKeys(ctx, "acme")
		if len(keys) != 1 {
			t.Fatalf("got %d keys, want 1", len(keys))
		}
		if resp, _ := member.do("POST", "/console/keys/"+keys[0].ID+"/revoke", url.Values{"csrf_token": {mcsrf}}); resp.StatusCode != 303 {
			t.Fatalf("allowed member revokes: got %d, want 303", resp.StatusCode)
		}
		_, _ = owner.do("POST", "/console/settings/members", url.Values{"csrf_token": {ocsrf}})
		if resp, _ := member.do("POST", "/console/keys", url.Values{"name": {"again"}, "csrf_token": {mcsrf}}); resp.StatusCode != 403 {
			t.Fatalf("member after the switch went off: got %d, want 403", resp.StatusCode)
		}
		log, err := e.bill.AuditLog(ctx, "acme", 10)
		if err != nil {
			t.Fatal(err)
		}
		var flips []string
		for _, a := range log {
			if a.Action == platform.ActionMembersManageKeys {
				if a.Actor != "owner@acme.test" {
					t.Fatalf("got audit actor %q, want the owner", a.Actor)
				}
				flips = append(flips, a.Before+" -> "+a.After)
			}
		}
		want := map[string]bool{"members may not manage keys -> members may manage keys": true,
			"members may manage keys -> members may not manage keys": true}
		if len(flips) != 2 || !want[flips[0]] || !want[flips[1]] || flips[0] == flips[1] {
			t.Fatalf("got audit rows %q, want the two flips with before and after", flips)
		}
	})
}

func TestSignUp(t *testing.T) {
	t.Run("off", func(t *testing.T) {
		playEngines(t, console.SignUpOptions{}, func(t *testing.T, e *playEnv) {
			b := e.browser()
			if resp, _ := b.do("GET", "/console/signup", nil); resp.StatusCode != 404 {
				t.Fatalf("GET /console/signup while off: got %d, want 404", resp.StatusCode)
			}
			if resp, _ := b.do("POST", "/console/signup", url.Values{"email": {"a@b.test"}}); resp.StatusCode != 404 {
				t.Fatalf("POST /console/signup while off: got %d, want 404", resp.StatusCode)
			}
			if _, page := b.do("GET", "/console", nil); strings.Contains(page, "/console/signup") {
				t.Fatal("the sign-in page links to sign-up while it is off")
			}
		})
	})
	su := console.SignUpOptions{Enabled: true, TrialName: "体验资源包", TrialTokens: 500000, TrialModels: []string{"glm-4"},
		TrialDays: 30, Invites: []string{"let-me-in"}, Domains: []string{"example.com"}, PerIP: 6}
	playEngines(t, su, func(t *testing.T, e *playEnv) {
		ctx := context.Background()
		b := e.browser()
		post := func(email, pw, invite string) (*http.Response, string) {
			_, page := b.do("GET", "/console/signup", nil)
			return b.do("POST", "/console/signup", url.Values{"csrf_token": {csrfOf(t, page)}, "email": {email},
				"password": {pw}, "invite": {invite}})
		}
		_, page := b.do("GET", "/console", nil)
		if !strings.Contains(page, `href="/console/signup"`) {
			t.Fatal("the sign-in page does not link to sign-up")
		}
		if resp, _ := b.do("POST", "/console/signup", url.Values{"email": {"new@example.com"}}); resp.StatusCode != 403 {
			t.Fatalf("sign-up without csrf_token: got %d, want 403", resp.StatusCode)
		}
		resp, page := post("new@example.com", "long-enough", "wrong")
		if resp.StatusCode != 400 || !strings.Contains(page, `id="invite-error">邀请码无效`) || !strings.Contains(page, `value="new@example.com"`) {
			t.Fatalf("bad invite: got %d, want 400 with the message by the field and the e-mail kept:\n%.2000s", resp.StatusCode, page)
		}
		resp, page = post("new@other.org", "long-enough", "let-me-in")
		if resp.StatusCode != 400 || !strings.Contains(page, `id="email-error">该邮箱域名不在允许注册的范围内`) {
			t.Fatalf("refused domain: got %d, want 400 with the message by the e-mail", resp.StatusCode)
		}
		resp, page = post("new@example.com", "short", "let-me-in")
		if resp.StatusCode != 400 || !strings.Contains(page, `id="password-error"`) {
			t.Fatalf("short password: got %d, want 400 with the message by the password", resp.StatusCode)
		}
		if _, err := e.st.GetUserByEmail(ctx, "new@example.com"); err == nil {
			t.Fatal("a refused sign-up left a user")
		}
		accts, _ := e.st.ListAccounts(ctx)
		before := len(accts)

		resp, _ = post("New@Example.com", "long-enough", "let-me-in")
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/console/packages?welcome=1" {
			t.Fatalf("sign-up: got %d to %q, want 303 to the packages page", resp.StatusCode, resp.Header.Get("Location"))
		}
		u, err := e.st.GetUserByEmail(ctx, "new@example.com")
		if err != nil || u.Role != platform.RoleOwner || u.AccountID == "" {
			t.Fatalf("got user %+v (%v), want an owner of a new account", u, err)
		}
		accts, _ = e.st.ListAccounts(ctx)
		if len(accts) != before+1 {
			t.Fatalf("got %d accounts, want %d", len(accts), before+1)
		}
		ps, _ := e.bill.ListPackages(ctx, u.AccountID)
		if len(ps) != 1 || ps[0].Name != "体验资源包" || ps[0].TokensGranted != 500000 || len(ps[0].Models) != 1 ||
			ps[0].ExpiresAt.Sub(ps[0].EffectiveAt) != 30*24*time.Hour {
			t.Fatalf("got packages %+v, want the trial package", ps)
		}
		resp, page = b.do("GET", "/console/packages?welcome=1", nil)
		if resp.StatusCode != 200 || !strings.Contains(page, "体验资源包") || !strings.Contains(page, "500,000") || !strings.Contains(page, `id="welcome"`) {
			t.Fatalf("the new owner's packages page: got %d, want it signed in with the trial package:\n%.2000s", resp.StatusCode, page)
		}
		log, _ := e.bill.AuditLog(ctx, u.AccountID, 10)
		if len(log) != 1 || log[0].Action != billing.ActionPackageGrant || log[0].Subject != ps[0].ID || log[0].Actor != "sign-up new@example.com" {
			t.Fatalf("got audit rows %+v, want the trial grant", log)
		}

		other := e.browser()
		b = other
		resp, page = post("new@example.com", "long-enough", "let-me-in")
		if resp.StatusCode != 400 || !strings.Contains(page, `id="email-error">该邮箱已注册`) {
			t.Fatalf("duplicate e-mail: got %d, want 400 with the message by the e-mail", resp.StatusCode)
		}
		// Five attempts so far from this address (the forged one was
		// refused before counting); the sixth is allowed, the seventh not.
		if resp, _ = post("second@example.com", "long-enough", "let-me-in"); resp.StatusCode != 303 {
			t.Fatalf("sixth attempt: got %d, want 303", resp.StatusCode)
		}
		resp, page = post("third@example.com", "long-enough", "let-me-in")
		if resp.StatusCode != 429 || !strings.Contains(page, "注册过于频繁") || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("seventh attempt: got %d, want 429 with the message and Retry-After", resp.StatusCode)
		}
		if _, err := e.st.GetUserByEmail(ctx, "third@example.com"); err == nil {
			t.Fatal("a rate-limited sign-up made a user")
		}
	})
}
