package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/ops"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func (e *env) poll(id string, authz ...string) (zhipuai.AsyncCompletion, *http.Response) {
	e.t.Helper()
	resp := e.do("GET", "/async-result/"+id, "", authz...)
	b := read(e.t, resp)
	var out zhipuai.AsyncCompletion
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &out); err != nil {
			e.t.Fatalf("%s: %v", b, err)
		}
	}
	return out, resp
}

func TestAsyncSubmitAndPoll(t *testing.T) {
	e := newEnv(t)
	e.up.Enqueue(zhipuaitest.Text("异步").WithUsage(7, 2))
	resp := e.do("POST", "/async/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	b := read(t, resp)
	var sub zhipuai.AsyncTaskStatus
	if err := json.Unmarshal(b, &sub); err != nil || resp.StatusCode != 200 || sub.TaskStatus != "PROCESSING" ||
		sub.ID == "" || sub.Model != "glm-4" || sub.RequestID == "" {
		t.Fatalf("submit: %d %s", resp.StatusCode, b)
	}
	var got zhipuai.AsyncCompletion
	waitFor(t, "SUCCESS", func() bool {
		var r *http.Response
		got, r = e.poll(sub.ID)
		if ct := r.Header.Get("Content-Type"); ct != contentJSON {
			t.Fatalf("Content-Type %q", ct)
		}
		return got.TaskStatus != "PROCESSING"
	})
	if got.TaskStatus != "SUCCESS" || got.Choices[0].Message.Content != "异步" || got.Usage == nil || got.Usage.TotalTokens != 9 ||
		got.ID != sub.ID || got.RequestID != sub.RequestID {
		t.Fatalf("result %+v", got)
	}
	// Submit, each poll, and the task's execution: one row each; the
	// execution row carries the tokens.
	rows := e.logs()
	var exec []platform.RequestLog
	for _, r := range rows {
		if r.Endpoint == platform.EndpointAsyncTask {
			exec = append(exec, r)
		}
	}
	if len(exec) != 1 || exec[0].ID != sub.ID || exec[0].Usage.TotalTokens != 9 || exec[0].Backend != "cloud" {
		t.Fatalf("execution rows %+v", exec)
	}
	if up := e.up.Requests(); len(up) != 1 || up[0].Chat.Stream {
		t.Fatalf("upstream saw %+v; want one non-stream call", up)
	}
}

func TestAsyncFailAndOwnership(t *testing.T) {
	e := newEnv(t)
	e.up.Enqueue(zhipuaitest.Error(400, "1301", "unsafe input"))
	resp := e.do("POST", "/async/chat/completions", hello)
	var sub zhipuai.AsyncTaskStatus
	json.Unmarshal(read(t, resp), &sub)
	var got zhipuai.AsyncCompletion
	waitFor(t, "FAIL", func() bool { got, _ = e.poll(sub.ID); return got.TaskStatus != "PROCESSING" })
	if got.TaskStatus != "FAIL" || got.Error == nil || got.Error.Code != "1301" || got.Error.Message == "" {
		t.Fatalf("result %+v", got)
	}

	// Another account's key sees a 404 exactly like an unknown id.
	ctx := context.Background()
	if err := e.store.CreateAccount(ctx, platform.Account{ID: "acct-2", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	other, _ := platform.NewKey("acct-2", "", time.Now())
	if err := e.store.CreateKey(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, r1 := e.poll(sub.ID, other.Full())
	_, r2 := e.poll("20260101000000ffffffffffffffff", other.Full())
	if r1.StatusCode != 404 || r2.StatusCode != 404 {
		t.Fatalf("other account: %d, unknown: %d; both must be 404", r1.StatusCode, r2.StatusCode)
	}
	b1 := read(t, e.do("GET", "/async-result/"+sub.ID, "", other.Full()))
	b2 := read(t, e.do("GET", "/async-result/"+sub.ID+"x", "", other.Full()))
	var e1, e2 zhipuai.ErrorEnvelope
	json.Unmarshal(b1, &e1)
	json.Unmarshal(b2, &e2)
	if e1.Error.Code != e2.Error.Code || e1.Error.Code != platform.CodeTaskNotFound {
		t.Fatalf("bodies differ in code: %s vs %s", b1, b2)
	}
}

func TestEmbeddingsFloatAndBase64(t *testing.T) {
	e := newEnv(t)
	resp := e.do("POST", "/embeddings", `{"model":"embedding-3","input":["a","b"],"dimensions":256}`)
	var fl zhipuai.EmbeddingResponse
	b := read(t, resp)
	if err := json.Unmarshal(b, &fl); err != nil || len(fl.Data) != 2 || len(fl.Data[0].Embedding) != 256 || fl.Object != "list" ||
		fl.Data[1].Index != 1 || fl.Data[0].Object != "embedding" || fl.Usage.PromptTokens == 0 {
		t.Fatalf("float reply %.300s (%v)", b, err)
	}
	resp = e.do("POST", "/embeddings", `{"model":"embedding-3","input":["a","b"],"dimensions":256,"encoding_format":"base64"}`)
	b = read(t, resp)
	var raw struct {
		Data []struct {
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil || len(raw.Data) != 2 {
		t.Fatalf("base64 reply %.300s: %v", b, err)
	}
	vec, err := zhipuai.DecodeBase64Vector(raw.Data[0].Embedding)
	if err != nil || len(vec) != 256 {
		t.Fatalf("decoded %d values, %v", len(vec), err)
	}
	for i := range vec {
		if d := vec[i] - float64(float32(fl.Data[0].Embedding[i])); d != 0 {
			t.Fatalf("value %d: base64 %v vs float %v", i, vec[i], fl.Data[0].Embedding[i])
		}
	}
	// The builtin offline model answers embedding-2 without any upstream.
	resp = e.do("POST", "/embeddings", `{"model":"embedding-2","input":"离线"}`)
	if b := read(t, resp); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestImagesAndModels(t *testing.T) {
	e := newEnv(t)
	resp := e.do("POST", "/images/generations", `{"model":"cogview-3","prompt":"a cat"}`)
	b := read(t, resp)
	var img zhipuai.ImagesResponse
	if err := json.Unmarshal(b, &img); err != nil || resp.StatusCode != 200 || img.Created == 0 || len(img.Data) == 0 || img.Data[0].URL == "" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp = e.do("GET", "/models", "")
	var ml zhipuai.ModelList
	if err := json.Unmarshal(read(t, resp), &ml); err != nil || ml.Object != "list" || len(ml.Data) < 5 {
		t.Fatalf("models %+v %v", ml, err)
	}
	// Both rows may carry the same millisecond: find the image row by
	// its endpoint, not by its place.
	rows := e.logs()
	images := 0
	for _, r := range rows {
		if r.Endpoint == platform.EndpointImages {
			images = r.Usage.Images
		}
	}
	if got, want := images, len(img.Data); len(rows) != 2 || got != want {
		t.Fatalf("rows: got %d with %d images on the image row, want 2 with %d: %+v", len(rows), got, want, rows)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t)
	// The API's series are served by the ops handler, mounted as glm serve does.
	e.root.Mount(ops.New(ops.Options{Metrics: e.api.Metrics().Registry}))
	e.up.Enqueue(zhipuaitest.Text("ok").WithUsage(3, 4))
	read(t, e.do("POST", "/chat/completions", hello))
	wantError(t, e.do("POST", "/chat/completions", `{"model":"zzz","messages":[{"role":"user","content":"x"}]}`), 400, "1211")
	resp, err := e.client.Get(e.http.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = e.client.Get(e.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := string(read(t, resp))
	for _, want := range []string{
		`glm_requests_total{code="",route="chat/completions",status="200"} 1`,
		`glm_requests_total{code="1211",route="chat/completions",status="400"} 1`,
		`glm_tokens_total{kind="completion",model="glm-4"} 4`,
		`glm_request_duration_seconds_count{route="chat/completions"} 2`,
	} {
		if !contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
