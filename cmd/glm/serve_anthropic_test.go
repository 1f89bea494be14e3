package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// A mapping is applied by the served API: claude-haiku-* reaches the
// upstream as the mapped model, other claude-* names as the default, with
// the key in x-api-key.
func TestServeAnthropicMapping(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	s := startInProcess(t, filepath.Join(dir, "data"), writeConfig(t, dir, up),
		"--anthropic-model", "claude-haiku-*=glm-4-flash", "--anthropic-prefix", "/anthropic")
	up.Enqueue(zhipuaitest.Text("ok").WithUsage(3, 1).Times(2))
	for model, want := range map[string]string{"claude-haiku-4-5": "glm-4-flash", "claude-sonnet-4-5": "glm-4"} {
		req, _ := http.NewRequest("POST", s.base+"/anthropic/v1/messages",
			strings.NewReader(`{"model":"`+model+`","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("x-api-key", s.key)
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"model":"`+model+`"`) {
			t.Fatalf("%s: got %d %s, want 200 naming the model asked for", model, resp.StatusCode, b)
		}
		reqs := up.Requests()
		if got := reqs[len(reqs)-1].Chat.Model; got != want {
			t.Errorf("%s reached the upstream as %s, want %s", model, got, want)
		}
	}
}

// Bad Anthropic flags are refused in the flags' own words, before or at
// start.
func TestServeAnthropicBadFlags(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, up)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--anthropic-model", "claude-*"}, "--anthropic-model"},
		{[]string{"--anthropic-model", "claude-[*=glm-4"}, "bad pattern"},
		{[]string{"--anthropic-prefix", "anthropic"}, "--anthropic-prefix"},
		{[]string{"--anthropic-model", "claude-*=no-such-model"}, "no backend serves no-such-model"},
		{[]string{"--anthropic-default-model", "no-such-model"}, "--anthropic-default-model"},
	} {
		o := &serveOptions{}
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		o.register(fs)
		args := append([]string{"--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--config", cfg, "--log-level", "error"}, c.args...)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		app, err := newServeApp(o, io.Discard, io.Discard)
		if err == nil {
			err = app.Start(context.Background())
			app.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error naming %q", c.args, err, c.want)
		}
	}
}
