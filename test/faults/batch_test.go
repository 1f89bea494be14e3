package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/pgtest"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// The must-show of the Batch API (docs/design.md §10): the Python SDK's
// calls, reproduced with the Go SDK (same paths and fields, docs/v4.md
// §12), against real glm serve processes: upload a JSONL file of 50 chat
// lines and one of 10 embedding lines (the cloud takes one endpoint per
// batch), create the two batches, kill -9 the server while they run,
// start another, and get 60 results: every custom_id exactly once, one
// usage row and one request-log row per line, each line charged once at
// the batch price, and the account's money conserved by the audit.

const (
	batchChatLines  = 50
	batchEmbedLines = 10
)

// batchScript answers chat slowly enough that the kill lands mid-batch,
// with a fixed usage, so every chat line costs the same.
func batchScript(req *zhipuaitest.Request) zhipuaitest.Reply {
	if req.Embedding != nil {
		return zhipuaitest.Embeddings(zhipuaitest.HashVector(req.Embedding.Input[0], 1024))
	}
	return zhipuaitest.Text("positive").WithUsage(60, 30).WithDelay(150 * time.Millisecond)
}

func TestBatchKill9SQLite(t *testing.T) {
	t.Parallel()
	runBatchKill(t, "")
}

func TestBatchKill9Postgres(t *testing.T) {
	t.Parallel()
	runBatchKill(t, pgtest.Schema(t, "batchkill"))
}

func runBatchKill(t *testing.T, pgdsn string) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := glmBinary(t)
	s, err := newSite(ctx, Options{Bin: bin, Dir: t.TempDir(), PGDSN: pgdsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	s.up.Handle(batchScript)

	a, err := s.start(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	ca := s.client(t, a)
	chatFile, embedFile := batchInputs()
	chat := s.submitBatch(t, ca, chatFile, zhipuai.BatchEndpointChat)
	embed := s.submitBatch(t, ca, embedFile, zhipuai.BatchEndpointEmbeddings)

	// Kill once some chat lines are done and most are not.
	deadline := time.Now().Add(90 * time.Second)
	for {
		b, err := ca.Batches.Retrieve(ctx, chat.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := b.RequestCounts.Completed; n >= 5 && n < batchChatLines-10 {
			t.Logf("kill -9 with %d of %d chat lines completed", n, batchChatLines)
			break
		}
		if b.RequestCounts.Completed >= batchChatLines-10 || time.Now().After(deadline) {
			t.Fatalf("the batch was not caught mid-run: %d completed", b.RequestCounts.Completed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.kill(a); err != nil {
		t.Fatal(err)
	}
	b, err := s.start(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	cb := s.client(t, b)
	outChat := s.waitOutput(t, cb, chat.ID, batchChatLines)
	outEmbed := s.waitOutput(t, cb, embed.ID, batchEmbedLines)

	for i := range batchChatLines {
		r, ok := outChat[fmt.Sprintf("chat-%02d", i)]
		var cc zhipuai.ChatCompletion
		if !ok || r.Response == nil || r.Response.StatusCode != 200 || json.Unmarshal(r.Response.Body, &cc) != nil ||
			len(cc.Choices) != 1 || cc.Usage.TotalTokens != 90 {
			t.Fatalf("chat-%02d: got %+v, want one 200 reply with its usage", i, r)
		}
	}
	for i := range batchEmbedLines {
		r, ok := outEmbed[fmt.Sprintf("embed-%02d", i)]
		var er zhipuai.EmbeddingResponse
		if !ok || r.Response == nil || r.Response.StatusCode != 200 || json.Unmarshal(r.Response.Body, &er) != nil || len(er.Data) != 1 || len(er.Data[0].Embedding) != 1024 {
			t.Fatalf("embed-%02d: got %+v, want one 200 reply with its 1024 numbers", i, r)
		}
	}

	// One usage row and one request-log row per line, under the line's id.
	var rows, distinct, logs int
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT request_id) FROM billing_usage WHERE request_id LIKE 'batch_%'`).
		Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM request_log WHERE endpoint = 'batch-line' AND http_status = 200`).Scan(&logs); err != nil {
		t.Fatal(err)
	}
	if rows != 60 || distinct != 60 || logs != 60 {
		t.Fatalf("usage rows %d (distinct %d), request-log rows %d; want 60 each, one per line", rows, distinct, logs)
	}
	if err := s.checkPairs(ctx); err != nil {
		t.Fatal(err)
	}
	// The kill cut lines mid-call: they ran again under their own ids.
	var rerun int
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*) FROM batch_lines WHERE attempts > 1`).Scan(&rerun); err != nil {
		t.Fatal(err)
	}
	if rerun == 0 {
		t.Fatal("no line ran twice: the kill did not cut a running line, so recovery was not exercised")
	}

	// Each line is charged at the batch price: the interactive price of the
	// same call (run now through the API) scaled by the batch percentage.
	percent := batchPercent(t, bin)
	chatPrice := s.interactiveCharge(t, cb, true)
	embedPrice := s.interactiveCharge(t, cb, false)
	var chatSum, embedSum int64
	var chatMin, chatMax int64
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount_micros), 0), MIN(amount_micros), MAX(amount_micros)
		FROM billing_usage WHERE request_id LIKE $1`, chat.ID+"-%").Scan(&chatSum, &chatMin, &chatMax); err != nil {
		t.Fatal(err)
	}
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount_micros), 0) FROM billing_usage WHERE request_id LIKE $1`,
		embed.ID+"-%").Scan(&embedSum); err != nil {
		t.Fatal(err)
	}
	var embedMin, embedMax int64
	if err := s.db.SQL.QueryRowContext(ctx, `SELECT MIN(amount_micros), MAX(amount_micros) FROM billing_usage WHERE request_id LIKE $1`,
		embed.ID+"-%").Scan(&embedMin, &embedMax); err != nil {
		t.Fatal(err)
	}
	// Every line of a batch costs the same (same usage), the sum is the
	// lines times that, and that is the interactive charge at the batch
	// percentage (within the one µ¥ of rounding up once).
	if chatMin != chatMax || chatSum != batchChatLines*chatMin || !atPercent(chatMin, chatPrice, percent) ||
		embedMin != embedMax || embedSum != batchEmbedLines*embedMin || !atPercent(embedMin, embedPrice, percent) || chatMin == 0 {
		t.Fatalf("batch charges: chat %d µ¥ (lines %d..%d), embeddings %d µ¥ (lines %d..%d); want %d and %d lines at %d%% of %d and %d",
			chatSum, chatMin, chatMax, embedSum, embedMin, embedMax, batchChatLines, batchEmbedLines, percent, chatPrice, embedPrice)
	}
	m, err := s.checkMoney(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d line(s) cut by the kill ran again; 60 lines charged once each: chat %d µ¥, embeddings %d µ¥ at %d%% of interactive; audit: %s", rerun, chatSum, embedSum, percent, m)
}

// batchInputs are the two input files: 50 chat lines and 10 embedding
// lines, in the cloud's input line format.
func batchInputs() (chat, embed []byte) {
	var c, e bytes.Buffer
	for i := range batchChatLines {
		fmt.Fprintf(&c, `{"custom_id":"chat-%02d","method":"POST","url":"/v4/chat/completions","body":{"model":"glm-4","messages":[{"role":"user","content":"classify review %02d"}]}}`+"\n", i, i)
	}
	for i := range batchEmbedLines {
		fmt.Fprintf(&e, `{"custom_id":"embed-%02d","method":"POST","url":"/v4/embeddings","body":{"model":"embedding-2","input":"review number %02d"}}`+"\n", i, i)
	}
	return c.Bytes(), e.Bytes()
}

func (s *site) client(t *testing.T, p *server) *zhipuai.Client {
	t.Helper()
	c, err := zhipuai.NewClient(zhipuai.WithAPIKey(s.key), zhipuai.WithBaseURL(p.base+"/api/paas/v4"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// submitBatch uploads a file and creates its batch, as client.files.create
// and client.batches.create do.
func (s *site) submitBatch(t *testing.T, c *zhipuai.Client, content []byte, endpoint string) *zhipuai.Batch {
	t.Helper()
	ctx := context.Background()
	f, err := c.Files.Create(ctx, zhipuai.FileCreateParams{File: bytes.NewReader(content), Filename: "input.jsonl", Purpose: zhipuai.FilePurposeBatch})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	b, err := c.Batches.Create(ctx, zhipuai.BatchCreateParams{InputFileID: f.ID, Endpoint: endpoint, CompletionWindow: "24h",
		Metadata: map[string]string{"description": "kill -9 test"}, AutoDeleteInputFile: &yes})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitOutput waits for a batch to complete and returns its output lines
// by custom_id, failing on a custom_id seen twice.
func (s *site) waitOutput(t *testing.T, c *zhipuai.Client, id string, lines int) map[string]zhipuai.BatchResultLine {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	var b *zhipuai.Batch
	for {
		var err error
		if b, err = c.Batches.Retrieve(ctx, id); err != nil {
			t.Fatal(err)
		}
		if b.Done() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s still %s after 2m: %+v", id, b.Status, b.RequestCounts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b.Status != zhipuai.BatchStatusCompleted || b.RequestCounts.Completed != lines || b.RequestCounts.Failed != 0 || b.ErrorFileID != nil || b.OutputFileID == nil {
		var first string
		if b.ErrorFileID != nil {
			errs, _ := c.Files.Content(ctx, *b.ErrorFileID)
			first, _, _ = strings.Cut(string(errs), "\n")
		}
		t.Fatalf("batch %s: got %s %+v; want completed with %d lines; first error line: %s", id, b.Status, b.RequestCounts, lines, first)
	}
	content, err := c.Files.Content(ctx, *b.OutputFileID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]zhipuai.BatchResultLine{}
	for _, line := range strings.Split(strings.TrimSpace(string(content)), "\n") {
		var r zhipuai.BatchResultLine
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		if _, dup := out[r.CustomID]; dup {
			t.Fatalf("custom_id %s twice in the output", r.CustomID)
		}
		out[r.CustomID] = r
	}
	if len(out) != lines {
		t.Fatalf("batch %s: %d output lines, want %d", id, len(out), lines)
	}
	return out
}

// interactiveCharge runs one line's request as an interactive call and
// returns what it was charged.
func (s *site) interactiveCharge(t *testing.T, c *zhipuai.Client, chat bool) int64 {
	t.Helper()
	ctx := context.Background()
	reqID := fmt.Sprintf("interactive-%v-%d", chat, time.Now().UnixNano())
	if chat {
		if _, err := c.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: "glm-4", RequestID: reqID,
			Messages: []zhipuai.Message{zhipuai.UserMessage("classify review 00")}}); err != nil {
			t.Fatal(err)
		}
	} else if _, err := c.Embeddings.Create(ctx, &zhipuai.EmbeddingRequest{Model: "embedding-2", RequestID: reqID,
		Input: zhipuai.EmbeddingInput{"review number 00"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(settleWait)
	for {
		var amount int64
		err := s.db.SQL.QueryRowContext(ctx, `SELECT charge_amount FROM request_log WHERE request_id = $1`, reqID).Scan(&amount)
		if err == nil {
			return amount
		}
		if time.Now().After(deadline) {
			t.Fatalf("interactive call %s: no request-log row: %v", reqID, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// batchPercent is the batch price in percent of the interactive one:
// the default of glm serve's --batch-price-percent, read from its help.
func batchPercent(t *testing.T, bin string) int64 {
	out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("glm serve --help: %v: %s", err, out)
	}
	m := regexp.MustCompile(`--batch-price-percent int .*\(default (\d+)\)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("glm serve --help names no --batch-price-percent with its default:\n%s", out)
	}
	p, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return p
}

// atPercent reports whether line is percent of interactive, rounded
// either way by at most one µ¥ (each charge is rounded up once, from its
// own price).
func atPercent(line, interactive, percent int64) bool {
	exact := interactive * percent
	return line*100 >= exact-100 && line*100 <= exact+100
}
