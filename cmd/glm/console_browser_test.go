package main

// The console in a real browser: Debian's headless Chromium driven with
// chromedp against glm serve started in-process, the Go SDK calling the
// API with a key made in the console, and the glm CLI (the built binary)
// as the reference for bills. Screenshots of every page in zh and en are
// written to docs/screenshots with GLMKIT_UPDATE_SCREENSHOTS=1 (to a
// temporary folder otherwise).

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// chromium finds Debian's Chromium. Without it the test skips, unless
// GLMKIT_REQUIRE_CHROMIUM=1 (set by ./scripts/test, which installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("GLMKIT_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("chromium is not installed but GLMKIT_REQUIRE_CHROMIUM=1: ./scripts/deps installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium, or run ./scripts/test): skipping the browser tests")
	return ""
}

// runGLMStdin runs the built glm with stdin.
func runGLMStdin(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(glmBinary(t), args...)
	cmd.Env = append(os.Environ(), "GLMKIT_HOME=", "GLMKIT_MASTER_KEY=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("glm %v: %v: %s", args, err, out)
	}
	return string(out)
}

type browser struct {
	t    *testing.T
	ctx  context.Context
	base string
	shot string // screenshot folder
}

// run runs actions, again when a node they found was replaced before they
// used it: the console's live pages swap their tables every few seconds,
// and a query that lands between the lookup and the use gets "No node
// with given id found". The actions here are lookups, clicks on elements
// that are still there, and reads — safe to repeat when they did not act.
func (b *browser) run(actions ...chromedp.Action) {
	b.t.Helper()
	var err error
	for range 5 {
		if err = chromedp.Run(b.ctx, actions...); err == nil || !strings.Contains(err.Error(), "No node with given id") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	var s string
	b.run(chromedp.Text(sel, &s, chromedp.ByQuery))
	return strings.TrimSpace(s)
}

// eval runs JS (awaiting a promise) and decodes its value into v.
func (b *browser) eval(js string, v any) {
	b.t.Helper()
	b.run(chromedp.Evaluate(js, v, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
}

// waitJS polls a JS condition until it is true, within a generous bound.
func (b *browser) waitJS(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		b.eval("!!("+cond+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			var html string
			b.run(chromedp.OuterHTML("main", &html, chromedp.ByQuery))
			b.t.Fatalf("%s: got no change within 60s, want %s; page:\n%.3000s", what, cond, html)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.run(chromedp.Navigate(b.base+path), chromedp.WaitReady("footer", chromedp.ByQuery))
}

func (b *browser) screenshot(name string) {
	b.t.Helper()
	// A page still loading has no layout yet ("Cannot take screenshot
	// with 0 width"): wait until it has one.
	b.waitJS("a laid-out page for "+name, `document.readyState === 'complete' && document.documentElement.scrollWidth > 0`)
	var png []byte
	b.run(chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) signIn(email, pw string) {
	b.t.Helper()
	b.open("/console/")
	b.run(chromedp.SetValue("#email", email, chromedp.ByQuery), chromedp.SetValue("#password", pw, chromedp.ByQuery),
		chromedp.Submit("#signin", chromedp.ByQuery), chromedp.WaitReady("body", chromedp.ByQuery))
}

func (b *browser) signOut() {
	b.t.Helper()
	b.run(chromedp.Click("#signout", chromedp.ByQuery), chromedp.WaitVisible("#signin", chromedp.ByQuery))
}

func (b *browser) location() string {
	b.t.Helper()
	var u string
	b.run(chromedp.Location(&u))
	return strings.TrimPrefix(u, b.base)
}

func TestConsoleInChromium(t *testing.T) {
	exe := chromium(t)
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := startInProcess(t, data, writeConfig(t, dir, up))
	runGLMStdin(t, ownerPW, "users", "create", "owner@example.com", "--account", "default", "--role", "owner", "--password-stdin", "--data-dir", data)
	runGLMStdin(t, "", "accounts", "create", "other", "--data-dir", data)
	runGLMStdin(t, memberPW, "users", "create", "member@example.com", "--account", "other", "--role", "member", "--password-stdin", "--data-dir", data)

	shots := t.TempDir()
	if os.Getenv("GLMKIT_UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1100, 800))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	bctx, cancelT := context.WithTimeout(bctx, 5*time.Minute)
	defer cancelT()
	sc := &scenario{t: t, b: &browser{t: t, ctx: bctx, base: s.base, shot: shots}, up: up, data: data, base: s.base}
	sc.keysAndLiveUsage()
	sc.billsMatchCLI()
	sc.forgedPostAndRevoke()
	sc.englishPages()
	sc.memberAndRateLimit()
}

// Passwords of the scenario's users.
const ownerPW, memberPW = "owner-pass-1", "member-pass-1"

// scenario is the browser test's state from one step to the next.
type scenario struct {
	t          *testing.T
	b          *browser
	up         *zhipuaitest.Server
	data, base string
	id, secret string       // the key created in the console
	chat       func() error // one chat through the SDK with that key
	month      string
}

// keysAndLiveUsage signs in, creates a key, calls the API with it and watches the keys and usage pages change live.
func (sc *scenario) keysAndLiveUsage() {
	t, b, up := sc.t, sc.b, sc.up
	// / redirects to the sign-in page.
	b.open("/")
	if got := b.location(); !strings.HasPrefix(got, "/console/") {
		t.Fatalf("/ led to %s, want /console/", got)
	}
	b.screenshot("signin-zh")
	b.signIn("owner@example.com", ownerPW)
	if got := b.location(); got != "/console/keys" {
		t.Fatalf("after sign-in got %s, want /console/keys", got)
	}

	// Create a key: the full key once, then only masked.
	b.run(chromedp.Click("#add-key", chromedp.ByQuery), chromedp.SetValue("#key-name", "browser", chromedp.ByQuery),
		chromedp.Submit("#create-key", chromedp.ByQuery), chromedp.WaitVisible("#fullkey", chromedp.ByQuery))
	full := b.text("#fullkey")
	if !regexp.MustCompile(`^[0-9a-f]{32}\.[A-Za-z0-9]{16}$`).MatchString(full) {
		t.Fatalf("got new key %q, want id.secret", full)
	}
	b.screenshot("keys-created-zh")
	id, secret, _ := strings.Cut(full, ".")
	b.open("/console/keys")
	var page string
	b.run(chromedp.OuterHTML("html", &page, chromedp.ByQuery))
	if strings.Contains(page, secret) {
		t.Fatal("the keys page shows the secret after creation, want it masked")
	}
	if got, want := b.text(`tr[data-key="`+id+`"] .masked`), id[:4]+"..."+secret[12:]; got != want {
		t.Fatalf("got masked key %q, want %q", got, want)
	}

	// Call the API with it through the SDK; "last used" changes without a
	// reload (the marker set on the page survives).
	client, err := zhipuai.NewClient(zhipuai.WithAPIKey(full), zhipuai.WithBaseURL(sc.base+"/api/paas/v4/"), zhipuai.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	chat := func() error {
		_, err := client.Chat.Completions.Create(context.Background(), &zhipuai.ChatCompletionRequest{Model: "glm-4",
			Messages: []zhipuai.Message{zhipuai.UserMessage("hello")}})
		return err
	}
	b.eval("window.__noReload = 1", nil)
	up.Enqueue(zhipuaitest.Text("hi").WithUsage(1200, 300))
	if err := chat(); err != nil {
		t.Fatalf("SDK chat with the console's key: %v", err)
	}
	b.waitJS("last used", `document.querySelector('tr[data-key="`+id+`"] .last-used').textContent.trim() !== "未使用" && window.__noReload === 1`)
	b.screenshot("keys-zh")
	// The same page at phone width.
	b.run(chromedp.EmulateViewport(390, 844))
	b.screenshot("keys-phone-zh")
	b.run(chromedp.EmulateViewport(1100, 800))

	// The usage page: the chart and the recent requests change live.
	b.open("/console/usage")
	b.run(chromedp.WaitVisible("#chart-tokens", chromedp.ByQuery))
	var chartBefore string
	b.eval(`document.querySelector("#chart-tokens svg").outerHTML`, &chartBefore)
	b.eval("window.__noReload = 1", nil)
	up.Enqueue(zhipuaitest.Text("hi again").WithUsage(800, 200))
	if err := chat(); err != nil {
		t.Fatal(err)
	}
	b.waitJS("usage chart", `window.__noReload === 1 && document.querySelector("#chart-tokens svg").outerHTML !== `+jsString(chartBefore)+
		` && document.querySelectorAll("#recent tr[data-request]").length >= 2`)
	b.screenshot("usage-zh")
	sc.id, sc.secret, sc.chat = id, secret, chat
}

// billsMatchCLI checks the bills page and its export against the glm CLI.
func (sc *scenario) billsMatchCLI() {
	t, b, data := sc.t, sc.b, sc.data
	// Bills: the page's totals are glm bills --json's; the export is glm
	// bills --csv, byte for byte.
	month := time.Now().In(billing.BillingZone).Format("2006-01")
	var bills []billing.Bill
	if err := json.Unmarshal([]byte(runGLMStdin(t, "", "bills", "--json", "--account", "default", "--data-dir", data)), &bills); err != nil {
		t.Fatal(err)
	}
	b.open("/console/bills")
	b.screenshot("bills-zh")
	row := `#bills tr[data-month="` + month + `"] `
	for _, c := range []struct {
		sel  string
		want billing.Micros
	}{{".total", bills[0].Totals.Total}, {".payable", bills[0].Totals.Payable}, {".discount", bills[0].Totals.Discount}} {
		if got := b.text(row + c.sel); got != "¥ "+c.want.String() {
			t.Errorf("bills %s: got %q, want %q (glm bills --json)", c.sel, got, "¥ "+c.want.String())
		}
	}
	if bills[0].Totals.Total == 0 || bills[0].Totals.Requests != 2 {
		t.Fatalf("glm bills --json: got %+v, want two priced requests", bills[0].Totals)
	}
	b.open("/console/bills?month=" + month)
	b.screenshot("bill-detail-zh")
	if got, want := b.text("#bill-totals .total"), "¥ "+bills[0].Totals.Total.String(); got != want {
		t.Errorf("bill detail total: got %q, want %q", got, want)
	}
	var csvGot string
	b.eval(`fetch("/console/bills/export?month=`+month+`").then(r => r.text())`, &csvGot)
	csvWant := runGLMStdin(t, "", "bills", "--month", month, "--csv", "--account", "default", "--data-dir", data)
	if csvGot != csvWant {
		t.Fatalf("console export:\n%s\nwant glm bills --csv:\n%s", csvGot, csvWant)
	}
	sc.month = month
}

// forgedPostAndRevoke sends a POST without csrf_token, then revokes the key through the confirmation page.
func (sc *scenario) forgedPostAndRevoke() {
	t, b, id := sc.t, sc.b, sc.id
	// A POST without csrf_token is refused and creates nothing.
	var forged int
	b.eval(`fetch("/console/keys", {method: "POST", body: new URLSearchParams({name: "forged"})}).then(r => r.status)`, &forged)
	if forged != 403 {
		t.Fatalf("forged POST: got %d, want 403", forged)
	}
	b.open("/console/keys")
	var page string
	b.run(chromedp.OuterHTML("#keys", &page, chromedp.ByQuery))
	if strings.Contains(page, "forged") {
		t.Fatal("a forged POST created a key")
	}

	// Revoke with confirmation; the SDK then gets 401.
	b.run(chromedp.Click(`tr[data-key="`+id+`"] a.danger`, chromedp.ByQuery), chromedp.WaitVisible("#revoke-confirm", chromedp.ByQuery))
	b.screenshot("revoke-zh")
	b.run(chromedp.Click("#revoke-confirm", chromedp.ByQuery), chromedp.WaitVisible("#keys", chromedp.ByQuery))
	var n int
	b.eval(`document.querySelectorAll('tr[data-key="`+id+`"]').length`, &n)
	if n != 0 {
		t.Fatal("the revoked key is still listed")
	}
	var apiErr *zhipuai.APIError
	if err := sc.chat(); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("SDK after revoke: got %v, want a 401 APIError", err)
	}
}

// englishPages screenshots every page in English, then signs out.
func (sc *scenario) englishPages() {
	t, b := sc.t, sc.b
	// Every page in English (the switch is kept in a cookie).
	b.open("/console/packages")
	b.screenshot("packages-zh")
	b.open("/console/password")
	b.screenshot("password-zh")
	b.open("/console/keys?lang=en")
	b.screenshot("keys-en")
	for _, p := range []struct{ path, name string }{{"/console/packages", "packages-en"}, {"/console/bills", "bills-en"},
		{"/console/bills?month=" + sc.month, "bill-detail-en"}, {"/console/usage", "usage-en"}, {"/console/password", "password-en"}} {
		b.open(p.path)
		b.screenshot(p.name)
	}
	if got := b.text("h1"); got != "Change password" {
		t.Fatalf("English page heading: got %q", got)
	}
	b.open("/console/keys?lang=zh")
	b.signOut()
	b.open("/console/?lang=en")
	b.screenshot("signin-en")
}

// memberAndRateLimit keeps a member out of another account, then trips the sign-in rate limit.
func (sc *scenario) memberAndRateLimit() {
	t, b := sc.t, sc.b
	// A member sees only its own account: another account's pages are 404,
	// and it cannot create keys.
	b.signIn("member@example.com", memberPW)
	b.open("/console/keys?account=default")
	b.screenshot("error-en")
	if got := b.text("#error-message"); got != "No such page" {
		t.Fatalf("member on another account: got %q, want the 404 page", got)
	}
	b.open("/console/keys")
	var status int
	b.eval(`fetch("/console/keys", {method: "POST", body: new URLSearchParams({name: "x",
		csrf_token: document.querySelector('input[name=csrf_token]').value})}).then(r => r.status)`, &status)
	if status != 403 {
		t.Fatalf("member creating a key: got %d, want 403", status)
	}
	b.open("/console/keys?lang=zh")
	b.screenshot("keys-member-zh")
	b.signOut()

	// Wrong passwords, repeatedly: rate-limited with a clear message.
	for i := 0; i < 5; i++ {
		b.signIn("owner@example.com", "wrong-password")
		if got := b.text("#signin-error"); got != "邮箱或密码错误" {
			t.Fatalf("attempt %d: got %q, want the wrong-password message", i+1, got)
		}
	}
	b.signIn("owner@example.com", ownerPW)
	if got := b.text("#signin-error"); !strings.Contains(got, "登录尝试过多") {
		t.Fatalf("after 5 failures: got %q, want the rate-limit message", got)
	}
	b.screenshot("signin-limited-zh")
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
