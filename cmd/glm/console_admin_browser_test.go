package main

// The operator's console pages in Debian's headless Chromium: an admin
// signs in, grants a package and tops up cash with a reason, sees the
// account's balances change and the audit rows, and sees the backend's
// health and request count after a call through the Go SDK. Screenshots of
// every operator page in zh and en (docs/screenshots with
// GLMKIT_UPDATE_SCREENSHOTS=1).

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

const operatorPW = "operator-pass-1"

func TestOperatorConsoleInChromium(t *testing.T) {
	exe := chromium(t)
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := startInProcess(t, data, writeConfig(t, dir, up))
	runGLMStdin(t, operatorPW, "users", "create", "op@example.com", "--role", "admin", "--password-stdin", "--data-dir", data)
	runGLMStdin(t, ownerPW, "users", "create", "owner@example.com", "--account", "default", "--role", "owner", "--password-stdin", "--data-dir", data)

	// One call through the SDK, so the backend and the request log have a row.
	client, err := zhipuai.NewClient(zhipuai.WithAPIKey(s.key), zhipuai.WithBaseURL(s.base+"/api/paas/v4/"), zhipuai.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Chat.Completions.Create(context.Background(), &zhipuai.ChatCompletionRequest{Model: "glm-4",
		Messages: []zhipuai.Message{zhipuai.UserMessage("hello")}}); err != nil {
		t.Fatal(err)
	}

	shots := t.TempDir()
	if os.Getenv("GLMKIT_UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs", "screenshots")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1100, 800))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 5*time.Minute)
	defer cancelT()
	b := &browser{t: t, ctx: bctx, base: s.base, shot: shots}

	b.signIn("op@example.com", operatorPW)
	b.run(chromedp.Click("#nav-admin", chromedp.ByQuery), chromedp.WaitVisible("#accounts", chromedp.ByQuery))
	b.screenshot("admin-accounts-zh")
	before := b.text(`tr[data-account="default"] .remaining`)

	// Grant a package with a reason; the account's remaining tokens change.
	b.open("/console/admin/accounts/default")
	b.run(chromedp.Click("#grant summary", chromedp.ByQuery),
		chromedp.SetValue("#grant-tokens", "5000", chromedp.ByQuery), chromedp.SetValue("#grant-days", "30", chromedp.ByQuery),
		chromedp.SetValue("#grant-name", "browser gift", chromedp.ByQuery),
		chromedp.Submit("#grant-form", chromedp.ByQuery), chromedp.WaitVisible("#refused", chromedp.ByQuery),
	)
	if got := b.text("#grant-reason-error"); !strings.Contains(got, "reason is required") {
		t.Fatalf("grant without a reason: got message %q, want reason is required", got)
	}
	if got := b.value("#grant-tokens"); got != "5000" {
		t.Fatalf("refused grant: got tokens %q kept, want 5000", got)
	}
	b.run(chromedp.SetValue("#grant-reason", "welcome, browser test", chromedp.ByQuery),
		chromedp.Submit("#grant-form", chromedp.ByQuery))
	// The grant's page also shows #done: wait for the page each action
	// redirects to, not for the element, or the next check reads the page
	// before it was replaced.
	b.waitJS("the grant's result page", `location.search.includes('done=grant') && document.readyState === 'complete' && document.getElementById('done')`)
	b.screenshot("admin-account-zh")
	b.run(chromedp.Click("#topup summary", chromedp.ByQuery), chromedp.SetValue("#topup-cny", "12.5", chromedp.ByQuery),
		chromedp.SetValue("#topup-reason", "invoice 42", chromedp.ByQuery),
		chromedp.Submit("#topup-form", chromedp.ByQuery))
	b.waitJS("the top-up's result page", `location.search.includes('done=topup') && document.readyState === 'complete' && document.getElementById('done')`)
	if got := b.text("#cash"); got != "¥ 12.500000" {
		t.Fatalf("cash after a top-up of 12.5: got %q", got)
	}
	b.open("/console/admin/accounts")
	if after := b.text(`tr[data-account="default"] .remaining`); after == before || b.text(`tr[data-account="default"] .cash`) != "¥ 12.500000" {
		t.Fatalf("accounts list after grant and top-up: remaining %q (was %q), cash %q", after, before, b.text(`tr[data-account="default"] .cash`))
	}

	// The audit rows: who, what, before/after, why.
	b.open("/console/admin/audit")
	row := b.text(`tr[data-action="package.grant"]`)
	for _, want := range []string{"op@example.com", "granted 5000", "welcome, browser test"} {
		if !strings.Contains(row, want) {
			t.Fatalf("audit row of the grant: got %q, want %q in it", row, want)
		}
	}
	if row := b.text(`tr[data-action="cash.topup"]`); !strings.Contains(row, "unleased 12.500000") || !strings.Contains(row, "invoice 42") {
		t.Fatalf("audit row of the top-up: got %q", row)
	}
	b.screenshot("admin-audit-zh")

	// The backend's health, live.
	b.open("/console/admin/backends")
	b.waitJS("the backend's row", `document.querySelector('tr[data-backend="cloud"][data-circuit="closed"]')`)
	if got := b.text(`tr[data-backend="cloud"] .health`); got != "正常" {
		t.Fatalf("backend health: got %q, want 正常", got)
	}
	b.waitJS("a live refresh", `document.getElementById('backends-live').hasAttribute('data-refreshed')`)
	b.screenshot("admin-backends-zh")
	b.open("/console/admin/prices")
	b.screenshot("admin-prices-zh")
	b.open("/console/admin/logs")
	b.waitJS("the call in the request log", `document.querySelector('#logs tr[data-request]')`)
	b.screenshot("admin-logs-zh")

	b.open("/console/admin/accounts?lang=en")
	b.screenshot("admin-accounts-en")
	for _, p := range []struct{ path, name string }{{"/console/admin/accounts/default", "admin-account-en"},
		{"/console/admin/audit", "admin-audit-en"}, {"/console/admin/backends", "admin-backends-en"},
		{"/console/admin/prices", "admin-prices-en"}, {"/console/admin/logs", "admin-logs-en"}} {
		b.open(p.path)
		b.screenshot(p.name)
		if p.name == "admin-backends-en" {
			if got := b.text(`tr[data-backend="cloud"] .health`); got != "Up" {
				t.Fatalf("backend health in English: got %q, want Up", got)
			}
		}
	}
	b.open("/console/keys?lang=zh")
	b.signOut()

	// An owner does not see the operator's pages.
	b.signIn("owner@example.com", ownerPW)
	b.open("/console/admin/accounts")
	if got := b.text("#error-message"); got != "页面不存在" {
		t.Fatalf("owner opening the operator's pages: got %q, want the 404 page's 页面不存在", got)
	}
}

// value is an input's current value.
func (b *browser) value(sel string) string {
	b.t.Helper()
	var v string
	b.run(chromedp.Value(sel, &v, chromedp.ByQuery))
	return v
}
