package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func TestSyncChat(t *testing.T) {
	e := newEnv(t)
	e.up.Enqueue(zhipuaitest.Text("你好").WithUsage(10, 2))
	resp := e.do("POST", "/chat/completions", `{"model":"glm-4","request_id":"mine-1","messages":[{"role":"user","content":"hi"}]}`)
	b := read(t, resp)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != contentJSON {
		t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	var c zhipuai.ChatCompletion
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].Message.Content != "你好" || c.Choices[0].Message.Role != "assistant" || c.Usage.TotalTokens != 12 || c.RequestID != "mine-1" {
		t.Fatalf("reply %s", b)
	}
	if !bytes.Contains(b, []byte(`"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12`)) {
		t.Fatalf("usage not on the wire: %s", b)
	}
	rows := e.logs()
	if len(rows) != 1 {
		t.Fatalf("%d rows", len(rows))
	}
	r := rows[0]
	if r.ID != resp.Header.Get("X-Request-Id") || r.RequestID != "mine-1" || r.AccountID != "acct-1" || r.KeyID != e.key.ID ||
		r.Model != "glm-4" || r.Endpoint != platform.EndpointChat || r.Stream || r.Usage.TotalTokens != 12 ||
		r.HTTPStatus != 200 || r.ErrorCode != "" || r.Backend != "cloud" || r.Estimated {
		t.Fatalf("row %+v", r)
	}
}

// readStream reads SSE events until the body ends.
func readStream(t *testing.T, resp *http.Response) [][]byte {
	t.Helper()
	defer resp.Body.Close()
	rd := sse.NewReader(resp.Body)
	var out [][]byte
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		out = append(out, append([]byte(nil), ev.Data...))
	}
}

func TestStreamChat(t *testing.T) {
	e := newEnv(t)
	e.up.Enqueue(zhipuaitest.Text("").WithChunks("你", "好", "!").WithUsage(8, 3))
	resp := e.do("POST", "/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != contentSSE {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := readStream(t, resp)
	if len(events) != 5 || string(events[4]) != "[DONE]" {
		t.Fatalf("events %q", events)
	}
	var text strings.Builder
	finishes := 0
	for i, ev := range events[:4] {
		var c zhipuai.ChatCompletionChunk
		if err := json.Unmarshal(ev, &c); err != nil {
			t.Fatal(err)
		}
		text.WriteString(c.Choices[0].Delta.Content)
		if c.Choices[0].FinishReason != "" {
			finishes++
			if i != 3 || c.Usage == nil || c.Usage.TotalTokens != 11 {
				t.Fatalf("finish chunk %d: %s", i, ev)
			}
		}
	}
	if text.String() != "你好!" || finishes != 1 {
		t.Fatalf("text %q, %d finish chunks", text.String(), finishes)
	}
	rows := e.logs()
	if len(rows) != 1 || !rows[0].Stream || rows[0].Usage.TotalTokens != 11 || rows[0].Estimated || rows[0].HTTPStatus != 200 {
		t.Fatalf("rows %+v", rows)
	}
}

func TestToolCallRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.up.Enqueue(zhipuaitest.ToolCalls(zhipuai.ToolCall{ID: "call_1", Type: "function",
		Function: zhipuai.FunctionCall{Name: "get_weather", Arguments: `{"city":"北京"}`}}))
	tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]`
	resp := e.do("POST", "/chat/completions", `{"model":"glm-4",`+tools+`,"messages":[{"role":"user","content":"weather?"}]}`)
	var c zhipuai.ChatCompletion
	if err := json.Unmarshal(read(t, resp), &c); err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].FinishReason != "tool_calls" || c.Choices[0].Message.ToolCalls[0].Function.Arguments != `{"city":"北京"}` {
		t.Fatalf("reply %+v", c)
	}
	e.up.Enqueue(zhipuaitest.Text("晴"))
	turn2 := fmt.Sprintf(`{"model":"glm-4",%s,"messages":[{"role":"user","content":"weather?"},
		{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","index":0,"function":{"name":"get_weather","arguments":"{\"city\":\"北京\"}"}}]},
		{"role":"tool","tool_call_id":"call_1","content":"sunny"}]}`, tools)
	resp = e.do("POST", "/chat/completions", turn2)
	if b := read(t, resp); resp.StatusCode != 200 || !strings.Contains(string(b), "晴") {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	got := e.up.Requests()
	if last := got[len(got)-1].Chat; last == nil || last.Messages[2].ToolCallID != "call_1" {
		t.Fatalf("tool turn not forwarded: %+v", got[len(got)-1])
	}
}

func TestUpstreamErrors(t *testing.T) {
	e := newEnv(t, func(c *proxyConfig, _ *Options, _ *taskOptions) {
		// Long enough for a prompt reply on a loaded machine, short
		// enough for the timeout case's minute-long reply to hit it.
		c.Backends[0].Timeout = router.Duration(2 * time.Second)
	})
	t.Run("5xx before first byte", func(t *testing.T) {
		e.up.Enqueue(zhipuaitest.Error(500, "500", "boom").Times(5))
		resp := e.do("POST", "/chat/completions", hello)
		b := read(t, resp)
		var env zhipuai.ErrorEnvelope
		if resp.StatusCode < 500 || json.Unmarshal(b, &env) != nil || env.Error.Code == "" {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		e.up.Reset()
	})
	t.Run("upstream 4xx passes its code", func(t *testing.T) {
		e.up.Enqueue(zhipuaitest.Error(400, "1301", "unsafe"))
		wantError(t, e.do("POST", "/chat/completions", hello), 400, "1301")
	})
	t.Run("timeout", func(t *testing.T) {
		e.up.Enqueue(zhipuaitest.Text("late").WithDelay(time.Minute))
		wantError(t, e.do("POST", "/chat/completions", hello), http.StatusGatewayTimeout, "1234")
		e.up.Reset()
	})
	t.Run("stream 5xx before first byte is JSON", func(t *testing.T) {
		e.up.Enqueue(zhipuaitest.Error(503, "1305", "busy").Times(5))
		resp := e.do("POST", "/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"x"}]}`)
		b := read(t, resp)
		if resp.Header.Get("Content-Type") != contentJSON || resp.StatusCode == 200 || !strings.Contains(string(b), `"code"`) {
			t.Fatalf("%d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
		e.up.Reset()
	})
	t.Run("cut stream is an in-band error", func(t *testing.T) {
		e.up.Enqueue(zhipuaitest.Text("").WithChunks("a", "b", "c").CutAfter(2))
		resp := e.do("POST", "/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"x"}]}`)
		events := readStream(t, resp)
		if resp.StatusCode != 200 || len(events) != 3 {
			t.Fatalf("events %q", events)
		}
		var env zhipuai.ErrorEnvelope
		if err := json.Unmarshal(events[2], &env); err != nil || env.Error.Code == "" || env.Error.Message == "" {
			t.Fatalf("last event %s is not an in-band error", events[2])
		}
	})
	t.Run("upstream in-band error is relayed", func(t *testing.T) {
		e.up.Enqueue(zhipuaitest.InBandError("1301", "unsafe output").WithChunks("a"))
		resp := e.do("POST", "/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"x"}]}`)
		events := readStream(t, resp)
		last := events[len(events)-1]
		if !bytes.Contains(last, []byte(`"code":"1301"`)) {
			t.Fatalf("events %q", events)
		}
	})
}

// slowUpstream is a scripted V4 stream that sends one chunk, then waits
// for the client (glm serve) to go away, and reports that it saw it.
type slowUpstream struct {
	*httptest.Server
	cancelled chan struct{}
	once      sync.Once
}

func newSlowUpstream(t *testing.T) *slowUpstream {
	u := &slowUpstream{cancelled: make(chan struct{})}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentSSE)
		sw := sse.NewWriter(w)
		sw.WriteData([]byte(`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"hello there"}}]}`))
		select {
		case <-r.Context().Done():
			u.once.Do(func() { close(u.cancelled) })
		case <-time.After(time.Minute):
		}
	}))
	t.Cleanup(u.Close)
	return u
}

func TestClientDisconnectMidStream(t *testing.T) {
	up := newSlowUpstream(t)
	e := newEnv(t, func(c *proxyConfig, _ *Options, _ *taskOptions) {
		c.Backends = []router.BackendConfig{{Name: "slow", Type: router.TypeZhipu, BaseURL: up.URL + "/api/paas/v4",
			APIKey: "0123456789abcdef0123456789abcdef.abcdefghijklmnop", Models: []router.ModelConfig{{Name: "glm-4"}}}}
	})
	resp := e.do("POST", "/chat/completions", `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	ev, err := sse.NewReader(resp.Body).Next()
	if err != nil || !bytes.Contains(ev.Data, []byte("hello there")) {
		t.Fatalf("first event %q, %v", ev.Data, err)
	}
	resp.Body.Close() // the client goes away mid-stream
	select {
	case <-up.cancelled:
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream never saw the cancel")
	}
	var rows []platform.RequestLog
	waitFor(t, "the request-log row", func() bool { rows = e.logs(); return len(rows) > 0 })
	// Give a double record every chance to show up before counting.
	if err := e.log.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows = e.logs()
	if len(rows) != 1 {
		t.Fatalf("%d rows, want exactly 1", len(rows))
	}
	r := rows[0]
	if r.HTTPStatus != 499 || !r.Estimated || r.Usage.CompletionTokens < 1 || r.Usage.PromptTokens < 1 ||
		r.Usage.TotalTokens != r.Usage.PromptTokens+r.Usage.CompletionTokens {
		t.Fatalf("row %+v: want an estimated usage for a client that left", r)
	}
}

func TestRequestLogExactlyOnceUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	const n = 60
	e.up.Enqueue(zhipuaitest.Text("ok").WithUsage(5, 1).Times(n))
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			body := `{"model":"glm-4","messages":[{"role":"user","content":"x"}]}`
			if i%2 == 1 {
				body = `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"x"}]}`
			}
			req, _ := http.NewRequest("POST", e.url("/chat/completions"), strings.NewReader(body))
			req.Header.Set("Authorization", e.key.Full())
			resp, err := e.client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			ids <- resp.Header.Get("X-Request-Id")
		}(i)
	}
	wg.Wait()
	close(ids)
	rows := e.logs()
	byID := map[string]platform.RequestLog{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	if len(rows) != n || len(byID) != n {
		t.Fatalf("%d rows (%d distinct) for %d requests", len(rows), len(byID), n)
	}
	for id := range ids {
		r, ok := byID[id]
		if !ok || r.Usage.TotalTokens != 6 || r.HTTPStatus != 200 {
			t.Fatalf("request %s: row %+v (found %v)", id, r, ok)
		}
	}
	key, _ := e.store.GetKey(context.Background(), e.key.ID)
	if key.LastUsedAt.IsZero() {
		t.Fatal("last-used time not updated")
	}
}

// A client that hangs up before the backend answers is settled on the
// prompt estimate (the upstream already had the prompt), logged once as 499.
func TestClientDisconnectBeforeAnswer(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			e := newEnv(t)
			e.up.Enqueue(zhipuaitest.Text("too late").WithDelay(time.Minute))
			body := fmt.Sprintf(`{"model":"glm-4","stream":%v,"messages":[{"role":"user","content":"tell me a joke"}]}`, stream)
			ctx, cancel := context.WithCancel(context.Background())
			req, err := http.NewRequestWithContext(ctx, "POST", e.url("/chat/completions"), strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+e.key.Full())
			done := make(chan error, 1)
			go func() {
				resp, err := e.client.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			waitFor(t, "the upstream to receive the request", func() bool { return len(e.up.Requests()) == 1 })
			cancel()
			if err := <-done; err == nil {
				t.Fatal("the cancelled request got a response")
			}
			var rows []platform.RequestLog
			waitFor(t, "the request-log row", func() bool { rows = e.logs(); return len(rows) > 0 })
			if err := e.log.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			if rows = e.logs(); len(rows) != 1 {
				t.Fatalf("%d rows, want exactly 1", len(rows))
			}
			r := rows[0]
			if r.HTTPStatus != 499 || !r.Estimated || r.Usage.PromptTokens < 1 || r.Usage.CompletionTokens != 0 ||
				r.Usage.TotalTokens != r.Usage.PromptTokens || r.ErrorCode != "" {
				t.Fatalf("row %+v: want 499 with the prompt estimate", r)
			}
		})
	}
}
