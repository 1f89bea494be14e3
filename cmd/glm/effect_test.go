package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// A price set through the admin API is charged at once by the process
// that served the change, not after its refresh interval; the CLI says
// the bound for the other processes.
func TestPriceChangeTakesEffectAtOnce(t *testing.T) {
	s := newBillSite(t, "")
	srv := s.start(t, 0)
	req, _ := http.NewRequest("PUT", srv.base+"/admin/v1/prices/glm-4", strings.NewReader(`{"input":"1","output":"2"}`))
	req.Header.Set("Authorization", "Bearer "+billAdminTok)
	presp, err := http.DefaultClient.Do(req)
	if code, b := bodyOf(t, presp, err); code != 200 {
		t.Fatalf("PUT price: got %d %s", code, b)
	}
	s.up.Enqueue(zhipuaitest.Text("ok").WithUsage(1000, 1000))
	resp, err := srv.post("/chat/completions", srv.key, `{"model":"glm-4","max_tokens":1000,"messages":[{"role":"user","content":"hi"}]}`)
	if code, b := bodyOf(t, resp, err); code != 200 {
		t.Fatalf("chat: got %d %s", code, b)
	}
	id := resp.Header.Get("X-Request-Id")
	var rows []logView
	poll(t, "the request-log row", func() bool {
		rows = nil
		_ = json.Unmarshal(s.glm(t, "logs", "--request-id", id, "--json"), &rows)
		return len(rows) == 1
	})
	// 1K input at ¥1 + 1K output at ¥2.
	if got, want := rows[0].ChargeMicros, int64(3_000_000); got != want {
		t.Fatalf("charge right after the change: got %d micros, want %d (the new price)", got, want)
	}
	out := string(s.glm(t, "prices", "set", "glm-4", "--input", "0.5"))
	if !strings.Contains(out, "within 30 s") || !strings.Contains(out, "at once on the serving process") {
		t.Fatalf("prices set: got %q, want the bound stated", out)
	}
}
