package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/batch"
	"github.com/glmkit/glmkit/platform/files"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// Bounds of the batch env: small, so the limits are reached in a test.
const (
	testMaxFile = 16 << 10
	testQuota   = 40 << 10
)

// withBatches serves the Files and Batch APIs over the env's store, with
// content in a directory, and starts the batch workers.
func (e *env) withBatches(o *Options, calls *metered.Service) {
	fs, err := files.New(files.Options{Store: e.store, Dir: e.t.TempDir(), MaxFileBytes: testMaxFile, QuotaBytes: testQuota, MaxLines: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	e.runner = batch.NewRunner(batch.RunnerOptions{Store: e.store, Files: fs, Calls: calls, Workers: 2, PerBatch: 1,
		Lease: 5 * time.Second, Poll: 20 * time.Millisecond, Backoff: 50 * time.Millisecond})
	e.runner.Start()
	o.Files, o.Batches, o.BatchWaker = fs, batch.New(e.store, fs, nil), e.runner
}

func batchEnv(t *testing.T, opts ...envOpt) *env {
	return newEnv(t, append(opts, func(_ *proxyConfig, _ *Options, to *taskOptions) { to.Batches = true })...)
}

// sdk is the Go SDK on the env with key k.
func (e *env) sdk(k platform.Key) *zhipuai.Client {
	e.t.Helper()
	c, err := zhipuai.NewClient(zhipuai.WithAPIKey(k.Full()), zhipuai.WithBaseURL(e.url("")), zhipuai.WithMaxRetries(0))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// upload posts a multipart file with the env's key.
func (e *env) upload(purpose, name string, content []byte, fields ...string) *http.Response {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if purpose != "" {
		_ = mw.WriteField("purpose", purpose)
	}
	if name != "" {
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write(content)
	}
	_ = mw.Close()
	req, _ := http.NewRequest("POST", e.url("/files"), &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.key.Full())
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// wantError checks an envelope's status and code.
func wantEnvelope(t *testing.T, what string, resp *http.Response, status int, code string) {
	t.Helper()
	body := read(t, resp)
	var env zhipuai.ErrorEnvelope
	_ = json.Unmarshal(body, &env)
	if resp.StatusCode != status || string(env.Error.Code) != code {
		t.Errorf("%s: got %d %s (%s), want %d with %s", what, resp.StatusCode, env.Error.Code, body, status, code)
	}
}

func chatLine(id, url, model string) string {
	return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":%q,"body":{"model":%q,"messages":[{"role":"user","content":"hello %s"}]}}`, id, url, model, id)
}

// otherKey makes a second account with a key.
func (e *env) otherKey() platform.Key {
	e.t.Helper()
	ctx := context.Background()
	if err := e.store.CreateAccount(ctx, platform.Account{ID: "acct-2", Name: "other", CreatedAt: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
	k, _ := platform.NewKey("acct-2", "other", time.Now())
	if err := e.store.CreateKey(ctx, k); err != nil {
		e.t.Fatal(err)
	}
	return k
}

// TestFilesAPI: the SDK's calls work end to end, and every bad upload
// answers its envelope.
func TestFilesAPI(t *testing.T) {
	e := batchEnv(t)
	ctx := context.Background()
	c := e.sdk(e.key)
	jsonl := []byte(chatLine("a", "/v4/chat/completions", "glm-4") + "\n")
	f, err := c.Files.Create(ctx, zhipuai.FileCreateParams{File: bytes.NewReader(jsonl), Filename: "in.jsonl", Purpose: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	if f.Object != "file" || f.Bytes != int64(len(jsonl)) || f.Filename != "in.jsonl" || f.Purpose != "batch" || f.CreatedAt == 0 {
		t.Fatalf("created: got %+v", f)
	}
	r, err := c.Files.Create(ctx, zhipuai.FileCreateParams{File: strings.NewReader("notes"), Filename: "n.txt", Purpose: "retrieval"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Files.List(ctx, zhipuai.FileListParams{Purpose: "batch"})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != f.ID || list.Object != "list" {
		t.Fatalf("list purpose batch: got %+v, %v; want the one batch file", list, err)
	}
	list, _ = c.Files.List(ctx, zhipuai.FileListParams{Limit: 1})
	if len(list.Data) != 1 || list.Data[0].ID != r.ID || !list.HasMore {
		t.Fatalf("list limit 1: got %+v; want the newest and has_more", list)
	}
	list, _ = c.Files.List(ctx, zhipuai.FileListParams{Order: "asc", After: f.ID})
	if len(list.Data) != 1 || list.Data[0].ID != r.ID || list.HasMore {
		t.Fatalf("list asc after the first: got %+v; want the second alone", list)
	}
	got, err := c.Files.Content(ctx, f.ID)
	if err != nil || !bytes.Equal(got, jsonl) {
		t.Fatalf("content: got %q, %v; want the upload", got, err)
	}
	other := e.sdk(e.otherKey())
	for _, call := range []func() error{
		func() error { _, err := other.Files.Retrieve(ctx, f.ID); return err },
		func() error { _, err := other.Files.Content(ctx, f.ID); return err },
		func() error { _, err := other.Files.Delete(ctx, f.ID); return err },
	} {
		var apiErr *zhipuai.APIError
		if err := call(); !errorsAs(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Errorf("another account: got %v, want 404", err)
		}
	}
	d, err := c.Files.Delete(ctx, f.ID)
	if err != nil || !d.Deleted || d.ID != f.ID {
		t.Fatalf("delete: got %+v, %v", d, err)
	}
	if _, err := c.Files.Retrieve(ctx, f.ID); err == nil {
		t.Fatal("retrieve after delete: got the file, want 404")
	}

	wantEnvelope(t, "no file part", e.upload("batch", "", nil), 400, "1213")
	wantEnvelope(t, "no purpose", e.upload("", "x.jsonl", jsonl), 400, "1213")
	wantEnvelope(t, "unknown purpose", e.upload("pictures", "x.jsonl", jsonl), 400, "1214")
	wantEnvelope(t, "not JSONL", e.upload("batch", "x.jsonl", []byte("{\"a\":1}\nnot json\n")), 400, "1214")
	wantEnvelope(t, "not UTF-8", e.upload("batch", "x.jsonl", []byte{0xff, 0xfe, '\n'}), 400, "1214")
	wantEnvelope(t, "empty", e.upload("batch", "x.jsonl", nil), 400, "1214")
	wantEnvelope(t, "oversize", e.upload("retrieval", "big.bin", bytes.Repeat([]byte("x"), testMaxFile+1)), 413, "1210")
	wantEnvelope(t, "JSON body", e.do("POST", "/files", `{"purpose":"batch"}`), 400, "1210")
	// The quota: files of 15 KiB fill 40 KiB after two.
	chunk := bytes.Repeat([]byte("y"), 15<<10)
	for i := range 2 {
		if resp := e.upload("retrieval", "q.bin", chunk); resp.StatusCode != 200 {
			t.Fatalf("upload %d within the quota: got %d %s", i, resp.StatusCode, read(t, resp))
		}
	}
	wantEnvelope(t, "over the quota", e.upload("retrieval", "q.bin", chunk), 413, "1210")
}

func errorsAs(err error, target **zhipuai.APIError) bool {
	if err == nil {
		return false
	}
	a, ok := err.(*zhipuai.APIError)
	if ok {
		*target = a
	}
	return ok
}

// waitBatch polls until the batch is done.
func waitBatch(t *testing.T, c *zhipuai.Client, id string) *zhipuai.Batch {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := c.Batches.Retrieve(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Done() {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s still %s after 60s: %+v", id, b.Status, b.RequestCounts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// results decodes a JSONL file of result lines by custom_id.
func results(t *testing.T, c *zhipuai.Client, fileID *string) map[string]zhipuai.BatchResultLine {
	t.Helper()
	out := map[string]zhipuai.BatchResultLine{}
	if fileID == nil {
		return out
	}
	b, err := c.Files.Content(context.Background(), *fileID)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r zhipuai.BatchResultLine
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("result line %q: %v", line, err)
		}
		if _, dup := out[r.CustomID]; dup {
			t.Fatalf("custom_id %q twice in one file", r.CustomID)
		}
		out[r.CustomID] = r
	}
	return out
}

// TestBatchAPI: a batch with good and bad lines runs the good ones once
// each through the metered call and reports the bad ones in its error
// file; every bad create answers its envelope.
func TestBatchAPI(t *testing.T) {
	e := batchEnv(t)
	ctx := context.Background()
	c := e.sdk(e.key)
	lines := []string{
		chatLine("ok-1", "/v4/chat/completions", "glm-4"),
		chatLine("ok-2", "/v1/chat/completions", "glm-4"),
		"",
		chatLine("ok-1", "/v4/chat/completions", "glm-4"),      // duplicate custom_id
		chatLine("wrong-url", "/v4/embeddings", "glm-4"),       // another endpoint
		chatLine("no-model", "/v4/chat/completions", "nope-9"), // the API's own check: 1211
		`{"custom_id":"no-body","method":"POST","url":"/v4/chat/completions"}`,
		`{"custom_id":"get","method":"GET","url":"/v4/chat/completions","body":{}}`,
		`{"method":"POST","url":"/v4/chat/completions","body":{}}`,
		`{"custom_id":"bad-temp","method":"POST","url":"/v4/chat/completions","body":{"model":"glm-4","temperature":7,"messages":[{"role":"user","content":"x"}]}}`,
	}
	in, err := c.Files.Create(ctx, zhipuai.FileCreateParams{File: strings.NewReader(strings.Join(lines, "\n")), Filename: "in.jsonl", Purpose: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	b, err := c.Batches.Create(ctx, zhipuai.BatchCreateParams{InputFileID: in.ID, Endpoint: zhipuai.BatchEndpointChat,
		Metadata: map[string]string{"description": "test"}, AutoDeleteInputFile: &yes})
	if err != nil {
		t.Fatal(err)
	}
	if b.Object != "batch" || b.CompletionWindow != "24h" || b.RequestCounts.Total != 9 || b.RequestCounts.Failed != 7 ||
		b.Errors == nil || len(b.Errors.Data) != 7 || b.Metadata["description"] != "test" || b.InProgressAt == nil {
		t.Fatalf("created: got %+v", b)
	}
	if l := b.Errors.Data[0]; *l.Line != 4 || l.Code != "1214" {
		t.Fatalf("first line error: got line %d code %s, want line 4 (the duplicate) with 1214", *l.Line, l.Code)
	}
	done := waitBatch(t, c, b.ID)
	if done.Status != "completed" || done.RequestCounts.Completed != 2 || done.RequestCounts.Failed != 7 || done.CompletedAt == nil {
		t.Fatalf("done: got %s %+v", done.Status, done.RequestCounts)
	}
	out := results(t, c, done.OutputFileID)
	for _, id := range []string{"ok-1", "ok-2"} {
		r, ok := out[id]
		var cc zhipuai.ChatCompletion
		if !ok || r.Response == nil || r.Response.StatusCode != 200 || json.Unmarshal(r.Response.Body, &cc) != nil || len(cc.Choices) != 1 || r.Error != nil {
			t.Fatalf("output of %s: got %+v", id, r)
		}
		// One request-log row per line, under the line's derived id.
		var n int
		if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM request_log WHERE id = $1 AND endpoint = 'batch-line' AND http_status = 200`, r.ID).Scan(&n); err != nil || n != 1 {
			t.Fatalf("request-log rows of %s: got %d (%v), want 1", r.ID, n, err)
		}
	}
	errs := results(t, c, done.ErrorFileID)
	for id, code := range map[string]string{"wrong-url": "1214", "no-model": "1211", "no-body": "1213", "get": "1214", "": "1213", "bad-temp": "1214"} {
		r := errs[id]
		if r.Error == nil || r.Error.Code != code || r.Response == nil || r.Response.StatusCode != 400 {
			t.Errorf("error line of %q: got %+v, want code %s with status 400", id, r, code)
		}
	}
	if len(e.up.Requests()) != 2 {
		t.Errorf("upstream calls: got %d, want 2 (one per valid line)", len(e.up.Requests()))
	}
	if _, err := c.Files.Retrieve(ctx, in.ID); err == nil {
		t.Error("input file after auto_delete_input_file: got it, want 404")
	}
	list, err := c.Batches.List(ctx, zhipuai.BatchListParams{})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != b.ID || list.LastID != b.ID {
		t.Fatalf("list: got %+v, %v", list, err)
	}

	wantEnvelope(t, "cancel a finished batch", e.do("POST", "/batches/"+b.ID+"/cancel", ""), 409, "1214")
	wantEnvelope(t, "missing file", e.do("POST", "/batches", `{"input_file_id":"file-nope","endpoint":"/v1/chat/completions"}`), 404, "1214")
	wantEnvelope(t, "no input_file_id", e.do("POST", "/batches", `{"endpoint":"/v1/chat/completions"}`), 400, "1213")
	wantEnvelope(t, "bad endpoint", e.do("POST", "/batches", `{"input_file_id":"x","endpoint":"/v1/images"}`), 400, "1214")
	wantEnvelope(t, "bad window", e.do("POST", "/batches", `{"input_file_id":"x","endpoint":"/v1/embeddings","completion_window":"1h"}`), 400, "1214")
	notes, _ := c.Files.Create(ctx, zhipuai.FileCreateParams{File: strings.NewReader("x"), Filename: "n.txt", Purpose: "retrieval"})
	wantEnvelope(t, "wrong purpose", e.do("POST", "/batches", `{"input_file_id":"`+notes.ID+`","endpoint":"/v1/chat/completions"}`), 400, "1214")
	wantEnvelope(t, "another account's batch", e.do("GET", "/batches/"+b.ID, "", "Bearer "+e.otherKey().Full()), 404, "1214")
	wantEnvelope(t, "unknown batch", e.do("GET", "/batches/batch_nope", ""), 404, "1214")
}

// TestBatchCancel: cancel stops new lines, lets the running one settle,
// and ends cancelled with the partial output and the rest as
// batch_cancelled lines.
func TestBatchCancel(t *testing.T) {
	e := batchEnv(t)
	e.up.Handle(func(*zhipuaitest.Request) zhipuaitest.Reply {
		return zhipuaitest.Text("slow answer").WithDelay(300 * time.Millisecond)
	})
	ctx := context.Background()
	c := e.sdk(e.key)
	var lines []string
	for i := range 8 {
		lines = append(lines, chatLine(fmt.Sprintf("c%d", i), "/v4/chat/completions", "glm-4"))
	}
	in, err := c.Files.Create(ctx, zhipuai.FileCreateParams{File: strings.NewReader(strings.Join(lines, "\n")), Purpose: "batch"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Batches.Create(ctx, zhipuai.BatchCreateParams{InputFileID: in.ID, Endpoint: "/v4/chat/completions"})
	if err != nil {
		t.Fatal(err)
	}
	// Deleting the input file does not touch the running batch: it copied
	// its lines.
	if _, err := c.Files.Delete(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(e.up.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cb, err := c.Batches.Cancel(ctx, b.ID)
	if err != nil || cb.Status != "cancelling" || cb.CancellingAt == nil {
		t.Fatalf("cancel: got %+v, %v", cb, err)
	}
	done := waitBatch(t, c, b.ID)
	if done.Status != "cancelled" || done.CancelledAt == nil {
		t.Fatalf("after cancel: got %s", done.Status)
	}
	out, errs := results(t, c, done.OutputFileID), results(t, c, done.ErrorFileID)
	ran := len(e.up.Requests())
	if len(out) != ran || len(out) == 0 || len(out) == 8 || len(out)+len(errs) != 8 {
		t.Fatalf("cancelled batch: %d outputs, %d error lines, %d upstream calls; want the calls' outputs and the rest cancelled", len(out), len(errs), ran)
	}
	for id, r := range errs {
		if r.Error == nil || r.Error.Code != "batch_cancelled" || r.Response != nil {
			t.Errorf("error line of %s: got %+v, want batch_cancelled", id, r)
		}
	}
	if done.RequestCounts.Completed != len(out) {
		t.Errorf("completed: got %d, want %d", done.RequestCounts.Completed, len(out))
	}
}

// TestBatchLimitRequeue: a line the key's concurrency limit refuses goes
// back to the queue and runs later; it does not fail. Two batches run a
// line each at once against a key allowed one call at a time.
func TestBatchLimitRequeue(t *testing.T) {
	lim := limits.New(limits.Config{})
	e := batchEnv(t, withLimiter(lim))
	lim.SetKeyRule(e.key.ID, limits.Rule{MaxConcurrent: 1})
	e.up.Handle(func(*zhipuaitest.Request) zhipuaitest.Reply {
		return zhipuaitest.Text("ok").WithDelay(100 * time.Millisecond)
	})
	ctx := context.Background()
	c := e.sdk(e.key)
	var ids []string
	for b := range 2 {
		var lines []string
		for i := range 4 {
			lines = append(lines, chatLine(fmt.Sprintf("b%d-%d", b, i), "/v4/chat/completions", "glm-4"))
		}
		in, err := c.Files.Create(ctx, zhipuai.FileCreateParams{File: strings.NewReader(strings.Join(lines, "\n")), Purpose: "batch"})
		if err != nil {
			t.Fatal(err)
		}
		bt, err := c.Batches.Create(ctx, zhipuai.BatchCreateParams{InputFileID: in.ID, Endpoint: zhipuai.BatchEndpointChat})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, bt.ID)
	}
	for _, id := range ids {
		done := waitBatch(t, c, id)
		if done.Status != "completed" || done.RequestCounts.Completed != 4 || done.RequestCounts.Failed != 0 {
			t.Fatalf("batch %s: got %s %+v, want 4 completed and none failed", id, done.Status, done.RequestCounts)
		}
	}
	var most int
	if err := e.store.DB().QueryRow(`SELECT MAX(attempts) FROM batch_lines`).Scan(&most); err != nil || most < 2 {
		t.Fatalf("claims of the busiest line: got %d (%v), want at least 2 (refused by the limit, then run)", most, err)
	}
	var refusals int
	if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM request_log WHERE endpoint = 'batch-line' AND error_code <> ''`).Scan(&refusals); err != nil || refusals != 0 {
		t.Fatalf("failed batch-line rows: got %d (%v), want 0 (a requeued line is not recorded)", refusals, err)
	}
}
