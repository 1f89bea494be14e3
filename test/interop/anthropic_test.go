package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// The Anthropic Messages endpoint under the real npm `@anthropic-ai/sdk`
// (anthropic.mjs): a glm serve of its own, so that its usage rows and bill
// hold exactly what these cases used, with two backends — the scripted
// Zhipu cloud reached through the out-of-the-box claude-* mapping, and a
// scripted vLLM-like engine behind an `openai` backend, which a
// --anthropic-model mapping sends claude-haiku-* to.

// anthropicCases are the cases anthropic.mjs runs; each must report once.
var anthropicCases = []string{
	"cloud/message", "cloud/legacy-key", "cloud/stream", "cloud/tools", "cloud/tools-stream",
	"cloud/count-tokens", "cloud/image", "cloud/bad-key", "cloud/arrears",
	"vllm/message", "vllm/stream", "vllm/tools", "vllm/tools-stream", "vllm/count-tokens",
}

// Served models of the Anthropic world and their prices (micros per 1K
// tokens): glm-4 and glm-4v at the shipped 0.1 CNY per 1K, the engine's
// model at the price the test sets.
const (
	vllmModel    = "glm-4.5-air"
	vllmUpstream = "zai-org/GLM-4.5-Air"
	vllmPrice    = "0.002"
)

var modelPrice = map[string]int64{"glm-4": 100_000, "glm-4v": 100_000, vllmModel: 2_000}

// anthropicEnv is one world: both upstreams and a glm serve in front.
type anthropicEnv struct {
	name     string
	cloud    *zhipuaitest.Server
	engine   *httptest.Server
	serve    *serveProc
	key      string
	brokeKey string
	dir      string
	dropDB   func()
	once     sync.Once
	err      error
}

var (
	anthropicSQLite   = &anthropicEnv{name: "anthropic-sqlite"}
	anthropicPostgres = &anthropicEnv{name: "anthropic-postgres"}
)

func (w *anthropicEnv) close(failed bool) {
	if w.serve != nil {
		w.serve.stop()
	}
	if w.cloud != nil {
		w.cloud.Close()
	}
	if w.engine != nil {
		w.engine.Close()
	}
	if w.dropDB != nil {
		w.dropDB()
	}
	if w.dir != "" && !failed {
		_ = os.RemoveAll(w.dir)
	} else if w.dir != "" {
		fmt.Fprintf(os.Stderr, "interop: kept %s (glm serve log: serve.log)\n", w.dir)
	}
}

func startAnthropic(t *testing.T, w *anthropicEnv, database func(dir string) (string, error)) *anthropicEnv {
	t.Helper()
	w.once.Do(func() {
		bin, err := glmBinary()
		if err != nil {
			w.err = err
			return
		}
		if w.dir, w.err = os.MkdirTemp("", "glmkit-interop-"+w.name+"-"); w.err != nil {
			return
		}
		db, err := database(w.dir)
		if err != nil {
			w.err = err
			return
		}
		w.cloud = zhipuaitest.NewServer()
		w.cloud.Handle(script)
		w.engine = httptest.NewServer(http.HandlerFunc(vllmEngine))
		// The price of the engine's model goes in before the server reads
		// the table; operator commands need the database made first.
		if out, err := glmCmd(bin, w.dir, "init", "--db", db, "--data-dir", w.dir).CombinedOutput(); err != nil {
			w.err = fmt.Errorf("glm init: %v\n%s", err, out)
			return
		}
		if out, err := glmCmd(bin, w.dir, "prices", "set", vllmModel, "--price", vllmPrice, "--db", db, "--data-dir", w.dir).CombinedOutput(); err != nil {
			w.err = fmt.Errorf("glm prices set: %v\n%s", err, out)
			return
		}
		cfg := map[string]any{"backends": []map[string]any{
			{"name": "fake-cloud", "type": "zhipu", "base_url": w.cloud.URL(), "api_key": w.cloud.APIKey, "models": []string{"glm-4", "glm-4v"}},
			{"name": "vllm", "type": "openai", "flavor": "vllm", "base_url": w.engine.URL + "/v1", "api_key": "engine-key",
				"models": []map[string]any{{"name": vllmModel, "upstream": vllmUpstream, "context_tokens": 128000, "max_output": 8192}}},
		}}
		w.serve, w.err = startServeWith(bin, w.dir, db, cfg,
			"--anthropic-model", "claude-haiku-*="+vllmModel, "--anthropic-model", "claude-opus-*=glm-4v")
		if w.err != nil {
			return
		}
		if w.key, w.err = w.serve.createKey("--name", "anthropic"); w.err != nil {
			return
		}
		w.brokeKey, w.err = w.serve.createBrokeKey()
	})
	if w.err != nil {
		msg := w.err.Error()
		if w.serve != nil {
			msg += "\n--- glm serve log (tail) ---\n" + w.serve.logTail(60)
		}
		t.Fatalf("interop setup (%s): %s", w.name, msg)
	}
	if d := w.serve.dataRaces(); d != "" {
		t.Fatalf("glm serve reported a data race:\n%s", d)
	}
	return w
}

func glmCmd(bin, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = glmEnv(dir)
	return cmd
}

func TestAnthropicSDKAgainstServe(t *testing.T) {
	requireInterop(t)
	w := startAnthropic(t, anthropicSQLite, func(dir string) (string, error) { return filepath.Join(dir, "glm.db"), nil })
	t.Cleanup(func() { w.close(t.Failed()) })
	runAnthropic(t, w)
}

func TestAnthropicSDKAgainstServePostgres(t *testing.T) {
	requireInterop(t)
	dsn := os.Getenv("GLMKIT_TEST_PG_DSN")
	if dsn == "" {
		t.Skip("GLMKIT_TEST_PG_DSN not set: skipping glm serve on PostgreSQL (./scripts/test sets it)")
	}
	w := startAnthropic(t, anthropicPostgres, func(string) (string, error) {
		db, drop, err := freshDatabase(dsn)
		anthropicPostgres.dropDB = drop
		return db, err
	})
	t.Cleanup(func() { w.close(t.Failed()) })
	runAnthropic(t, w)
}

// billedRequest is one request as the SDK reported it.
type billedRequest struct {
	Case       string `json:"-"`
	ID         string `json:"id"`
	Input      int64  `json:"input_tokens"`
	Output     int64  `json:"output_tokens"`
	CacheRead  int64  `json:"cache_read_input_tokens"`
	wantModel  string
	wantPrompt int64
}

func runAnthropic(t *testing.T, w *anthropicEnv) {
	results := runNodeScript(t, "anthropic.mjs", "BASE_URL=http://"+w.serve.addr+"/api/anthropic", "API_KEY="+w.key,
		"BROKE_KEY="+w.brokeKey, "ANTHROPIC_API_KEY=", "ANTHROPIC_AUTH_TOKEN=", "ANTHROPIC_BASE_URL=")
	var billed []billedRequest
	for _, name := range anthropicCases {
		t.Run(name, func(t *testing.T) {
			r, ok := results[name]
			if !ok {
				t.Fatalf("anthropic.mjs did not report case %s", name)
			}
			if !r.OK {
				t.Fatalf("%s failed: %s", name, r.Detail)
			}
			var d struct {
				Billed []billedRequest `json:"billed"`
			}
			if err := json.Unmarshal(r.Detail, &d); err != nil {
				t.Fatal(err)
			}
			model := "glm-4"
			switch {
			case strings.HasPrefix(name, "vllm/"):
				model = vllmModel
			case name == "cloud/image":
				model = "glm-4v"
			}
			for _, b := range d.Billed {
				b.Case, b.wantModel = name, model
				billed = append(billed, b)
			}
			t.Logf("ok in %d ms: %s", r.MS, r.Detail)
		})
	}
	for name := range results {
		if !slices.Contains(anthropicCases, name) {
			t.Errorf("anthropic.mjs reported an unknown case %q (add it to anthropicCases)", name)
		}
	}
	if t.Failed() {
		return
	}
	checkAnthropicUsage(t, w, billed)
	checkAnthropicBill(t, w, billed)
}

// usageRow is a row of `glm usage --json`.
type usageRow struct {
	RequestID        string `json:"request_id"`
	AccountID        string `json:"account_id"`
	Model            string `json:"model"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	Outcome          string `json:"outcome"`
	Estimated        bool   `json:"estimated"`
	Charge           struct {
		Amount    int64 `json:"amount"`
		Discount  int64 `json:"discount"`
		Cash      int64 `json:"cash"`
		Shortfall int64 `json:"shortfall"`
	} `json:"charge"`
}

// checkAnthropicUsage finds each billed request's usage row: the tokens
// the SDK reported (input + cache_read = the row's prompt tokens), the
// model it was mapped to, charged at that model's price.
func checkAnthropicUsage(t *testing.T, w *anthropicEnv, billed []billedRequest) {
	t.Helper()
	found := map[string]usageRow{}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := glmCmd(w.serve.bin, w.serve.dir, "usage", "--json", "--db", w.serve.db, "--data-dir", w.serve.dir).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("glm usage --json: %v\n%s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var rows []usageRow
		if err := json.Unmarshal(out, &rows); err != nil {
			t.Fatalf("glm usage --json output: %v\n%s", err, out)
		}
		for _, r := range rows {
			found[r.RequestID] = r
		}
		missing := 0
		for _, b := range billed {
			if _, ok := found[b.ID]; !ok {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond) // usage rows are written in batches
	}
	for _, b := range billed {
		r, ok := found[b.ID]
		if !ok {
			t.Errorf("%s: no usage row for request %s (waited 15s)", b.Case, b.ID)
			continue
		}
		if r.Model != b.wantModel || r.PromptTokens != b.Input+b.CacheRead || r.CompletionTokens != b.Output ||
			r.Outcome != "ok" || r.Estimated {
			t.Errorf("%s: usage row %+v, want model %s with the SDK's %d+%d (+%d cached) tokens, outcome ok", b.Case, r,
				b.wantModel, b.Input, b.Output, b.CacheRead)
		}
		price := modelPrice[b.wantModel]
		if want := ((b.Input+b.CacheRead+b.Output)*price + 999) / 1000; r.Charge.Amount != want {
			t.Errorf("%s: usage row amount %d micros, want %d", b.Case, r.Charge.Amount, want)
		}
		if r.Charge.Discount+r.Charge.Cash+r.Charge.Shortfall != r.Charge.Amount {
			t.Errorf("%s: parts %+v do not add up to the amount", b.Case, r.Charge)
		}
	}
}

// checkAnthropicBill checks this month's bill of the default account: per
// model, the requests and tokens are the sum of what the SDK reported.
func checkAnthropicBill(t *testing.T, w *anthropicEnv, billed []billedRequest) {
	t.Helper()
	month := time.Now().In(time.FixedZone("CST", 8*3600)).Format("2006-01")
	out, err := glmCmd(w.serve.bin, w.serve.dir, "bills", "--month", month, "--json", "--account", "default",
		"--db", w.serve.db, "--data-dir", w.serve.dir).Output()
	if err != nil {
		t.Fatalf("glm bills: %v", err)
	}
	var bill struct {
		Lines []struct {
			Model            string `json:"model"`
			Requests         int64  `json:"requests"`
			PromptTokens     int64  `json:"prompt_tokens"`
			CompletionTokens int64  `json:"completion_tokens"`
		} `json:"lines"`
	}
	if err := json.Unmarshal(out, &bill); err != nil {
		t.Fatalf("glm bills --json: %v\n%s", err, out)
	}
	type sum struct{ requests, prompt, completion int64 }
	want, got := map[string]sum{}, map[string]sum{}
	for _, b := range billed {
		s := want[b.wantModel]
		want[b.wantModel] = sum{s.requests + 1, s.prompt + b.Input + b.CacheRead, s.completion + b.Output}
	}
	for _, l := range bill.Lines {
		s := got[l.Model]
		got[l.Model] = sum{s.requests + l.Requests, s.prompt + l.PromptTokens, s.completion + l.CompletionTokens}
	}
	for m, ws := range want {
		if got[m] != ws {
			t.Errorf("bill %s, model %s: %+v, want %+v (the SDK's reports)", month, m, got[m], ws)
		}
	}
	t.Logf("bill %s: %s", month, out)
}
