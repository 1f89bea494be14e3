package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/console"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

var operatorPages = []string{"/console/admin/accounts", "/console/admin/accounts/acme", "/console/admin/audit",
	"/console/admin/prices", "/console/admin/backends", "/console/admin/logs"}

func (e *env) billing() *billing.Store { return billing.NewStore(ledger.New(e.st.Handle()), nil) }

// auditRows is the audit log of account, newest first.
func (e *env) auditRows(account string) []billing.AuditEntry {
	e.t.Helper()
	es, err := e.billing().AuditLog(context.Background(), account, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// TestOperatorPagesAreAdminOnly: an owner and a member get the console's
// 404 page for every operator page and action; a forged POST without
// csrf_token is 403 even for the operator, and saves nothing.
func TestOperatorPagesAreAdminOnly(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		for _, who := range []struct{ email, pw string }{{"owner@acme.test", "owner-pass"}, {"member@other.test", "member-pass"}} {
			b := e.browser()
			b.mustSignIn(who.email, who.pw)
			for _, p := range operatorPages {
				resp, page := b.do("GET", p, nil)
				if resp.StatusCode != 404 || !strings.Contains(page, "页面不存在") {
					t.Errorf("%s GET %s: got %d, want the console's 404 page", who.email, p, resp.StatusCode)
				}
			}
			_, page := b.do("GET", "/console/keys", nil)
			resp, _ := b.do("POST", "/console/admin/accounts/acme/topup", url.Values{"csrf_token": {csrfOf(t, page)}, "cny": {"5"}, "reason": {"x"}})
			if resp.StatusCode != 404 {
				t.Errorf("%s POST topup with its csrf_token: got %d, want 404", who.email, resp.StatusCode)
			}
		}
		op := e.browser()
		op.mustSignIn("op@example.com", "admin-pass")
		for _, p := range operatorPages {
			if resp, page := op.do("GET", p, nil); resp.StatusCode != 200 {
				t.Errorf("operator GET %s: got %d, want 200:\n%.1500s", p, resp.StatusCode, page)
			}
		}
		resp, _ := op.do("POST", "/console/admin/accounts/acme/topup", url.Values{"cny": {"5"}, "reason": {"forged"}})
		if resp.StatusCode != 403 {
			t.Fatalf("forged POST without csrf_token: got %d, want 403", resp.StatusCode)
		}
		bal, _ := e.billing().Balance(context.Background(), "acme")
		if bal.Cash != 0 || len(e.auditRows("")) != 0 {
			t.Fatalf("after refused POSTs: got cash %s and %d audit rows, want 0 and 0", bal.Cash, len(e.auditRows("")))
		}
	})
}

// post sends an operator's form from the page at from, with its csrf_token.
func (b *browser) post(from, to string, v url.Values) (*http.Response, string) {
	b.e.t.Helper()
	_, page := b.do("GET", from, nil)
	v.Set("csrf_token", csrfOf(b.e.t, page))
	return b.do("POST", to, v)
}

func TestOperatorAccountActions(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		op := e.browser()
		op.mustSignIn("op@example.com", "admin-pass")
		const page = "/console/admin/accounts/acme"
		act := func(a string) string { return page + "/" + a }

		// Refusals: a message next to the field, what was typed kept, nothing saved.
		resp, body := op.post(page, act("grant"), url.Values{"tokens": {"1000"}, "days": {"30"}, "name": {"trial pack"}, "reason": {" "}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="grant-reason-error">reason is required`) ||
			!strings.Contains(body, `name="tokens" type="text" value="1000"`) || !strings.Contains(body, `value="trial pack"`) {
			t.Fatalf("grant without a reason: got %d, want 400 with the message next to reason and the form kept:\n%.3000s", resp.StatusCode, body)
		}
		resp, body = op.post(page, act("grant"), url.Values{"tokens": {"many"}, "days": {"30"}, "reason": {"r"}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="grant-tokens-error">tokens：请输入整数`) || !strings.Contains(body, `value="many"`) {
			t.Fatalf("grant with tokens=many: got %d, want 400 with the message next to tokens:\n%.3000s", resp.StatusCode, body)
		}
		resp, body = op.post(page, act("grant"), url.Values{"tokens": {"-5"}, "days": {"30"}, "reason": {"r"}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="grant-tokens-error">tokens must be positive`) {
			t.Fatalf("grant with tokens=-5: got %d, want 400 from the shared validator:\n%.3000s", resp.StatusCode, body)
		}
		resp, body = op.post(page, act("topup"), url.Values{"cny": {"1.2345678"}, "reason": {"r"}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="topup-cny-error">cny `) || !strings.Contains(body, `value="1.2345678"`) {
			t.Fatalf("top-up of 1.2345678: got %d, want 400 with the message next to cny:\n%.3000s", resp.StatusCode, body)
		}
		resp, body = op.post(page, act("cash"), url.Values{"cny": {"-1"}, "reason": {"too much"}})
		if resp.StatusCode != 400 || !strings.Contains(body, "cannot take") {
			t.Fatalf("taking cash the account has not: got %d, want 400 with the ledger's refusal:\n%.3000s", resp.StatusCode, body)
		}
		ps, _ := e.billing().ListPackages(ctx, "acme")
		bal, _ := e.billing().Balance(ctx, "acme")
		if len(ps) != 0 || bal.Cash != 0 || len(e.auditRows("")) != 0 {
			t.Fatalf("after refusals: got %d packages, cash %s, %d audit rows; want none", len(ps), bal.Cash, len(e.auditRows("")))
		}

		// Grant, top up, adjust cash, adjust and revoke the package, disable and enable.
		resp, _ = op.post(page, act("grant"), url.Values{"tokens": {"1000"}, "days": {"30"}, "name": {"trial"}, "type": {"gift"}, "reason": {"welcome gift"}})
		if resp.StatusCode != 303 || resp.Header.Get("Location") != page+"?done=grant" {
			t.Fatalf("grant: got %d to %q, want 303 to the page", resp.StatusCode, resp.Header.Get("Location"))
		}
		ps, _ = e.billing().ListPackages(ctx, "acme")
		if len(ps) != 1 || ps[0].TokensGranted != 1000 || ps[0].Name != "trial" {
			t.Fatalf("after grant: got packages %+v, want one of 1000 tokens named trial", ps)
		}
		pkg := ps[0].ID
		steps := []struct {
			action string
			form   url.Values
			want   billing.AuditEntry
		}{
			{"topup", url.Values{"cny": {"10"}, "reason": {"paid invoice 7"}},
				billing.AuditEntry{Action: billing.ActionCashTopUp, Subject: "cash", Before: "unleased 0.000000", After: "unleased 10.000000", Reason: "paid invoice 7"}},
			{"cash", url.Values{"cny": {"-2.5"}, "reason": {"refund"}},
				billing.AuditEntry{Action: billing.ActionCashAdjust, Subject: "cash", Before: "unleased 10.000000", After: "unleased 7.500000", Reason: "refund"}},
			{"adjust", url.Values{"package": {pkg}, "tokens": {"-400"}, "reason": {"over-granted"}},
				billing.AuditEntry{Action: billing.ActionPackageAdjust, Subject: pkg, Reason: "over-granted"}},
			{"revoke", url.Values{"package": {pkg}, "reason": {"abuse"}},
				billing.AuditEntry{Action: billing.ActionPackageRevoke, Subject: pkg, Reason: "abuse"}},
			{"disable", url.Values{"reason": {"unpaid"}},
				billing.AuditEntry{Action: billing.ActionAccountDisable, Subject: "acme", Before: "enabled", After: "disabled", Reason: "unpaid"}},
		}
		for _, s := range steps {
			resp, body := op.post(page, act(s.action), s.form)
			if resp.StatusCode != 303 {
				t.Fatalf("%s: got %d, want 303:\n%.3000s", s.action, resp.StatusCode, body)
			}
			got := e.auditRows("acme")[0]
			if got.Actor != "op@example.com" || got.Action != s.want.Action || got.Subject != s.want.Subject || got.Reason != s.want.Reason ||
				(s.want.Before != "" && (got.Before != s.want.Before || got.After != s.want.After)) || time.Since(got.At) > time.Hour {
				t.Fatalf("%s: got audit row %+v, want %+v by op@example.com", s.action, got, s.want)
			}
		}
		ps, _ = e.billing().ListPackages(ctx, "acme")
		if ps[0].TokensGranted != 0 || ps[0].TokensRemaining != 0 || ps[0].Status(time.Now()) != billing.StatusExpired {
			t.Fatalf("after adjust -400 and revoke: got %+v, want its tokens taken away (granted moves with them) and expired", ps[0])
		}
		bal, _ = e.billing().Balance(ctx, "acme")
		a, _ := e.st.GetAccount(ctx, "acme")
		if bal.Cash != 7_500_000 || !a.Disabled() {
			t.Fatalf("got cash %s, disabled %v; want 7.5 and disabled", bal.Cash, a.Disabled())
		}
		resp, body = op.post(page, act("enable"), url.Values{"reason": {""}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="enable-reason-error">reason is required`) {
			t.Fatalf("enable without a reason: got %d, want 400:\n%.3000s", resp.StatusCode, body)
		}
		if resp, _ = op.post(page, act("enable"), url.Values{"reason": {"paid"}}); resp.StatusCode != 303 {
			t.Fatalf("enable: got %d, want 303", resp.StatusCode)
		}
		if got := e.auditRows("acme")[0]; got.Action != billing.ActionAccountEnable || got.After != "enabled" {
			t.Fatalf("enable: got audit row %+v, want account.enable to enabled", got)
		}
		grant := e.auditRows("acme")[len(e.auditRows("acme"))-1]
		if grant.Action != billing.ActionPackageGrant || grant.Subject != pkg || !strings.HasPrefix(grant.After, "granted 1000, unleased 1000") {
			t.Fatalf("grant's audit row: got %+v, want package.grant of %s granting 1000", grant, pkg)
		}

		// The pages show it: the list with the balance, the account page, the audit log.
		_, body = op.do("GET", "/console/admin/accounts?q=ACM", nil)
		if !strings.Contains(body, `data-account="acme"`) || strings.Contains(body, `data-account="other"`) || !strings.Contains(body, "¥ 7.500000") {
			t.Fatalf("accounts searched for ACM: want acme with ¥ 7.500000 and not other:\n%.3000s", body)
		}
		_, body = op.do("GET", page, nil)
		for _, want := range []string{`data-package="` + pkg + `"`, "owner@acme.test", `id="cash">¥ 7.500000`, `id="chart-tokens"`} {
			if !strings.Contains(body, want) {
				t.Errorf("account page: want %q in it", want)
			}
		}
		_, body = op.do("GET", "/console/admin/audit?action=cash.adjust&actor=op@example.com", nil)
		if strings.Count(body, "data-audit=") != 1 || !strings.Contains(body, "unleased 10.000000") || !strings.Contains(body, "refund") {
			t.Fatalf("audit log filtered to cash.adjust: want its one row with before/after and reason:\n%.3000s", body)
		}
		if _, body = op.do("GET", "/console/admin/audit?account=other", nil); strings.Contains(body, "data-audit=") {
			t.Fatal("audit log of account other: got rows, want none")
		}
		if resp, _ := op.post(page, page+"/nonsense", url.Values{"reason": {"r"}}); resp.StatusCode != 404 {
			t.Fatalf("unknown action: got %d, want 404", resp.StatusCode)
		}
		if resp, _ := op.do("GET", "/console/admin/accounts/nobody", nil); resp.StatusCode != 404 {
			t.Fatalf("unknown account: got %d, want 404", resp.StatusCode)
		}
	})
}

func TestOperatorPrices(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		op := e.browser()
		op.mustSignIn("op@example.com", "admin-pass")
		const page = "/console/admin/prices"
		resp, body := op.post(page, page, url.Values{"model": {"glm-4"}, "input": {"abc"}, "reason": {"r"}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="set-input-error">input `) || !strings.Contains(body, `value="abc"`) {
			t.Fatalf("price input=abc: got %d, want 400 next to input with abc kept:\n%.3000s", resp.StatusCode, body)
		}
		resp, body = op.post(page, page, url.Values{"model": {"glm-4"}, "input": {"0.2"}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="set-reason-error">reason is required`) {
			t.Fatalf("price without a reason: got %d, want 400:\n%.3000s", resp.StatusCode, body)
		}
		if p := billing.PriceIn(mustPrices(t, e), "glm-4"); p.Input != 100_000 {
			t.Fatalf("after refusals: got glm-4 input %s, want 0.1 kept", p.Input)
		}
		resp, _ = op.post(page, page, url.Values{"model": {"glm-4"}, "input": {"0.2"}, "reason": {"new list price"}})
		if resp.StatusCode != 303 {
			t.Fatalf("set price: got %d, want 303", resp.StatusCode)
		}
		if p := billing.PriceIn(mustPrices(t, e), "glm-4"); p.Input != 200_000 || p.Output != 100_000 {
			t.Fatalf("after set: got %+v, want input 0.2, output kept 0.1", p)
		}
		got := e.auditRows("")[0]
		if got.Action != billing.ActionPriceSet || got.Actor != "op@example.com" || got.Before != "input 0.100000, cached input 0.100000, output 0.100000, per call 0.000000, image 0.000000" ||
			got.After != "input 0.200000, cached input 0.200000, output 0.100000, per call 0.000000, image 0.000000" {
			t.Fatalf("set price: got audit row %+v", got)
		}
		resp, body = op.post(page, page+"/delete", url.Values{"model": {"no-such-model"}, "reason": {"x"}})
		if resp.StatusCode != 400 || !strings.Contains(body, `id="delete-model-error"`) {
			t.Fatalf("delete an absent row: got %d, want 400 next to model:\n%.3000s", resp.StatusCode, body)
		}
		if resp, _ = op.post(page, page+"/delete", url.Values{"model": {"glm-4"}, "reason": {"retired"}}); resp.StatusCode != 303 {
			t.Fatalf("delete price: got %d, want 303", resp.StatusCode)
		}
		if got := e.auditRows("")[0]; got.Action != billing.ActionPriceDelete || got.Actor != "op@example.com" || got.Reason != "retired" {
			t.Fatalf("delete price: got audit row %+v", got)
		}
		_, body = op.do("GET", page+"?model=glm-4v", nil)
		if strings.Contains(body, `data-model="glm-4"`) || !strings.Contains(body, `id="set-input" name="input" type="text" value="0.100000"`) {
			t.Fatalf("prices page: want glm-4 gone and the glm-4v row in the form:\n%.3000s", body)
		}
		_ = ctx
	})
}

func mustPrices(t *testing.T, e *env) []billing.Price {
	t.Helper()
	ps, err := e.billing().Prices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestOperatorRequestLog(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		now := time.Now()
		var rows []platform.RequestLog
		for i := range 25 {
			r := platform.RequestLog{ID: "req-ok-" + string(rune('a'+i)), CreatedAt: now.Add(-time.Duration(i+10) * time.Minute), AccountID: "acme",
				KeyID: "k1", Model: "glm-4", Endpoint: "chat/completions", HTTPStatus: 200}
			rows = append(rows, r)
		}
		rows = append(rows, platform.RequestLog{ID: "req-failed", CreatedAt: now.Add(-time.Minute), AccountID: "other", KeyID: "k2",
			Model: "glm-4", Endpoint: "chat/completions", HTTPStatus: 502, ErrorCode: "1234", Backend: "vllm-dead",
			ErrorDetail: "backend vllm-dead: connection refused"})
		if err := e.st.InsertRequestLogs(ctx, rows); err != nil {
			t.Fatal(err)
		}
		op := e.browser()
		op.mustSignIn("op@example.com", "admin-pass")
		_, body := op.do("GET", "/console/admin/logs?status=5", nil)
		if strings.Count(body, "data-request=") != 1 || !strings.Contains(body, "backend vllm-dead: connection refused") {
			t.Fatalf("status=5: want the failed row with its error detail:\n%.3000s", body)
		}
		_, body = op.do("GET", "/console/admin/logs?account=acme", nil)
		if n := strings.Count(body, "data-request="); n != 20 || !strings.Contains(body, `id="older"`) {
			t.Fatalf("account acme: got %d rows, want a page of 20 with a link to older ones", n)
		}
		m := regexp.MustCompile(`href="([^"]+)" id="older"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no older link")
		}
		older := m[1]
		_, body = op.do("GET", strings.ReplaceAll(older, "&amp;", "&"), nil)
		if n := strings.Count(body, "data-request="); n != 5 || strings.Contains(body, "req-failed") {
			t.Fatalf("older page of acme: got %d rows, want the last 5 of acme", n)
		}
		resp, body := op.do("GET", "/console/admin/logs?since=yesterday&status=abc&model=glm-4", nil)
		if resp.StatusCode != 400 || !strings.Contains(body, `id="filter-since-error"`) || !strings.Contains(body, `id="filter-status-error"`) ||
			!strings.Contains(body, `value="yesterday"`) || strings.Contains(body, "data-request=") {
			t.Fatalf("bad filters: got %d, want 400 with messages next to since and status, values kept, no rows:\n%.3000s", resp.StatusCode, body)
		}
		since := now.Add(-5 * time.Minute).In(console.ShanghaiZone()).Format("2006-01-02T15:04")
		_, body = op.do("GET", "/console/admin/logs?since="+url.QueryEscape(since), nil)
		if strings.Count(body, "data-request=") != 1 {
			t.Fatalf("since %s: want only the failed row of a minute ago", since)
		}
	})
}
