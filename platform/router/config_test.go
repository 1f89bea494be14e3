package router

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

const exampleConfig = `{
  "backends": [
    {
      "name": "zhipu-cloud",
      "type": "zhipu",
      "api_key_env": "UPSTREAM_KEY",
      "priority": 10,
      "timeout": "60s",
      "max_concurrency": 32,
      "models": ["glm-4", "glm-4-flash", "embedding-3"]
    },
    {
      "name": "vllm-local",
      "type": "openai",
      "flavor": "vllm",
      "base_url": "http://127.0.0.1:8000/v1",
      "weight": 2,
      "timeout": 30,
      "models": [
        {"name": "glm-4", "upstream": "THUDM/glm-4-9b-chat", "context_tokens": 131072},
        {"name": "glm-4-9b", "upstream": "THUDM/glm-4-9b-chat", "max_output": 4096},
        {"name": "bge-m3", "kind": "embedding", "dimensions": [1024], "context_tokens": 8192}
      ]
    }
  ],
  "circuit_breaker": {"failures": 3, "cooldown": "1m"},
  "builtin": {"aliases": ["embedding-2"]}
}`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "backends.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigExample(t *testing.T) {
	cfg, err := LoadConfig(writeFile(t, exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Backends) != 2 || cfg.Backends[0].Models[1].Name != "glm-4-flash" ||
		time.Duration(cfg.Backends[1].Timeout) != 30*time.Second || time.Duration(cfg.CircuitBreaker.Cooldown) != time.Minute {
		t.Fatalf("cfg %+v", cfg)
	}
	r, err := New(context.Background(), cfg, WithGetenv(func(k string) string {
		if k == "UPSTREAM_KEY" {
			return "abc.def"
		}
		return ""
	}))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := r.Model("glm-4")
	if g.ContextTokens != 131072 || g.OwnedBy != platform.OwnerZhipu {
		t.Fatalf("glm-4 %+v", g)
	}
	if len(r.routes["glm-4"].targets) != 2 || r.routes["glm-4"].targets[0].m.name != "zhipu-cloud" {
		t.Fatal("glm-4 should have the cloud first, vLLM second")
	}
	bge, ok := r.Model("bge-m3")
	if !ok || bge.Kind != platform.KindEmbedding || bge.DefaultDimensions() != 1024 || bge.OwnedBy != "glmkit" {
		t.Fatalf("bge-m3 %+v", bge)
	}
	if e3, _ := r.Model("embedding-3"); e3.DefaultDimensions() != 2048 {
		t.Fatalf("embedding-3 %+v", e3)
	}
	if _, ok := r.Model("embedding-2"); !ok {
		t.Fatal("builtin alias missing")
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := map[string]string{
		`{"backends":[{"name":"a","type":"zhipu","api_key":"k","prioirty":1}]}`:                                           `unknown field "prioirty"`,
		`{"backends":[{"name":"a","type":"zhipu"}]}`:                                                                      "needs api_key or api_key_env",
		`{"backends":[{"name":"a","type":"openai","models":["m"]}]}`:                                                      "base_url is required",
		`{"backends":[{"name":"a","type":"openai","base_url":"http://x/v1"}]}`:                                            "models is required",
		`{"backends":[{"name":"a","type":"vllm"}]}`:                                                                       `unknown type "vllm"`,
		`{"backends":[{"type":"zhipu"}]}`:                                                                                 "name is required",
		`{"backends":[{"name":"a","type":"zhipu","api_key":"k"},{"name":"a","type":"zhipu","api_key":"k"}]}`:              "duplicate name",
		`{"backends":[{"name":"a","type":"zhipu","api_key":"k","timeout":"soon"}]}`:                                       "duration",
		`{"backends":[{"name":"a","type":"openai","base_url":"http://x/v1","models":[{"name":"e","kind":"embedding"}]}]}`: "needs dimensions",
		`{"backends":[{"name":"a","type":"openai","base_url":"x:8000/v1","models":["m"]}]}`:                               "must start with http",
		`{"backends":[{"name":"a","type":"openai","base_url":"http://x/v1","flavor":"tgi","models":["m"]}]}`:              "unknown flavor",
		"{\n\"backends\": [\n{\"name\": \"a\",}\n]}":                                                                      "line 3",
		`{"backends":[{"name":"a","type":"builtin"}]}`:                                                                    "always present",
	}
	for in, want := range cases {
		_, err := LoadConfig(writeFile(t, in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n  error %v, want it to say %q", in, err, want)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "backend config") {
		t.Errorf("missing file: %v", err)
	}
	// An api_key_env that is empty fails at New, naming the variable only.
	cfg, err := ParseConfig([]byte(`{"backends":[{"name":"a","type":"zhipu","api_key_env":"NOPE_KEY"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg, WithGetenv(func(string) string { return "" }))
	if err == nil || !strings.Contains(err.Error(), "NOPE_KEY") {
		t.Fatalf("empty env: %v", err)
	}
}

func TestKindConflictIsAnError(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"backends":[
		{"name":"a","type":"openai","base_url":"http://x/v1","models":[{"name":"m","kind":"chat"}]},
		{"name":"b","type":"openai","base_url":"http://y/v1","models":[{"name":"m","kind":"embedding","dimensions":[8]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), `model "m"`) {
		t.Fatalf("kind conflict: %v", err)
	}
}

// A model whose kind its backend has no capability for is refused when
// the router is built, not at the first request.
func TestModelKindTheBackendCannotServe(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"backends":[
		{"name":"eng","type":"openai","base_url":"http://x/v1","models":[{"name":"pic","kind":"image"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), `model "pic": a openai backend cannot serve image models`) {
		t.Fatalf("got %v, want the image model refused for the openai backend", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if _, ok := ConfigFromEnv(get); ok {
		t.Fatal("no key, no config")
	}
	env[EnvAPIKey] = "id.secret"
	env[EnvBaseURL] = "https://example.test/api/paas/v4/"
	cfg, ok := ConfigFromEnv(get)
	if !ok || len(cfg.Backends) != 1 || cfg.Backends[0].Type != TypeZhipu || cfg.Backends[0].APIKey != "id.secret" ||
		cfg.Backends[0].BaseURL != env[EnvBaseURL] {
		t.Fatalf("cfg %+v", cfg)
	}
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range platform.ZhipuModels() {
		if _, ok := r.Model(m.ID); !ok {
			t.Fatalf("env config does not serve %s", m.ID)
		}
	}
}
