package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// parseServe parses serve flags and applies a --config file as the
// command does.
func parseServe(t *testing.T, args ...string) (*serveOptions, error) {
	t.Helper()
	o := &serveOptions{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return o, o.loadConfigFile()
}

// The commented example loads: its server settings become the flags'
// values, and a flag given on the command line wins.
func TestServeConfigFileExample(t *testing.T) {
	t.Setenv("ZHIPUAI_API_KEY", "id.secret")
	o, err := parseServe(t, "--config", "../../examples/serve.jsonc", "--workers", "2")
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8080" || o.adminAddr != "127.0.0.1:9090" || o.store.dataDir != "/var/lib/glmkit" ||
		o.taskRetention != 72*time.Hour || o.metering.welcomeTokens != 0 || len(o.prefixes) != 1 {
		t.Fatalf("settings from the file: got addr %q admin %q data %q task-retention %s welcome %d prefixes %v",
			o.addr, o.adminAddr, o.store.dataDir, o.taskRetention, o.metering.welcomeTokens, o.prefixes)
	}
	if o.workers != 2 {
		t.Fatalf("--workers 2 on the command line: got %d, want the flag to win over the file's 8", o.workers)
	}
	if len(o.loaded.Backends) != 2 || o.loaded.Backends[1].Name != "vllm-local" {
		t.Fatalf("backends: got %+v", o.loaded.Backends)
	}
}

func TestServeConfigFileRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ body, want string }{
		{`{"server":{"wokers":8}}`, "server.wokers is not a setting of glm serve"},
		{`{"server":{"config":"x"}}`, "server.config cannot be set in the file"},
		{`{"server":{"workers":"many"}}`, "server.workers"},
		{`{"server":{"prefix":[1]}}`, "want a list of strings"},
		{`{"servr":{}}`, `unknown field "servr"`},
		{"{\n  // a comment\n  \"server\": {\"addr\": \"x\"},,\n}", "line 3"},
	} {
		path := filepath.Join(dir, "c.json")
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := parseServe(t, "--config", path); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config %s: got %v, want an error with %q", c.body, err, c.want)
		}
	}
}
