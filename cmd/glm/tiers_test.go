package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// A request whose upstream served 1,000 of its 1,200 prompt tokens from
// its cache is billed at the cached price, sync and stream (the scripted
// cloud reports usage and its details on the final chunk only, as the V4
// stream does); a thinking stream through the vLLM-like engine bills its
// reasoning tokens inside the output; glm bills --json shows the tiers
// (docs/design.md §7 "Tiers").
func TestCachedAndReasoningTokensBilledByTier(t *testing.T) {
	s := newThinkingSite(t)
	key := s.start(t, "")
	// glm-4.7-flash is free in the shipped table: price it by tier, then
	// restart so the engine loads it (the cloud's glm-4 keeps its row).
	req, _ := http.NewRequest(http.MethodPut, s.srv.admin+"/admin/v1/prices/glm-4.7-flash",
		strings.NewReader(`{"input":"0.002","cached_input":"0.0004","output":"0.008"}`))
	req.Header.Set("Authorization", "Bearer "+adminTokenOf(t, s.data))
	resp, err := http.DefaultClient.Do(req)
	if code, b := bodyOf(t, resp, err); code != 200 || !strings.Contains(string(b), `"cached_input_micros_per_1k":400`) {
		t.Fatalf("set price: got %d %s, want 200 with the cached price", code, b)
	}
	req, _ = http.NewRequest(http.MethodPut, s.srv.admin+"/admin/v1/prices/glm-4",
		strings.NewReader(`{"input":"0.002","cached_input":"0.0004","output":"0.008","per_call":"0.01"}`))
	req.Header.Set("Authorization", "Bearer "+adminTokenOf(t, s.data))
	resp, err = http.DefaultClient.Do(req)
	if code, b := bodyOf(t, resp, err); code != 200 {
		t.Fatalf("set price: got %d %s, want 200", code, b)
	}
	// A package holds tokens; a search's per-call price is paid in cash.
	req, _ = http.NewRequest(http.MethodPost, s.srv.admin+"/admin/v1/accounts/"+DefaultAccountID+"/topup", strings.NewReader(`{"cny":"1"}`))
	req.Header.Set("Authorization", "Bearer "+adminTokenOf(t, s.data))
	resp, err = http.DefaultClient.Do(req)
	if code, b := bodyOf(t, resp, err); code != 200 {
		t.Fatalf("topup: got %d %s, want 200", code, b)
	}
	s.srv.stop()
	s.start(t, key)
	ctx := context.Background()
	msgs := []zhipuai.Message{zhipuai.UserMessage("a long system prompt, cached")}

	// Sync through the cloud.
	s.up.Enqueue(zhipuaitest.Text("hello").WithUsage(1200, 300).WithUsageDetails(1000, 0))
	got, err := s.client.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: msgs})
	if err != nil {
		t.Fatal(err)
	}
	if got.Usage.CachedTokens() != 1000 {
		t.Errorf("sync: got cached %d relayed, want 1000", got.Usage.CachedTokens())
	}
	// Stream through the cloud: usage only on the final chunk.
	s.up.Enqueue(zhipuaitest.Text("hello").WithChunks("hel", "lo").WithUsage(1200, 300).WithUsageDetails(1000, 0))
	drain(t, s.client, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: msgs})
	// With the web_search tool: the reply carries its sources, one billed
	// call each, sync and stream.
	search := []zhipuai.Tool{zhipuai.NewWebSearchTool(zhipuai.WebSearchTool{Enable: zhipuai.Ptr(true)})}
	found := zhipuai.WebSearchResult{Title: "source", Link: "https://example.com/a"}
	s.up.Enqueue(zhipuaitest.Text("hello").WithUsage(1200, 300).WithUsageDetails(1000, 0).WithWebSearch(found))
	if _, err := s.client.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: msgs, Tools: search}); err != nil {
		t.Fatal(err)
	}
	s.up.Enqueue(zhipuaitest.Text("hello").WithUsage(1200, 300).WithUsageDetails(1000, 0).WithWebSearch(found))
	drain(t, s.client, &zhipuai.ChatCompletionRequest{Model: "glm-4", Messages: msgs, Tools: search})
	// A thinking stream through the vLLM-like engine.
	s.engine.Enqueue(zhipuaitest.EngineReply{
		Reasoning: []string{"先想", "一想"}, Content: []string{"答"},
		PromptTokens: 1200, CompletionTokens: 300, CachedTokens: 1000,
	})
	drain(t, s.client, &zhipuai.ChatCompletionRequest{Model: "glm-4.7-flash", Messages: msgs,
		Thinking: &zhipuai.Thinking{Type: zhipuai.ThinkingEnabled}})
	s.srv.stop() // flushes the usage rows

	// Each row: (1200−1000)×2000 + 1000×400 + 300×8000 nanos = 3,200 µ¥
	// (4,800 µ¥ if the cached tokens were billed as input), plus 10,000 µ¥
	// for a web search.
	db, err := store.OpenDB(ctx, filepath.Join(s.data, "glm.db"))
	if err != nil {
		t.Fatal(err)
	}
	bst := billing.NewStore(ledger.New(db), nil)
	rows, err := bst.ListUsage(ctx, billing.UsageFilter{AccountID: DefaultAccountID})
	if err != nil {
		t.Fatal(err)
	}
	// Money is conserved: the audit balances, packages and cash.
	if a, err := bst.Audit(ctx, ""); err != nil || a.Err() != nil {
		t.Fatalf("audit: got %v / %v, want a balanced ledger", err, a.Err())
	}
	db.Close()
	n, searched := 0, 0
	for _, r := range rows {
		if r.Model != "glm-4" && r.Model != "glm-4.7-flash" {
			continue
		}
		n++
		want := billing.Micros(3200)
		if r.Calls == 1 {
			want += 10_000
			searched++
		}
		if r.PromptTokens != 1200 || r.CachedTokens != 1000 || r.CompletionTokens != 300 || r.Amount != want ||
			r.Class != billing.ClassStandard || r.Estimated || r.Calls > 1 {
			t.Errorf("got usage row %+v, want 1200 prompt (1000 cached) and 300 completion at %d µ¥, standard", r, want)
		}
		if r.Rate.Cost(r.Usage()) != r.Amount {
			t.Errorf("row %s: recomputed %d from the row, row says %d", r.RequestID, r.Rate.Cost(r.Usage()), r.Amount)
		}
		full := r.Usage()
		full.CachedTokens = 0
		t.Logf("%s: prompt %d (cached %d), completion %d (reasoning %d), calls %d → %d µ¥ (every prompt token at the input price: %d µ¥)",
			r.Model, r.PromptTokens, r.CachedTokens, r.CompletionTokens, r.ReasoningTokens, r.Calls, r.Amount, r.Rate.Cost(full))
		if r.Model == "glm-4.7-flash" && (r.ReasoningTokens <= 0 || r.ReasoningTokens > r.CompletionTokens) {
			t.Errorf("thinking row: got %d reasoning tokens, want 0 < reasoning <= completion %d", r.ReasoningTokens, r.CompletionTokens)
		}
	}
	if n != 5 || searched != 2 {
		t.Fatalf("got %d tiered usage rows (%d with a search) in %+v, want 5 (sync, stream, each with a search too, thinking stream)",
			n, searched, rows)
	}

	// glm bills --json: the month's tiers.
	month := time.Now().In(billing.BillingZone).Format("2006-01")
	var bill billing.Bill
	out := runGLM(t, "bills", "--data-dir", s.data, "--month", month, "--json")
	if err := json.Unmarshal(out, &bill); err != nil {
		t.Fatalf("bills --json: %v: %s", err, out)
	}
	var tiered billing.BillLine
	for _, l := range bill.Lines {
		if l.Model == "glm-4" || l.Model == "glm-4.7-flash" {
			tiered.Requests += l.Requests
			tiered.CachedTokens += l.CachedTokens
			tiered.ReasoningTokens += l.ReasoningTokens
			tiered.Total += l.Total
			tiered.Tiers.Input += l.Tiers.Input
			tiered.Tiers.CachedInput += l.Tiers.CachedInput
			tiered.Tiers.Output += l.Tiers.Output
			tiered.Tiers.PerCall += l.Tiers.PerCall
			tiered.Calls += l.Calls
		}
	}
	want := billing.TierCost{Input: 5 * 200 * 2000, CachedInput: 5 * 1000 * 400, Output: 5 * 300 * 8000, PerCall: 2 * 10_000 * 1000}
	if tiered.Requests != 5 || tiered.CachedTokens != 5000 || tiered.Calls != 2 || tiered.Total != 5*3200+2*10_000 ||
		tiered.Tiers != want || tiered.ReasoningTokens <= 0 {
		t.Errorf("bills --json: got %+v, want 5 requests, 5000 cached, 2 calls, reasoning > 0, 36000 µ¥ as %+v", tiered, want)
	}
	csv := string(runGLM(t, "bills", "--data-dir", s.data, "--month", month, "--csv"))
	if head, _, _ := strings.Cut(csv, "\n"); !strings.HasPrefix(head, "period,date,model,requests,prompt_tokens,completion_tokens,images,package_tokens,total_cny,discount_cny,payable_cny,unpaid_cny,cached_tokens,") {
		t.Errorf("bills --csv: got header %q, want the earlier columns first, then the tiers", head)
	}
}

// drain streams req to its end.
func drain(t *testing.T, c *zhipuai.Client, req *zhipuai.ChatCompletionRequest) {
	t.Helper()
	st, err := c.Chat.Completions.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for st.Next() {
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
}
