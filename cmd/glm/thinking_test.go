package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// thinkingSite is a glm serve in front of the scripted cloud and a
// vLLM-like engine serving a GLM-4.7 thinking model and a reranker, plus
// an Ollama-flavoured backend (which cannot count tokens).
type thinkingSite struct {
	up     *zhipuaitest.Server
	engine *zhipuaitest.Engine
	data   string
	cfg    string
	srv    *served
	client *zhipuai.Client
}

func newThinkingSite(t *testing.T) *thinkingSite {
	t.Helper()
	s := &thinkingSite{up: zhipuaitest.NewServer(), engine: zhipuaitest.NewEngine()}
	t.Cleanup(s.up.Close)
	t.Cleanup(s.engine.Close)
	dir := t.TempDir()
	s.data, s.cfg = filepath.Join(dir, "data"), filepath.Join(dir, "backends.json")
	cfg := fmt.Sprintf(`{"backends":[
		{"name":"cloud","type":"zhipu","base_url":%q,"api_key":%q,"models":["glm-4","rerank"]},
		{"name":"vllm","type":"openai","flavor":"vllm","base_url":%q,"models":[
			{"name":"glm-4.7-flash","upstream":"zai-org/GLM-4.7-Flash"},
			{"name":"bge-reranker-v2-m3","kind":"rerank"}]},
		{"name":"ollama","type":"openai","flavor":"ollama","base_url":%q,"models":[{"name":"llama-local","upstream":"llama3.2"}]}]}`,
		s.up.URL(), s.up.APIKey, s.engine.URL(), s.engine.URL())
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// start starts glm serve on the site's data and connects the Go SDK with
// the first start's key.
func (s *thinkingSite) start(t *testing.T, key string) string {
	t.Helper()
	s.srv = startInProcess(t, s.data, s.cfg)
	if key == "" {
		key = s.srv.key
	}
	c, err := zhipuai.NewClient(zhipuai.WithBaseURL(s.srv.base+"/api/paas/v4"), zhipuai.WithAPIKey(key), zhipuai.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	s.client = c
	return key
}

// A thinking model's stream through a vLLM-like backend, as the Go SDK
// sees it from a real glm serve (docs/v4.md §11): reasoning_content deltas
// first, then the content, then one final chunk whose usage reports the
// reasoning tokens; thinking reached the engine as chat_template_kwargs;
// the bill counts the reasoning as output at the model's price.
func TestThinkingStreamThroughVLLMBackend(t *testing.T) {
	s := newThinkingSite(t)
	key := s.start(t, "")
	// A price for the engine's model, then a restart so the engine loads it.
	req, _ := http.NewRequest(http.MethodPut, s.srv.admin+"/admin/v1/prices/glm-4.7-flash", strings.NewReader(`{"price":"0.01"}`))
	req.Header.Set("Authorization", "Bearer "+adminTokenOf(t, s.data))
	resp, err := http.DefaultClient.Do(req)
	if code, b := bodyOf(t, resp, err); code != 200 {
		t.Fatalf("set price: got %d %s, want 200", code, b)
	}
	s.srv.stop()
	s.start(t, key)

	s.engine.Enqueue(zhipuaitest.EngineReply{
		Reasoning: []string{"用户问", "六乘七，", "答案是四十二。"}, Content: []string{"6×7", "=42"},
		PromptTokens: 1200, CompletionTokens: 300, CachedTokens: 1000,
	})
	stream, err := s.client.Chat.Completions.Stream(context.Background(), &zhipuai.ChatCompletionRequest{
		Model: "glm-4.7-flash", Messages: []zhipuai.Message{zhipuai.UserMessage("6*7?")},
		Thinking: &zhipuai.Thinking{Type: zhipuai.ThinkingEnabled, ClearThinking: zhipuai.Ptr(false)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var acc zhipuai.ChatCompletionAccumulator
	var order []string
	finals := 0
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		d := c.Choices[0].Delta
		switch {
		case c.Choices[0].FinishReason != "":
			finals++
			order = append(order, "final")
		case d.ReasoningContent != "":
			order = append(order, "reasoning")
		case d.Content != "":
			order = append(order, "content")
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if got, want := strings.Join(order, ","), "reasoning,reasoning,reasoning,content,content,final"; got != want {
		t.Errorf("got chunks %s, want %s", got, want)
	}
	m := acc.Choices[0].Message
	if m.ReasoningContent != "用户问六乘七，答案是四十二。" || m.Content != "6×7=42" || finals != 1 {
		t.Errorf("got reasoning %q content %q finals %d", m.ReasoningContent, m.Content, finals)
	}
	// vLLM reports no reasoning_tokens: glm serve states its estimate of
	// the reasoning part, inside completion_tokens.
	u := acc.Usage
	if u.PromptTokens != 1200 || u.CompletionTokens != 300 || u.CachedTokens() != 1000 ||
		u.ReasoningTokens() <= 0 || u.ReasoningTokens() > u.CompletionTokens {
		t.Errorf("got usage %+v (cached %d, reasoning %d), want 1200/300 with 1000 cached and 0 < reasoning <= 300",
			u, u.CachedTokens(), u.ReasoningTokens())
	}
	reqs := s.engine.Requests()
	if body := string(reqs[len(reqs)-1].Body); !strings.Contains(body, `"chat_template_kwargs":{"clear_thinking":false,"enable_thinking":true}`) {
		t.Errorf("got engine request %s, want chat_template_kwargs with enable_thinking and clear_thinking", body)
	}

	// The bill: reasoning is output, billed with the completion tokens.
	s.srv.stop() // flushes the usage rows
	db, err := store.OpenDB(context.Background(), filepath.Join(s.data, "glm.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := billing.NewStore(ledger.New(db), nil).ListUsage(context.Background(), billing.UsageFilter{AccountID: DefaultAccountID})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range rows {
		if r.Model != "glm-4.7-flash" {
			continue
		}
		found = true
		// 1500 tokens at 0.01 CNY per 1K (10 000 µ¥) = 15 000 µ¥.
		if r.PromptTokens != 1200 || r.CompletionTokens != 300 || r.Amount != 15_000 || r.Estimated {
			t.Errorf("got usage row %+v, want 1200 prompt and 300 completion tokens (reasoning included) at 15000 µ¥", r)
		}
	}
	if !found {
		t.Fatalf("got usage rows %+v, want one for glm-4.7-flash", rows)
	}
}

// The tokenizer and rerank endpoints and the models list through the Go
// SDK against a real glm serve (docs/v4.md §11): counts forwarded from the
// cloud and from vLLM's /tokenize are exact, a backend that cannot count
// gets the labelled estimate; rerank goes to the cloud or to the engine's
// reranker; GET /models shows kind, limits and capabilities.
func TestTokenizerRerankModelsThroughSDK(t *testing.T) {
	s := newThinkingSite(t)
	s.start(t, "")
	ctx := context.Background()
	msgs := []zhipuai.Message{zhipuai.SystemMessage("你是助手"), zhipuai.UserMessage("北京天气怎么样？")}

	// The engine's template: 1 + (3+4) + (3+8) = 19 tokens.
	for _, tc := range []struct {
		model     string
		want      int
		estimated bool
	}{
		{"glm-4", 0, false},          // the cloud's own count (checked below)
		{"glm-4.7-flash", 19, false}, // vLLM /tokenize
		{"llama-local", 0, true},     // Ollama: no tokenize endpoint
	} {
		got, err := s.client.Tokenizer.Create(ctx, &zhipuai.TokenizerRequest{Model: tc.model, Messages: msgs})
		if err != nil {
			t.Fatalf("%s: %v", tc.model, err)
		}
		if got.Estimated != tc.estimated || got.Usage.PromptTokens <= 0 || tc.want > 0 && got.Usage.PromptTokens != tc.want {
			t.Errorf("%s: got %d tokens (estimated %v), want %d (estimated %v)", tc.model, got.Usage.PromptTokens, got.Estimated, tc.want, tc.estimated)
		}
		if got.Model != tc.model || got.ID == "" || got.RequestID == "" {
			t.Errorf("%s: got reply %+v, want model, id and request_id", tc.model, got)
		}
	}
	if reqs := s.up.Requests(); len(reqs) == 0 || reqs[len(reqs)-1].Path != "/tokenizer" {
		t.Errorf("got cloud requests %d, want the tokenizer call forwarded", len(reqs))
	}

	docs := []string{"上海今天下雨", "北京天气晴朗", "北京烤鸭"}
	for _, model := range []string{"rerank", "bge-reranker-v2-m3"} {
		got, err := s.client.Rerank.Create(ctx, &zhipuai.RerankRequest{Model: model, Query: "北京天气", Documents: docs,
			TopN: zhipuai.Ptr(2), ReturnDocuments: true})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if len(got.Results) != 2 || got.Results[0].Index != 1 || got.Results[0].Document != "北京天气晴朗" ||
			got.Results[0].RelevanceScore < got.Results[1].RelevanceScore || got.Usage.PromptTokens <= 0 {
			t.Errorf("%s: got %+v, want the Beijing weather document first, two results, usage", model, got)
		}
	}
	// Bad input gets the V4 envelope and the right code, from the server.
	raw := &proc{t: t, base: s.srv.base}
	for _, tc := range []struct{ body, code string }{
		{`{"model":"rerank","query":"q","documents":[]}`, "1214"},
		{`{"model":"rerank","documents":["a"]}`, "1213"},
		{`{"model":"glm-4","query":"q","documents":["a"]}`, "1212"},
		{`{"model":"rerank","query":"q","documents":["a"],"top_n":-1}`, "1214"},
	} {
		if code, b := raw.postB(t, "/rerank", s.srv.key, tc.body); code != 400 || !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
			t.Errorf("rerank %s: got %d %s, want 400 with %s", tc.body, code, b, tc.code)
		}
	}
	if code, b := raw.postB(t, "/tokenizer", s.srv.key, `{"model":"rerank","messages":[{"role":"user","content":"x"}]}`); code != 400 || !strings.Contains(string(b), `"1212"`) {
		t.Errorf("tokenizer on a rerank model: got %d %s, want 400 with 1212", code, b)
	}

	list, err := s.client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]zhipuai.Model{}
	for _, m := range list.Data {
		byID[m.ID] = m
	}
	if m := byID["glm-4.7-flash"]; m.Kind != "chat" || m.ContextWindow != 200_000 || m.MaxOutputTokens != 128_000 ||
		m.Capabilities == nil || !m.Capabilities.Thinking || !m.Capabilities.Tools || m.Capabilities.Vision {
		t.Errorf("got glm-4.7-flash %+v, want a 200K/128K chat model with thinking and tools", m)
	}
	if m := byID["glm-4"]; m.Pricing == nil || m.Pricing.Input != "0.1" || m.Pricing.Output != "0.1" || m.Pricing.Currency != "CNY" {
		t.Errorf("got glm-4 pricing %+v, want 0.1 CNY per 1K in and out", m.Pricing)
	}
	if m := byID["bge-reranker-v2-m3"]; m.Kind != "rerank" || m.Capabilities != nil {
		t.Errorf("got reranker %+v, want kind rerank without chat capabilities", m)
	}

	// Every call has its request-log row under its endpoint: 3 tokenizer
	// calls and 2 reranks that answered, 5 refused bodies.
	s.srv.stop()
	rows, err := openData(t, s.data).ListRequestLogs(ctx, platform.RequestLogFilter{})
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]int{}
	for _, r := range rows {
		if r.HTTPStatus == 200 {
			ok[r.Endpoint]++
		}
	}
	if ok[platform.EndpointTokenizer] != 3 || ok[platform.EndpointRerank] != 2 {
		t.Errorf("got answered request-log rows by endpoint %v, want 3 tokenizer and 2 rerank", ok)
	}
}

// glm tokenize and glm rerank against the fake cloud: the count, the
// order, and errors in the commands' own flags.
func TestTokenizeAndRerankCommands(t *testing.T) {
	srv := cliFake(t)
	out, _, err := cliRunCmd(t, "", "tokenize", "--model", "glm-4", "北京天气怎么样？")
	if err != nil || strings.TrimSpace(out) == "" || strings.Contains(out, "estimate") {
		t.Fatalf("tokenize: got %q, %v, want a count", out, err)
	}
	if reqs := srv.Requests(); reqs[len(reqs)-1].Path != "/tokenizer" {
		t.Errorf("got path %s, want /tokenizer", reqs[len(reqs)-1].Path)
	}
	out, _, err = cliRunCmd(t, "上海今天下雨\n\n北京天气晴朗\n", "rerank", "--query", "北京天气", "--top-n", "1")
	if err != nil || !strings.HasSuffix(out, "\t1\t北京天气晴朗\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("rerank: got %q, %v, want the Beijing line alone", out, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rerank", "a"}, "--query"},
		{[]string{"rerank", "--query", "q", "--top-n", "-1", "a"}, "--top-n"},
		{[]string{"tokenize"}, "no text"},
	} {
		if _, _, err := cliRunCmd(t, "", tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}
