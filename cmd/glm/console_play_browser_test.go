package main

// The playground and self-service sign-up in Debian's headless Chromium,
// against glm serve started in-process with --signup and the scripted
// cloud as the model: the answer grows on the page as it streams, the
// usage page then shows the request, and a visitor signs up and sees the
// trial package. Screenshots go where TestConsoleInChromium's go.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func TestConsolePlaygroundAndSignUpInChromium(t *testing.T) {
	exe := chromium(t)
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := startInProcess(t, data, writeConfig(t, dir, up), "--signup", "--signup-trial-tokens", "200000",
		"--signup-invite", "chromium-invite")
	runGLMStdin(t, ownerPW, "users", "create", "owner@example.com", "--account", "default", "--role", "owner", "--password-stdin", "--data-dir", data)

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

	b.signIn("owner@example.com", ownerPW)
	b.open("/console/playground")
	b.screenshot("playground-form-zh")

	// The answer streams in: a few pieces, each after a pause, so the page
	// shows part of it before the end.
	const answer = "流式回答：第一段，第二段，第三段。"
	up.Enqueue(zhipuaitest.Text(answer).WithChunks("流式回答：", "第一段，", "第二段，", "第三段。").
		WithDelay(700*time.Millisecond).WithUsage(20, 12))
	b.run(chromedp.SetValue("#play-message", "讲一个流式的回答", chromedp.ByQuery),
		chromedp.SetValue("#play-temperature", "0.7", chromedp.ByQuery),
		chromedp.Click("#play-send", chromedp.ByQuery))
	// The text is read in the page's own script: the node's text child is
	// replaced as it grows.
	b.waitJS("part of the answer", `(function(){ var a = document.querySelector("#play-answer");
		if (a.textContent.length > 0 && !a.hasAttribute("data-done")) { window.__partial = a.textContent; return true; }
		return false; })()`)
	var partial, got string
	b.eval(`window.__partial`, &partial)
	b.waitJS("the whole answer", `document.querySelector("#play-answer").hasAttribute("data-done")`)
	b.eval(`document.querySelector("#play-answer").textContent`, &got)
	if got != answer || len(partial) >= len(answer) || !strings.HasPrefix(answer, partial) {
		t.Fatalf("got partial %q then %q, want a growing prefix of %q", partial, got, answer)
	}
	var usageLine string
	b.eval(`document.querySelector("#play-usage").textContent`, &usageLine)
	if got := usageLine; !strings.Contains(got, "32") {
		t.Fatalf("got usage line %q, want the 32 tokens", got)
	}
	b.screenshot("playground-zh")
	var requestID string
	b.eval(`document.querySelector("#play-answer").getAttribute("data-done")`, &requestID)

	// The request is on the usage page like any other.
	b.open("/console/usage")
	b.waitJS("the playground's request on the usage page", `!!document.querySelector('#recent tr[data-request="`+requestID+`"]')`)

	// A bad temperature: the message next to the field, nothing sent.
	before := len(up.Requests())
	b.open("/console/playground")
	b.run(chromedp.SetValue("#play-message", "hi", chromedp.ByQuery), chromedp.SetValue("#play-temperature", "3", chromedp.ByQuery),
		chromedp.Click("#play-send", chromedp.ByQuery))
	b.waitJS("the temperature message", `!document.querySelector('p[data-for="temperature"]').hidden`)
	if got := b.text(`p[data-for="temperature"]`); got != "temperature 须在 0 到 1 之间" || len(up.Requests()) != before {
		t.Fatalf("temperature 3: got %q and %d upstream calls, want the message and none", got, len(up.Requests())-before)
	}
	b.open("/console/playground?lang=en")
	b.screenshot("playground-en")
	b.open("/console/keys?lang=zh")
	b.screenshot("keys-owner-switch-zh")
	b.signOut()

	// A visitor signs up and sees the trial package.
	// The sign-in page links to sign-up (read with a fresh page load, not
	// a click: the page the sign-out left may still be settling).
	b.open("/console/")
	var href string
	b.eval(`(document.querySelector("#to-signup") || {}).getAttribute ? document.querySelector("#to-signup").getAttribute("href") : ""`, &href)
	if href != "/console/signup" {
		t.Fatalf("sign-in page's sign-up link: got %q, want /console/signup", href)
	}
	b.open("/console/signup")
	b.screenshot("signup-zh")
	b.run(chromedp.SetValue("#signup-email", "visitor@example.com", chromedp.ByQuery),
		chromedp.SetValue("#signup-password", "visitor-pass-1", chromedp.ByQuery),
		chromedp.SetValue("#signup-invite", "wrong", chromedp.ByQuery),
		chromedp.Submit("#signup", chromedp.ByQuery), chromedp.WaitVisible("#invite-error", chromedp.ByQuery))
	if got := b.text("#invite-error"); got != "邀请码无效" {
		t.Fatalf("bad invite: got %q", got)
	}
	b.run(chromedp.SetValue("#signup-password", "visitor-pass-1", chromedp.ByQuery),
		chromedp.SetValue("#signup-invite", "chromium-invite", chromedp.ByQuery),
		chromedp.Submit("#signup", chromedp.ByQuery), chromedp.WaitVisible("#packages", chromedp.ByQuery))
	if got := b.location(); got != "/console/packages?welcome=1" {
		t.Fatalf("after sign-up got %s, want the packages page", got)
	}
	if got := b.text("#packages"); !strings.Contains(got, "体验资源包") || !strings.Contains(got, "200,000") || !strings.Contains(got, "生效中") {
		t.Fatalf("the new account's packages: got %q, want the active trial package of 200,000 tokens", got)
	}
	b.screenshot("signup-done-zh")
	b.signOut()
	b.open("/console/signup?lang=en")
	b.screenshot("signup-en")
}
