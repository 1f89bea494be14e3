package console_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/pgtest"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/console"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

var master = []byte("0123456789abcdef0123456789abcdef")

// env is a console on a real database behind a real loopback server.
type env struct {
	t   testing.TB
	st  *store.SQL
	srv *httptest.Server
}

// engines runs f on SQLite and, when GLMKIT_TEST_PG_DSN is set, PostgreSQL.
func engines(t *testing.T, f func(t *testing.T, e *env)) {
	for _, eng := range []string{"sqlite", "postgres"} {
		t.Run(eng, func(t *testing.T) {
			dsn := filepath.Join(t.TempDir(), "glm.db")
			if eng == "postgres" {
				dsn = pgtest.Schema(t, "console")
			}
			st, err := store.Open(context.Background(), dsn, store.Options{MasterKey: master})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			f(t, newEnv(t, st))
		})
	}
}

func newEnv(t testing.TB, st *store.SQL) *env {
	ctx := context.Background()
	for _, id := range []string{"acme", "other"} {
		if err := st.CreateAccount(ctx, platform.Account{ID: id, Name: id, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []admin.NewUser{
		{Email: "owner@acme.test", AccountID: "acme", Role: platform.RoleOwner, Password: "owner-pass"},
		{Email: "member@other.test", AccountID: "other", Role: platform.RoleMember, Password: "member-pass"},
		{Email: "op@example.com", Role: platform.RoleAdmin, Password: "admin-pass"},
	} {
		if _, err := admin.CreateUser(ctx, st, st, u, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c := console.New(console.Options{Store: st, Billing: billing.NewStore(ledger.New(st.Handle()), nil),
		Revoker: auth.New(st, auth.Options{}), KeyRecheck: 5 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	root := mux.New(nil)
	root.Mount(c)
	srv := httptest.NewServer(root)
	t.Cleanup(srv.Close)
	return &env{t: t, st: st, srv: srv}
}

// browser is an HTTP client with its own cookies that does not follow
// redirects, so each answer is checked as sent.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf_token in page:\n%.2000s", page)
	}
	return m[1]
}

func (b *browser) signIn(email, pw string) (*http.Response, string) {
	b.e.t.Helper()
	_, page := b.do("GET", "/console", nil)
	return b.do("POST", "/console/signin", url.Values{"csrf_token": {csrfOf(b.e.t, page)}, "email": {email}, "password": {pw}})
}

func (b *browser) mustSignIn(email, pw string) {
	b.e.t.Helper()
	if resp, body := b.signIn(email, pw); resp.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("sign-in %s: got %d %.500s, want 303", email, resp.StatusCode, body)
	}
}

func TestSignInSessionsAndCSRF(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		b := e.browser()
		resp, page := b.do("GET", "/", nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
			t.Fatalf("GET /: got %d to %q, want 302 to /console/", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, page = b.do("GET", "/console", nil)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Fatalf("got CSP %q, want script-src 'self' without unsafe-inline", csp)
		}
		if strings.Contains(page, "<script>") {
			t.Fatal("the sign-in page has an inline script")
		}
		token := csrfOf(t, page)
		if resp, _ := b.do("POST", "/console/signin", url.Values{"email": {"owner@acme.test"}, "password": {"owner-pass"}}); resp.StatusCode != 403 {
			t.Fatalf("sign-in without csrf_token: got %d, want 403", resp.StatusCode)
		}
		resp, page = b.do("POST", "/console/signin", url.Values{"csrf_token": {token}, "email": {"owner@acme.test"}, "password": {"wrong-pass"}})
		if resp.StatusCode != 401 || !strings.Contains(page, "邮箱或密码错误") || !strings.Contains(page, `value="owner@acme.test"`) {
			t.Fatalf("wrong password: got %d, want 401 with the message and the e-mail kept:\n%.1500s", resp.StatusCode, page)
		}
		resp, _ = b.signIn("owner@acme.test", "owner-pass")
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/console/keys" {
			t.Fatalf("sign-in: got %d to %q, want 303 to /console/keys", resp.StatusCode, resp.Header.Get("Location"))
		}
		var sess *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == "glm_session" {
				sess = c
			}
		}
		if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode {
			t.Fatalf("got session cookie %+v, want HttpOnly and SameSite=Lax", sess)
		}

		_, page = b.do("GET", "/console/keys", nil)
		csrf := csrfOf(t, page)
		if resp, _ := b.do("POST", "/console/keys", url.Values{"name": {"no token"}}); resp.StatusCode != 403 {
			t.Fatalf("create key without csrf_token: got %d, want 403", resp.StatusCode)
		}
		if resp, _ := b.do("POST", "/console/keys", url.Values{"name": {"bad"}, "csrf_token": {csrf + "x"}}); resp.StatusCode != 403 {
			t.Fatalf("create key with a wrong csrf_token: got %d, want 403", resp.StatusCode)
		}
		long := strings.Repeat("名", 70) // 210 bytes
		resp, page = b.do("POST", "/console/keys", url.Values{"name": {long}, "csrf_token": {csrf}})
		if resp.StatusCode != 400 || !strings.Contains(page, "名称最多 200 个字节") || !strings.Contains(page, `value="`+long+`"`) {
			t.Fatalf("long name: got %d, want 400 with the message next to the field and the name kept", resp.StatusCode)
		}
		keys, _ := e.st.ListKeys(context.Background(), "acme")
		if len(keys) != 0 {
			t.Fatalf("got %d keys after refused forms, want 0", len(keys))
		}
		resp, page = b.do("POST", "/console/keys", url.Values{"name": {"ci"}, "csrf_token": {csrf}})
		full := regexp.MustCompile(`id="fullkey">([0-9a-f]{32}\.[A-Za-z0-9]{16})<`).FindStringSubmatch(page)
		if resp.StatusCode != 200 || full == nil {
			t.Fatalf("create key: got %d, want 200 showing the full key once", resp.StatusCode)
		}
		if _, page = b.do("GET", "/console/keys", nil); strings.Contains(page, full[1]) {
			t.Fatal("the keys page shows the full key again")
		}

		// A second browser; changing the password in the first ends it.
		b2 := e.browser()
		b2.mustSignIn("owner@acme.test", "owner-pass")
		resp, page = b.do("POST", "/console/password", url.Values{"current": {"owner-pass"}, "password": {"new-owner-pass"}, "csrf_token": {csrf}})
		if resp.StatusCode != 200 || !strings.Contains(page, "密码已修改") {
			t.Fatalf("change password: got %d, want 200 done", resp.StatusCode)
		}
		if resp, _ := b2.do("GET", "/console/keys", nil); resp.StatusCode != 303 {
			t.Fatalf("other session after a password change: got %d, want 303 to sign-in", resp.StatusCode)
		}
		if resp, _ := b.do("GET", "/console/keys", nil); resp.StatusCode != 200 {
			t.Fatalf("the session that changed the password: got %d, want 200", resp.StatusCode)
		}
		// Disabling the user ends its sessions at once.
		if _, err := admin.DisableUser(context.Background(), e.st, "owner@acme.test", time.Now()); err != nil {
			t.Fatal(err)
		}
		if resp, _ := b.do("GET", "/console/keys", nil); resp.StatusCode != 303 {
			t.Fatalf("session of a disabled user: got %d, want 303 to sign-in", resp.StatusCode)
		}
		if resp, _ := b.signIn("owner@acme.test", "new-owner-pass"); resp.StatusCode != 401 {
			t.Fatalf("disabled user signing in: got %d, want 401", resp.StatusCode)
		}
		// Sign-out ends the session.
		b3 := e.browser()
		b3.mustSignIn("op@example.com", "admin-pass")
		_, page = b3.do("GET", "/console/keys", nil)
		if resp, _ := b3.do("POST", "/console/signout", url.Values{"csrf_token": {csrfOf(t, page)}}); resp.StatusCode != 303 {
			t.Fatalf("sign-out: got %d, want 303", resp.StatusCode)
		}
		if resp, _ := b3.do("GET", "/console/keys", nil); resp.StatusCode != 303 {
			t.Fatalf("after sign-out: got %d, want 303 to sign-in", resp.StatusCode)
		}
	})
}

func TestAccountsAreIsolated(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		m := e.browser()
		m.mustSignIn("member@other.test", "member-pass")
		for _, p := range []string{"/console/keys?account=acme", "/console/usage?account=acme", "/console/bills?account=acme",
			"/console/bills/export?month=2026-01&account=acme", "/console/packages?account=acme", "/console/live/usage?account=acme"} {
			if resp, _ := m.do("GET", p, nil); resp.StatusCode != 404 {
				t.Errorf("member of other: GET %s: got %d, want 404", p, resp.StatusCode)
			}
		}
		_, page := m.do("GET", "/console/keys", nil)
		if strings.Contains(page, `id="create-key"`) {
			t.Error("a member sees the create-key form")
		}
		if resp, _ := m.do("POST", "/console/keys", url.Values{"name": {"x"}, "csrf_token": {csrfOf(t, page)}}); resp.StatusCode != 403 {
			t.Errorf("member creating a key: got %d, want 403", resp.StatusCode)
		}
		k, err := admin.CreateKey(context.Background(), e.st, "acme", "acme's", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if resp, _ := m.do("GET", "/console/keys/"+k.ID+"/revoke", nil); resp.StatusCode != 403 {
			t.Errorf("member revoking: got %d, want 403", resp.StatusCode)
		}
		o := e.browser()
		o.mustSignIn("owner@acme.test", "owner-pass")
		if resp, _ := o.do("GET", "/console/keys?account=other", nil); resp.StatusCode != 404 {
			t.Errorf("owner of acme on other: got %d, want 404", resp.StatusCode)
		}
		op := e.browser()
		op.mustSignIn("op@example.com", "admin-pass")
		if resp, page := op.do("GET", "/console/keys?account=acme", nil); resp.StatusCode != 200 || !strings.Contains(page, k.Masked()) {
			t.Errorf("admin on acme: got %d, want 200 listing %s", resp.StatusCode, k.Masked())
		}
	})
}

// Every page renders in both languages with data in it: request-log rows,
// a package, a key.
func TestEveryPageRenders(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		k, err := admin.CreateKey(ctx, e.st, "acme", "main", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var rows []platform.RequestLog
		for i := range 25 {
			rows = append(rows, platform.RequestLog{ID: fmt.Sprintf("r%02d", i), CreatedAt: time.Now().Add(-time.Duration(i) * time.Minute),
				AccountID: "acme", KeyID: k.ID, Model: "glm-4", Endpoint: platform.EndpointChat, HTTPStatus: 200, LatencyMS: 12,
				Usage: platform.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}})
		}
		if err := e.st.InsertRequestLogs(ctx, rows); err != nil {
			t.Fatal(err)
		}
		bs := billing.NewStore(ledger.New(e.st.Handle()), nil)
		if _, err := bs.GrantPackage(ctx, billing.Grant{AccountID: "acme", Name: "体验包", Kind: billing.KindGift, Tokens: 1000,
			ExpiresAt: time.Now().AddDate(0, 1, 0)}); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.mustSignIn("owner@acme.test", "owner-pass")
		month := time.Now().In(billing.BillingZone).Format("2006-01")
		for _, lang := range []struct{ code, want string }{{"zh", "生效中"}, {"en", "Active"}} {
			for _, p := range []string{"/console/keys", "/console/packages", "/console/bills", "/console/bills?month=" + month,
				"/console/usage", "/console/usage?before=" + fmt.Sprint(time.Now().UnixMilli()), "/console/password",
				"/console/keys/" + k.ID + "/revoke", "/console/live/keys", "/console/live/usage"} {
				resp, page := b.do("GET", p+sep(p)+"lang="+lang.code, nil)
				if resp.StatusCode != 200 || strings.Contains(page, "<no value>") {
					t.Errorf("%s GET %s: got %d, want 200 with every field filled:\n%.800s", lang.code, p, resp.StatusCode, page)
				}
			}
			_, page := b.do("GET", "/console/packages?lang="+lang.code, nil)
			if !strings.Contains(page, lang.want) || !strings.Contains(page, "1,000 tokens") {
				t.Errorf("%s packages: want status %q and the tokens left", lang.code, lang.want)
			}
			_, page = b.do("GET", "/console/usage?lang="+lang.code, nil)
			if n := strings.Count(page, "<tr data-request="); n != 20 || !strings.Contains(page, `id="older"`) {
				t.Errorf("%s usage: got %d recent rows, want a page of 20 with a link to older ones", lang.code, n)
			}
		}
		if resp, _ := b.do("GET", "/console/bills?month=2026-13", nil); resp.StatusCode != 400 {
			t.Errorf("bad month: got %d, want 400", resp.StatusCode)
		}
		if resp, _ := b.do("GET", "/console/nowhere", nil); resp.StatusCode != 404 {
			t.Errorf("unknown page: got %d, want 404", resp.StatusCode)
		}
	})
}

func sep(p string) string {
	if strings.Contains(p, "?") {
		return "&"
	}
	return "?"
}

func TestSignInRateLimited(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		b := e.browser()
		for i := range 5 {
			if resp, _ := b.signIn("owner@acme.test", "wrong"); resp.StatusCode != 401 {
				t.Fatalf("failure %d: got %d, want 401", i+1, resp.StatusCode)
			}
		}
		resp, page := b.signIn("owner@acme.test", "owner-pass")
		if resp.StatusCode != 429 || !strings.Contains(page, "登录尝试过多，请 15 分钟后再试") || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("after 5 failures: got %d, want 429 with the message and Retry-After", resp.StatusCode)
		}
		// Another user from the same address is not locked out by that.
		b.mustSignIn("op@example.com", "admin-pass")
	})
}
