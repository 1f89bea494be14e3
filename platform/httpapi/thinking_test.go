package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// settleMeter keeps every settlement, so a test sees what billing is told.
type settleMeter struct {
	mu  sync.Mutex
	got []platform.Settlement
}

func (m *settleMeter) Reserve(context.Context, platform.ReserveRequest) (platform.Reservation, error) {
	return settleRecorder{m}, nil
}

type settleRecorder struct{ m *settleMeter }

func (r settleRecorder) Settle(_ context.Context, s platform.Settlement) (platform.Charge, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.m.got = append(r.m.got, s)
	return platform.Charge{}, nil
}

func (m *settleMeter) last(t *testing.T) platform.Settlement {
	t.Helper()
	var s platform.Settlement
	waitFor(t, "a settlement", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if len(m.got) == 0 {
			return false
		}
		s = m.got[len(m.got)-1]
		return true
	})
	return s
}

// The 2026 chat fields through glm serve to the cloud and back (docs/v4.md
// §11): the Python SDK's "thinking": null and "response_format": null are
// accepted; thinking, tool_stream, watermark_enabled and
// sensitive_word_check reach the upstream; reasoning_content and the usage
// details come back, sync and stream; settle sees the cached and reasoning
// tokens as parts of prompt and completion.
func TestThinkingFieldsAndUsageDetails(t *testing.T) {
	meter := &settleMeter{}
	e := newEnv(t, func(_ *proxyConfig, _ *Options, to *taskOptions) { to.Calls.Meter = meter })

	resp := e.do("POST", "/chat/completions", `{"model":"glm-4","thinking":null,"response_format":null,"messages":[{"role":"user","content":"hi"}]}`)
	if b := read(t, resp); resp.StatusCode != 200 {
		t.Fatalf("python SDK nulls: got %d %s, want 200", resp.StatusCode, b)
	}

	body := `{"model":"glm-4","thinking":{"type":"enabled","clear_thinking":false},"tool_stream":true,"watermark_enabled":false,` +
		`"sensitive_word_check":{"type":"ALL","status":"DISABLE"},"response_format":{"type":"json_object"},` +
		`"messages":[{"role":"user","content":"6*7?"},{"role":"assistant","content":"42","reasoning_content":"6*7"},{"role":"user","content":"again"}]}`
	e.up.Enqueue(zhipuaitest.Text("42").WithReasoning("six times seven").WithUsage(1200, 30).WithUsageDetails(1000, 20))
	resp = e.do("POST", "/chat/completions", body)
	b := read(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("got %d %s, want 200", resp.StatusCode, b)
	}
	var c zhipuai.ChatCompletion
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].Message.ReasoningContent != "six times seven" || c.Usage.CachedTokens() != 1000 || c.Usage.ReasoningTokens() != 20 {
		t.Errorf("got %s, want reasoning_content and both usage details", b)
	}
	reqs := e.up.Requests()
	sent := string(reqs[len(reqs)-1].Body)
	for _, want := range []string{`"thinking":{"type":"enabled","clear_thinking":false}`, `"tool_stream":true`, `"watermark_enabled":false`,
		`"sensitive_word_check":{"type":"ALL","status":"DISABLE"}`, `"reasoning_content":"6*7"`} {
		if !strings.Contains(sent, want) {
			t.Errorf("got upstream body %s, want it to carry %s", sent, want)
		}
	}
	if s := meter.last(t); s.Usage.PromptTokens != 1200 || s.Usage.CachedTokens != 1000 || s.Usage.CompletionTokens != 30 || s.Usage.ReasoningTokens != 20 {
		t.Errorf("sync settle: got %+v, want 1200 prompt (1000 cached), 30 completion (20 reasoning)", s.Usage)
	}

	e.up.Enqueue(zhipuaitest.Text("").WithChunks("4", "2").WithReasoning("six ", "times seven").WithUsage(1100, 25).WithUsageDetails(1000, 18))
	resp = e.do("POST", "/chat/completions", strings.Replace(body, `"model":"glm-4",`, `"model":"glm-4","stream":true,`, 1))
	events := readStream(t, resp)
	var reasoning, content strings.Builder
	var final *zhipuai.ChatCompletionChunk
	for _, ev := range events {
		if string(ev) == "[DONE]" {
			continue
		}
		var ch zhipuai.ChatCompletionChunk
		if err := json.Unmarshal(ev, &ch); err != nil {
			t.Fatal(err)
		}
		reasoning.WriteString(ch.Choices[0].Delta.ReasoningContent)
		content.WriteString(ch.Choices[0].Delta.Content)
		if ch.Usage != nil {
			final = &ch
		}
	}
	if reasoning.String() != "six times seven" || content.String() != "42" || final == nil ||
		final.Usage.CachedTokens() != 1000 || final.Usage.ReasoningTokens() != 18 {
		t.Errorf("stream: got reasoning %q content %q final %+v, want both texts and the usage details", reasoning.String(), content.String(), final)
	}
	if s := meter.last(t); s.Usage.CachedTokens != 1000 || s.Usage.ReasoningTokens != 18 || s.Usage.CompletionTokens != 25 || s.Estimated {
		t.Errorf("stream settle: got %+v, want 1000 cached and 18 reasoning of 25", s.Usage)
	}
}

// A finish_reason of sensitive or network_error from the cloud reaches the
// client on the final chunk, sync and stream (docs/v4.md §4).
func TestFinishReasonsRelayed(t *testing.T) {
	e := newEnv(t)
	for _, fr := range []string{zhipuai.FinishSensitive, zhipuai.FinishNetworkError} {
		e.up.Enqueue(zhipuaitest.Text("partial").WithFinish(fr))
		resp := e.do("POST", "/chat/completions", `{"model":"glm-4","messages":[{"role":"user","content":"hi"}]}`)
		if b := read(t, resp); !bytes.Contains(b, []byte(`"finish_reason":"`+fr+`"`)) {
			t.Errorf("sync: got %s, want finish_reason %s", b, fr)
		}
		e.up.Enqueue(zhipuaitest.Text("partial").WithFinish(fr))
		resp = e.do("POST", "/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
		events := readStream(t, resp)
		if len(events) < 2 || !bytes.Contains(events[len(events)-2], []byte(`"finish_reason":"`+fr+`"`)) {
			t.Errorf("stream: got %q, want finish_reason %s on the final chunk", events, fr)
		}
	}
}

// Bad thinking and sensitive_word_check values get 1214 from the one
// validator, before any upstream call.
func TestThinkingValidation(t *testing.T) {
	e := newEnv(t)
	for _, body := range []string{
		`{"model":"glm-4","thinking":{"type":"auto"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"glm-4","sensitive_word_check":{"type":"ALL","status":"ON"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"glm-4","messages":[{"role":"user","content":"hi","reasoning_content":"x"}]}`,
	} {
		wantError(t, e.do("POST", "/chat/completions", body), 400, "1214")
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("got %d upstream calls, want none", n)
	}
}

// Rerank goes through the one metered call: reserved, charged for the input
// the upstream reports at the model's price, one usage row; the tokenizer
// costs nothing. (Their request-log rows: cmd/glm
// TestTokenizerRerankModelsThroughSDK, where the log and usage share a
// database.)
func TestRerankAndTokenizerMetered(t *testing.T) {
	T := time.Date(2026, 3, 1, 10, 0, 0, 0, billing.BillingZone)
	m := newMeteredEnv(t, T)
	ctx := context.Background()
	if err := m.bill.SetPrice(ctx, billing.Price{Model: "rerank", Input: 2_000}); err != nil {
		t.Fatal(err)
	}
	if err := m.eng.ReloadPrices(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.bill.TopUp(ctx, "acct-1", billing.MicrosPerCNY, "test"); err != nil {
		t.Fatal(err)
	}
	resp := m.do("POST", "/rerank", `{"model":"rerank","query":"北京天气","documents":["北京晴","上海雨"],"return_documents":true}`)
	b := read(t, resp)
	var rr zhipuai.RerankResponse
	if err := json.Unmarshal(b, &rr); err != nil || resp.StatusCode != 200 {
		t.Fatalf("rerank: got %d %s, want 200", resp.StatusCode, b)
	}
	if len(rr.Results) != 2 || rr.Results[0].Document != "北京晴" || rr.Usage.PromptTokens <= 0 {
		t.Fatalf("rerank: got %s, want 北京晴 first and usage", b)
	}
	resp = m.do("POST", "/tokenizer", `{"model":"glm-4","messages":[{"role":"user","content":"你好"}]}`)
	if b := read(t, resp); resp.StatusCode != 200 || resp.Header.Get(headerTokenCount) != "exact" {
		t.Fatalf("tokenizer: got %d %s (%s), want 200, exact", resp.StatusCode, b, resp.Header.Get(headerTokenCount))
	}
	var charged int64
	for _, r := range m.usage() {
		switch r.Model {
		case "rerank":
			want := (int64(rr.Usage.PromptTokens)*2_000 + 999) / 1000
			if r.PromptTokens != int64(rr.Usage.PromptTokens) || r.CompletionTokens != 0 || int64(r.Amount) != want {
				t.Errorf("rerank row: got %+v, want %d prompt tokens at %d µ¥", r, rr.Usage.PromptTokens, want)
			}
			charged += int64(r.Amount)
		default:
			if r.Amount != 0 || r.PromptTokens != 0 {
				t.Errorf("got row %+v, want the tokenizer to cost nothing", r)
			}
		}
	}
	if charged == 0 {
		t.Fatal("got no rerank charge, want one")
	}
}
