package anthropic

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// env is the Messages API on loopback in front of the real parts: a
// SQLite file, auth, the request-log batcher, the router, the metered
// call, and the scripted Zhipu cloud as the only stand-in.
type env struct {
	t     *testing.T
	up    *zhipuaitest.Server
	store *store.SQL
	log   *requestlog.Batcher
	http  *httptest.Server
	key   platform.Key
	// bill and eng are the real billing engine on its own SQLite file,
	// the call's Meter when newEnv was asked for it.
	bill *billing.Store
	eng  *billing.Engine
}

// envOpts choose the limiter and whether the real billing engine meters.
type envOpts struct {
	limiter platform.Limiter
	billing bool
	// upstream, when set, is the zhipu backend's base URL instead of the
	// scripted fake's.
	upstream string
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, up: zhipuaitest.NewServer()}
	t.Cleanup(e.up.Close)
	s, err := store.Open(ctx, filepath.Join(t.TempDir(), "glm.db"), store.Options{MasterKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
	if err := s.CreateAccount(ctx, platform.Account{ID: "acct-1", Name: "default", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	e.key, _ = platform.NewKey("acct-1", "test", time.Now())
	if err := s.CreateKey(ctx, e.key); err != nil {
		t.Fatal(err)
	}
	backends, err := router.New(ctx, router.Config{Backends: []router.BackendConfig{
		{Name: "cloud", Type: router.TypeZhipu, BaseURL: cmp.Or(o.upstream, e.up.URL()), APIKey: e.up.APIKey}}})
	if err != nil {
		t.Fatal(err)
	}
	e.log = requestlog.New(s, requestlog.Options{Interval: 10 * time.Millisecond})
	var meter platform.Meter
	if o.billing {
		db, err := store.OpenDB(ctx, filepath.Join(t.TempDir(), "billing.db"))
		if err != nil {
			t.Fatal(err)
		}
		// Manual: the test flushes usage rows itself.
		if e.eng, err = billing.NewEngine(ctx, ledger.New(db), billing.Config{Manual: true}); err != nil {
			t.Fatal(err)
		}
		e.bill = billing.NewStore(ledger.New(db), time.Now)
		meter = billing.Meter{Engine: e.eng}
		t.Cleanup(func() {
			_ = e.eng.Close(context.Background())
			db.Close()
		})
	}
	calls := metered.New(metered.Options{Backend: backends, Catalogue: backends, Log: e.log, Limiter: o.limiter, Meter: meter,
		Trace: func(ctx context.Context) (context.Context, func() string) {
			ctx, tr := router.WithTrace(ctx)
			return ctx, func() string { return tr.Backend }
		}})
	models := &Models{Catalogue: backends, Default: "glm-4",
		Mappings: []Mapping{{Pattern: "claude-haiku-*", Model: "glm-4-flash"}, {Pattern: "claude-vision-*", Model: "glm-4v-plus"}}}
	api := New(Options{Models: models, Auth: auth.New(s, auth.Options{}), Calls: calls,
		Prefixes: []string{DefaultPrefix, "/custom"}, Registerer: prometheus.NewRegistry()})
	root := mux.New(nil)
	root.Mount(api)
	e.http = httptest.NewServer(root)
	t.Cleanup(func() {
		e.http.Close()
		_ = e.log.Close(context.Background())
		s.Close()
	})
	return e
}

// post sends body with the key in x-api-key and anthropic-version
// 2023-06-01 (older SDKs), or with hdr's headers instead.
func (e *env) post(path, body string, hdr ...string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.http.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if len(hdr) == 0 {
		hdr = []string{"x-api-key", e.key.Full(), "anthropic-version", "2023-06-01"}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// row returns the request-log row of the request id.
func (e *env) row(id string) platform.RequestLog {
	e.t.Helper()
	if err := e.log.Flush(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	rows, err := e.store.ListRequestLogs(context.Background(), platform.RequestLogFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rows {
		if r.ID == id {
			return r
		}
	}
	e.t.Fatalf("no request-log row %s among %d", id, len(rows))
	return platform.RequestLog{}
}

func wantAnthropicError(t *testing.T, resp *http.Response, status int, typ, code string) {
	t.Helper()
	b := readAll(t, resp)
	var env ErrorEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("body %s: %v", b, err)
	}
	if resp.StatusCode != status || env.Type != "error" || env.Error.Type != typ ||
		!strings.Contains(env.Error.Message, "V4 code "+code) || resp.Header.Get("request-id") == "" {
		t.Fatalf("got %d %s, want %d %s carrying V4 code %s and a request-id header", resp.StatusCode, b, status, typ, code)
	}
}

const hello = `{"model":"claude-sonnet-4-5","max_tokens":64000,"messages":[{"role":"user","content":"你好"}]}`

func TestMessageSyncMeteredAndLogged(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Enqueue(zhipuaitest.Text("你好！").WithUsage(11, 7))
	resp := e.post(DefaultPrefix+"/v1/messages", hello)
	b := readAll(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var msg Message
	if err := json.Unmarshal(b, &msg); err != nil {
		t.Fatal(err)
	}
	if msg.Type != "message" || msg.Model != "claude-sonnet-4-5" || len(msg.Content) != 1 || msg.Content[0].Text != "你好！" ||
		*msg.StopReason != StopEndTurn || msg.Usage != (Usage{InputTokens: 11, OutputTokens: 7}) {
		t.Fatalf("reply %s", b)
	}
	up := e.up.Requests()[0].Chat
	if up.Model != "glm-4" || up.MaxTokens == nil || *up.MaxTokens != 8192 {
		t.Errorf("upstream got model %s max_tokens %v; want glm-4 (claude-* default) and max_tokens fitted to glm-4's 8192", up.Model, up.MaxTokens)
	}
	r := e.row(resp.Header.Get("X-Request-Id"))
	if r.Endpoint != EndpointMessages || r.Model != "glm-4" || r.Usage.PromptTokens != 11 || r.Usage.CompletionTokens != 7 ||
		r.HTTPStatus != 200 || r.Backend != "cloud" || r.AccountID != "acct-1" {
		t.Errorf("row %+v, want anthropic.messages on glm-4 with 11+7 tokens from backend cloud", r)
	}
}

func TestBearerAndNewVersionAndCustomPrefix(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Enqueue(zhipuaitest.Text("ok").WithUsage(3, 1))
	resp := e.post("/custom/v1/messages", hello, "Authorization", "Bearer "+e.key.Full(), "anthropic-version", "2026-10-21")
	if b := readAll(t, resp); resp.StatusCode != 200 {
		t.Fatalf("Bearer key with anthropic-version 2026-10-21 under /custom: %d %s", resp.StatusCode, b)
	}
}

func TestAuthErrors(t *testing.T) {
	e := newEnv(t, envOpts{})
	wantAnthropicError(t, e.post(DefaultPrefix+"/v1/messages", hello, "anthropic-version", "2023-06-01"), 401, ErrAuthentication, "1001")
	bad := "ffffffffffffffffffffffffffffffff.NoSuchSecret0000"
	wantAnthropicError(t, e.post(DefaultPrefix+"/v1/messages", hello, "x-api-key", bad), 401, ErrAuthentication, "1002")
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests, want none", n)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, envOpts{})
	cases := []struct{ name, body, code string }{
		{"not json", `{"model":`, "1210"},
		{"no max_tokens", `{"model":"claude-x","messages":[{"role":"user","content":"x"}]}`, "1213"},
		{"unknown model", `{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "1211"},
		{"embedding model", `{"model":"embedding-2","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, "1212"},
		{"temperature out of range", `{"model":"glm-4","max_tokens":5,"temperature":1.5,"messages":[{"role":"user","content":"x"}]}`, "1214"},
		{"two stop sequences", `{"model":"glm-4","max_tokens":5,"stop_sequences":["a","b"],"messages":[{"role":"user","content":"x"}]}`, "1214"},
		{"image on a text model", `{"model":"glm-4","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}`, "1214"},
		{"no messages", `{"model":"glm-4","max_tokens":5,"messages":[]}`, "1213"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantAnthropicError(t, e.post(DefaultPrefix+"/v1/messages", c.body), 400, ErrInvalidRequest, c.code)
		})
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("upstream saw %d requests, want none", n)
	}
}

func TestCountTokensAndModels(t *testing.T) {
	e := newEnv(t, envOpts{})
	resp := e.post(DefaultPrefix+"/v1/messages/count_tokens", `{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"北京今天天气怎么样？"}]}`)
	b := readAll(t, resp)
	var ct CountTokensReply
	if err := json.Unmarshal(b, &ct); err != nil || resp.StatusCode != 200 || ct.InputTokens <= 0 {
		t.Fatalf("count_tokens: %d %s", resp.StatusCode, b)
	}
	want := platform.EstimateChatPromptTokens(&zhipuai.ChatCompletionRequest{Model: "glm-4-flash",
		Messages: []zhipuai.Message{zhipuai.UserMessage("北京今天天气怎么样？")}})
	if ct.InputTokens != want {
		t.Errorf("input_tokens %d, want the reservation's estimate %d", ct.InputTokens, want)
	}
	r := e.row(resp.Header.Get("X-Request-Id"))
	if r.Endpoint != EndpointCountTokens || r.Model != "glm-4-flash" || r.Usage.TotalTokens != 0 {
		t.Errorf("row %+v, want anthropic.count_tokens on glm-4-flash, no tokens used", r)
	}

	req, _ := http.NewRequest("GET", e.http.URL+DefaultPrefix+"/v1/models", nil)
	req.Header.Set("x-api-key", e.key.Full())
	mr, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list ModelList
	if err := json.Unmarshal(readAll(t, mr), &list); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, m := range list.Data {
		ids[m.ID] = m.DisplayName
	}
	if ids["claude-haiku-*"] != "claude-haiku-* → glm-4-flash" || ids["claude-*"] != "claude-* → glm-4" || ids["glm-4"] == "" || ids["embedding-2"] != "" {
		t.Errorf("models %v: want the mappings, the claude-* default and the chat models only", ids)
	}
}

// event is one parsed SSE event.
type event struct {
	name string
	data map[string]any
}

func readEvents(t *testing.T, resp *http.Response) []event {
	t.Helper()
	defer resp.Body.Close()
	var out []event
	sc := bufio.NewScanner(resp.Body)
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			var d map[string]any
			if err := json.Unmarshal([]byte(line[len("data: "):]), &d); err != nil {
				t.Fatalf("data %s: %v", line, err)
			}
			if d["type"] != name {
				t.Fatalf("event %s carries type %v", name, d["type"])
			}
			out = append(out, event{name, d})
		}
	}
	return out
}

func TestStreamToolUseMeteredAndLogged(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Enqueue(zhipuaitest.ToolCalls(zhipuai.ToolCall{ID: "call_7", Function: zhipuai.FunctionCall{Name: "get_weather", Arguments: `{"location":"北京"}`}}).WithUsage(20, 9))
	body := `{"model":"claude-opus-4-1","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"天气"}],
		"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}]}`
	resp := e.post(DefaultPrefix+"/v1/messages", body)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, ct)
	}
	events := readEvents(t, resp)
	var names []string
	var args string
	for _, ev := range events {
		names = append(names, ev.name)
		if ev.name == EventBlockDelta {
			d := ev.data["delta"].(map[string]any)
			if d["type"] == "input_json_delta" {
				args += d["partial_json"].(string)
			}
		}
	}
	got := strings.Join(names, " ")
	if !strings.HasPrefix(got, "message_start ping content_block_start") || !strings.HasSuffix(got, "content_block_stop message_delta message_stop") {
		t.Fatalf("events %s", got)
	}
	if args != `{"location":"北京"}` {
		t.Errorf("input_json_delta pieces join to %q", args)
	}
	md := events[len(events)-2].data
	usage := md["usage"].(map[string]any)
	if md["delta"].(map[string]any)["stop_reason"] != StopToolUse || usage["input_tokens"] != 20.0 || usage["output_tokens"] != 9.0 {
		t.Errorf("message_delta %v, want tool_use and usage 20+9", md)
	}
	r := e.row(resp.Header.Get("X-Request-Id"))
	if r.Endpoint != EndpointMessages || !r.Stream || r.Usage.PromptTokens != 20 || r.Usage.CompletionTokens != 9 || r.Estimated {
		t.Errorf("row %+v, want a stream row with the reported 20+9 tokens", r)
	}
	if up := e.up.Requests()[0].Chat; len(up.Tools) != 1 || up.Tools[0].Function.Name != "get_weather" || !up.Stream {
		t.Errorf("upstream request %+v", up)
	}
}

func TestStreamCutAfterFirstByteIsErrorEvent(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Enqueue(zhipuaitest.InBandError("1234", "upstream broke").WithChunks("一二", "三四", "五六"))
	resp := e.post(DefaultPrefix+"/v1/messages", `{"model":"glm-4","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"数数"}]}`)
	events := readEvents(t, resp)
	last := events[len(events)-1]
	if last.name != EventError {
		t.Fatalf("last event %s, want error", last.name)
	}
	if et := last.data["error"].(map[string]any)["type"]; et != ErrAPI {
		t.Errorf("error event type %v, want api_error", et)
	}
	r := e.row(resp.Header.Get("X-Request-Id"))
	if r.ErrorCode == "" || r.HTTPStatus != 200 {
		t.Errorf("row %+v, want status 200 with the error code of the cut", r)
	}
}

// An account without credit is refused with 1113 before any upstream
// call, as a rate_limit_error; after a top-up the same request is billed
// on the usage the client was told.
func TestExhaustedAccountThenBilled(t *testing.T) {
	e := newEnv(t, envOpts{billing: true})
	wantAnthropicError(t, e.post(DefaultPrefix+"/v1/messages", hello), 429, ErrRateLimit, "1113")
	if n := len(e.up.Requests()); n != 0 {
		t.Fatalf("upstream saw %d requests, want none", n)
	}
	if _, err := e.bill.TopUp(context.Background(), "acct-1", billing.MicrosPerCNY, "test"); err != nil {
		t.Fatal(err)
	}
	e.up.Enqueue(zhipuaitest.Text("好").WithUsage(11, 7))
	resp := e.post(DefaultPrefix+"/v1/messages", `{"model":"glm-4","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	events := readEvents(t, resp)
	usage := events[len(events)-2].data["usage"].(map[string]any)
	if err := e.eng.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := e.bill.ListUsage(context.Background(), billing.UsageFilter{AccountID: "acct-1"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Request-Id")
	for _, r := range rows {
		if r.RequestID != id {
			continue
		}
		if float64(r.PromptTokens) != usage["input_tokens"] || float64(r.CompletionTokens) != usage["output_tokens"] || r.Amount <= 0 {
			t.Fatalf("usage row %+v, want the streamed usage %v and a charge", r, usage)
		}
		return
	}
	t.Fatalf("no usage row for %s among %d", id, len(rows))
}

func TestConcurrencyLimitIsRateLimitError(t *testing.T) {
	lim := limits.New(limits.Config{Accounts: map[string]limits.Rule{"acct-1": {MaxConcurrent: 1}}})
	e := newEnv(t, envOpts{limiter: lim})
	e.up.Enqueue(zhipuaitest.Text("slow").WithUsage(1, 1).WithDelay(2 * time.Second))
	done := make(chan struct{})
	go func() {
		defer close(done)
		readAll(t, e.post(DefaultPrefix+"/v1/messages", hello))
	}()
	waitFor(t, "the first request to reach the upstream", func() bool { return len(e.up.Requests()) == 1 })
	wantAnthropicError(t, e.post(DefaultPrefix+"/v1/messages", hello), 429, ErrRateLimit, "1302")
	<-done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that leaves mid-stream cancels the upstream; the request is
// logged once as abandoned (499) with the stated estimate.
func TestStreamClientGone(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.up.Enqueue(zhipuaitest.Text("一二三四五六七八").WithChunks("一二", "三四", "五六", "七八").WithDelay(300 * time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.http.URL+DefaultPrefix+"/v1/messages",
		strings.NewReader(`{"model":"glm-4","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"数数"}]}`))
	req.Header.Set("x-api-key", e.key.Full())
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Request-Id")
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "text_delta") {
			break
		}
	}
	cancel()
	resp.Body.Close()
	var r platform.RequestLog
	waitFor(t, "the abandoned stream's row", func() bool {
		if err := e.log.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		rows, err := e.store.ListRequestLogs(context.Background(), platform.RequestLogFilter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			if row.ID == id {
				r = row
				return true
			}
		}
		return false
	})
	if r.HTTPStatus != 499 || !r.Estimated || r.Usage.PromptTokens == 0 {
		t.Errorf("row %+v, want 499 with an estimated usage", r)
	}
}
