package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/ops"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// An over-long or binary request_id, user_id or model is refused with
// 1214 on every route before anything is stored: no task row, no model
// call, and the request-log row of the refusal holds bounded values. The
// cut is counted on /metrics.
func TestBoundedInputBeforeStorage(t *testing.T) {
	e := newEnv(t)
	e.root.Mount(ops.New(ops.Options{Metrics: e.api.Metrics().Registry}))
	e.up.Handle(func(*zhipuaitest.Request) zhipuaitest.Reply { return zhipuaitest.Text("ok").WithUsage(1, 1) })
	huge := strings.Repeat("r", 1<<20)
	chat := func(field, value string) string {
		return fmt.Sprintf(`{"model":"glm-4",%q:%q,"messages":[{"role":"user","content":"hi"}]}`, field, value)
	}
	for _, tc := range []struct{ name, path, body, field string }{
		{"chat request_id", "/chat/completions", chat("request_id", huge), "request_id"},
		{"stream request_id", "/chat/completions", `{"stream":true,` + chat("request_id", "a\nb")[1:], "request_id"},
		{"async request_id", "/async/chat/completions", chat("request_id", huge), "request_id"},
		{"async user_id", "/async/chat/completions", chat("user_id", strings.Repeat("u", 129)), "user_id"},
		{"embeddings request_id", "/embeddings", fmt.Sprintf(`{"model":"embedding-2","input":"x","request_id":%q}`, huge), "request_id"},
		{"images user_id", "/images/generations", `{"model":"cogview-3","prompt":"x","user_id":"u\u0000ser01"}`, "user_id"},
		{"chat model", "/chat/completions", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, strings.Repeat("m", 1<<20)), "model"},
	} {
		env := wantError(t, e.do("POST", tc.path, tc.body), 400, platform.CodeInvalidField)
		if !strings.HasPrefix(env.Error.Message, tc.field+":") || len(env.Error.Message) > 200 {
			t.Errorf("%s: got message %.80q (%d bytes), want a short one naming %s", tc.name, env.Error.Message, len(env.Error.Message), tc.field)
		}
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Fatalf("got %d model calls, want none", n)
	}
	rows := e.logs()
	if len(rows) != 7 {
		t.Fatalf("got %d request-log rows, want 7", len(rows))
	}
	for _, r := range rows {
		if len(r.RequestID) > zhipuai.MaxRequestIDLen || len(r.Model) > zhipuai.MaxModelLen || r.ErrorCode != platform.CodeInvalidField {
			t.Errorf("row %s (%s): request_id %d bytes, model %d bytes, code %s; want both bounded, 1214",
				r.ID, r.Endpoint, len(r.RequestID), len(r.Model), r.ErrorCode)
		}
	}
	// The valid async submission after them is the only task.
	resp := e.do("POST", "/async/chat/completions", chat("request_id", "req-ok-1"))
	read(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("valid submission: got %d, want 200", resp.StatusCode)
	}
	mresp, err := e.client.Get(e.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m := string(read(t, mresp))
	for _, want := range []string{
		`glm_input_cut_total{field="request_id"} 4`,
		`glm_input_cut_total{field="model"} 1`,
		`glm_requests_total{code="1214",route="async/chat/completions",status="400"} 2`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
