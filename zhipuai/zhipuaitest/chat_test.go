package zhipuaitest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// tutorialServer has the tutorial's stream id and created time (seed, "stream = True").
func tutorialServer() *zhipuaitest.Server {
	return zhipuaitest.NewServer(
		zhipuaitest.WithClock(func() time.Time { return time.Unix(1706092316, 0) }),
		zhipuaitest.WithIDs(func() string { return "8313807536837492492" }),
	)
}

func TestSyncDefaultEcho(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	resp, body := call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("tell me a joke", false))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	// docs/v4.md §8.3: exactly this media type.
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	var c zhipuai.ChatCompletion
	decode(t, body, &c)
	if !regexp.MustCompile(`^\d{19}$`).MatchString(c.ID) {
		t.Errorf("id %q is not a 19-digit string", c.ID)
	}
	if c.RequestID != c.ID {
		t.Errorf("request_id %q, want = id %q when the client sent none", c.RequestID, c.ID)
	}
	if now := time.Now().Unix(); c.Created < now-3600 || c.Created > now+3600 {
		t.Errorf("created %d is not Unix seconds", c.Created)
	}
	if c.Model != "glm-4" || len(c.Choices) != 1 {
		t.Fatalf("reply %+v", c)
	}
	ch := c.Choices[0]
	if ch.Message.Role != "assistant" || ch.Message.Content != "Echo: tell me a joke" || ch.FinishReason != "stop" {
		t.Errorf("choice %+v", ch)
	}
	u := c.Usage
	if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %+v", u)
	}
	if !bytes.Contains(body, []byte(`"usage":{"prompt_tokens":`)) || bytes.Contains(body, []byte(`"object"`)) {
		t.Errorf("body shape: %s", body)
	}
}

func TestSyncScripted(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(
		zhipuaitest.Text("一 <b>&").WithUsage(7, 3).WithFinish("length"),
		zhipuaitest.Text("again").Times(2),
	)
	req := chatReq("q", false)
	req.RequestID = "client-42"
	_, body := call(t, srv, "POST", "/chat/completions", bearer(srv), req)
	var c zhipuai.ChatCompletion
	decode(t, body, &c)
	if c.Choices[0].Message.Content != "一 <b>&" || c.Choices[0].FinishReason != "length" {
		t.Errorf("choice %+v", c.Choices[0])
	}
	if c.Usage != (zhipuai.Usage{PromptTokens: 7, CompletionTokens: 3, TotalTokens: 10}) {
		t.Errorf("usage %+v", c.Usage)
	}
	if c.RequestID != "client-42" {
		t.Errorf("request_id %q, want the client's", c.RequestID)
	}
	if !bytes.Contains(body, []byte(`"一 <b>&"`)) {
		t.Errorf("content is HTML-escaped: %s", body)
	}
	for i := range 3 {
		_, body = call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("q", false))
		decode(t, body, &c)
		want := "again"
		if i == 2 {
			want = "Echo: q" // the queue is empty: the default answers
		}
		if got := c.Choices[0].Message.Content; got != want {
			t.Errorf("call %d: content %q, want %q", i, got, want)
		}
	}
}

func TestToolCallsSync(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.ToolCalls(
		zhipuai.ToolCall{Function: zhipuai.FunctionCall{Name: "get_current_weather", Arguments: `{"location":"北京","unit":"c"}`}},
		zhipuai.ToolCall{ID: "call_mine", Function: zhipuai.FunctionCall{Name: "other", Arguments: `{}`}},
	))
	_, body := call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("今天北京天气如何?", false))
	// docs/v4.md §4: content null in a tool-call reply.
	if !bytes.Contains(body, []byte(`"message":{"role":"assistant","content":null,"tool_calls":[`)) {
		t.Errorf("message shape: %s", body)
	}
	var c zhipuai.ChatCompletion
	decode(t, body, &c)
	ch := c.Choices[0]
	if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 2 {
		t.Fatalf("choice %+v", ch)
	}
	tc := ch.Message.ToolCalls[0]
	if !regexp.MustCompile(`^call_\d+$`).MatchString(tc.ID) || tc.Type != "function" || tc.Index == nil || *tc.Index != 0 ||
		tc.Function.Name != "get_current_weather" || tc.Function.Arguments != `{"location":"北京","unit":"c"}` {
		t.Errorf("tool call %+v", tc)
	}
	if tc1 := ch.Message.ToolCalls[1]; tc1.ID != "call_mine" || *tc1.Index != 1 {
		t.Errorf("second tool call %+v", tc1)
	}
}

func TestStreamGoldenTutorial(t *testing.T) {
	srv := tutorialServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.Text("").WithChunks("土", "星", ", ", "主要由").WithFinish("length").WithUsage(60, 100))
	resp, body := call(t, srv, "POST", "/chat/completions", srv.APIKey, chatReq("土星", true))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream;charset=UTF-8" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	golden(t, "stream_tutorial_length.sse", body)
	// The golden file itself must hold the tutorial's final line verbatim.
	const final = `data: {"id":"8313807536837492492","created":1706092316,"model":"glm-4","choices":[{"index":0,"finish_reason":"length","delta":{"role":"assistant","content":""}}],"usage":{"prompt_tokens":60,"completion_tokens":100,"total_tokens":160}}` + "\n\ndata: [DONE]\n\n"
	if !bytes.HasSuffix(body, []byte(final)) {
		t.Errorf("stream does not end like the tutorial:\n%s", body)
	}
}

// checkStreamShape verifies docs/v4.md §4 on a decoded transcript and returns the
// concatenated content and the final chunk.
func checkStreamShape(t *testing.T, datas []string) (string, zhipuai.ChatCompletionChunk, []zhipuai.ToolCall) {
	t.Helper()
	var content strings.Builder
	var final zhipuai.ChatCompletionChunk
	var calls []zhipuai.ToolCall
	finals := 0
	var id string
	var created int64
	for i, d := range datas {
		var c zhipuai.ChatCompletionChunk
		decode(t, []byte(d), &c)
		if i == 0 {
			id, created = c.ID, c.Created
		}
		if c.ID != id || c.Created != created || c.Model != "glm-4" {
			t.Errorf("chunk %d: id/created/model differ: %s", i, d)
		}
		if len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant" || c.Choices[0].Index != 0 {
			t.Errorf("chunk %d: choices %s", i, d)
			continue
		}
		if !strings.Contains(d, `"delta":{"role":"assistant","content":`) {
			t.Errorf("chunk %d: delta lacks role or content: %s", i, d)
		}
		ch := c.Choices[0]
		if ch.FinishReason != "" {
			finals++
			final = c
			if c.Usage == nil || ch.Delta.Content != "" || i != len(datas)-1 {
				t.Errorf("final chunk %d wrong: %s", i, d)
			}
		} else if c.Usage != nil {
			t.Errorf("usage on a non-final chunk: %s", d)
		}
		calls = append(calls, ch.Delta.ToolCalls...)
		content.WriteString(ch.Delta.Content)
	}
	if finals != 1 {
		t.Errorf("%d chunks carry finish_reason, want exactly 1", finals)
	}
	return content.String(), final, calls
}

func TestStreamDefaultSplit(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.Text("你好，世界！Hello"))
	resp, err := send(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	datas, done, rerr := events(resp.Body)
	if rerr != nil || !done {
		t.Fatalf("stream ended with err=%v done=%v", rerr, done)
	}
	content, final, _ := checkStreamShape(t, datas)
	if content != "你好，世界！Hello" {
		t.Errorf("content %q", content)
	}
	if len(datas) != 5 { // 你好， 世界！ Hel lo + final
		t.Errorf("%d events, want 4 content chunks of 3 runes + final", len(datas))
	}
	if final.Choices[0].FinishReason != "stop" || final.Usage.TotalTokens != final.Usage.PromptTokens+final.Usage.CompletionTokens {
		t.Errorf("final %+v", final)
	}
}

func TestStreamToolCalls(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.ToolCalls(zhipuai.ToolCall{Function: zhipuai.FunctionCall{Name: "f", Arguments: `{"a":1}`}}))
	resp, err := send(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	datas, done, rerr := events(resp.Body)
	if rerr != nil || !done {
		t.Fatalf("err=%v done=%v", rerr, done)
	}
	_, final, calls := checkStreamShape(t, datas)
	if len(datas) != 2 {
		t.Fatalf("want a tool-call chunk and a final chunk, got %q", datas)
	}
	if len(calls) != 1 || calls[0].ID == "" || calls[0].Index == nil || calls[0].Type != "function" ||
		calls[0].Function.Name != "f" || calls[0].Function.Arguments != `{"a":1}` {
		t.Errorf("streamed call %+v", calls)
	}
	if final.Choices[0].FinishReason != "tool_calls" {
		t.Errorf("final finish %q", final.Choices[0].FinishReason)
	}
}

func TestStreamCutAfter(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(
		zhipuaitest.Text("").WithChunks("a", "b", "c").CutAfter(2),
		zhipuaitest.Text("x").CutAfter(99),
		zhipuaitest.Text("x").CutAfter(0),
	)
	for _, want := range []int{2, 2, 0} { // "x" with CutAfter(99): content + final, no [DONE]
		resp, err := send(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", true))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		datas, done, rerr := events(resp.Body)
		resp.Body.Close()
		if done || len(datas) != want {
			t.Errorf("cut stream: %d events (want %d), done=%v", len(datas), want, done)
		}
		if !errors.Is(rerr, io.ErrUnexpectedEOF) {
			t.Errorf("reader error %v, want an unexpected EOF (connection aborted)", rerr)
		}
	}
}

func TestSyncCutAfterIsTransportError(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.Text("x").CutAfter(0))
	resp, err := send(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", false))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d), want a transport error", resp.StatusCode)
	}
}

func TestStreamInBandError(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.InBandError("1305", "流量过大").WithChunks("部分", "回答"))
	resp, err := send(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", true))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200 (in-band)", resp.StatusCode)
	}
	datas, done, rerr := events(resp.Body)
	if rerr != nil || done {
		t.Fatalf("err=%v done=%v, want a clean end without [DONE]", rerr, done)
	}
	if len(datas) != 3 || datas[2] != `{"error":{"code":"1305","message":"流量过大"}}` {
		t.Fatalf("events %q", datas)
	}
	var c zhipuai.ChatCompletionChunk
	decode(t, []byte(datas[0]), &c)
	if c.Choices[0].Delta.Content != "部分" || c.Choices[0].FinishReason != "" {
		t.Errorf("first chunk %s", datas[0])
	}
}

func TestErrorReplyWithHeaders(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(
		zhipuaitest.Error(429, "1302", "您当前使用该API的并发数过高").WithHeader("Retry-After", "2").WithHeader("x-should-retry", "false"),
		zhipuaitest.Error(500, "500", "内部错误"),
	)
	resp, body := call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", false))
	env := wantError(t, resp, body, 429, "1302")
	if env.Error.Message != "您当前使用该API的并发数过高" {
		t.Errorf("message %q", env.Error.Message)
	}
	if resp.Header.Get("Retry-After") != "2" || resp.Header.Get("x-should-retry") != "false" {
		t.Errorf("headers %v", resp.Header)
	}
	// Before any stream byte an error is the JSON envelope (docs/v4.md §4).
	resp, body = call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", true))
	wantError(t, resp, body, 500, "500")
}

func TestRequestsRecorded(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	req := chatReq("记录我", false)
	req.Temperature = zhipuai.Ptr(0.01)
	_, _ = call(t, srv, "POST", "/chat/completions", bearer(srv), req)
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Chat == nil || r.Chat.Messages[0].Content.Text != "记录我" ||
		r.Chat.Temperature == nil || *r.Chat.Temperature != 0.01 || r.Header.Get("Authorization") != bearer(srv) {
		t.Errorf("recorded %+v", r)
	}
	var raw map[string]any
	if err := json.Unmarshal(r.Body, &raw); err != nil || raw["model"] != "glm-4" {
		t.Errorf("body %s", r.Body)
	}
	// A copy: changing it does not change the server's record.
	r.Body[0] = 'X'
	r.Header.Set("Authorization", "changed")
	r.Chat.Messages[0].Content.Text = "changed"
	if again := srv.Requests()[0]; again.Body[0] == 'X' || again.Header.Get("Authorization") == "changed" ||
		again.Chat.Messages[0].Content.Text != "记录我" {
		t.Error("Requests returned shared memory")
	}
	srv.Reset()
	if len(srv.Requests()) != 0 {
		t.Error("Reset kept requests")
	}
}

func TestHandleFallback(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Handle(func(r *zhipuaitest.Request) zhipuaitest.Reply {
		if r.Chat == nil {
			return zhipuaitest.Reply{}
		}
		return zhipuaitest.Text("model=" + r.Chat.Model)
	})
	srv.Enqueue(zhipuaitest.Text("queued first"))
	var c zhipuai.ChatCompletion
	for _, want := range []string{"queued first", "model=glm-4"} {
		_, body := call(t, srv, "POST", "/chat/completions", bearer(srv), chatReq("hi", false))
		decode(t, body, &c)
		if got := c.Choices[0].Message.Content; got != want {
			t.Errorf("content %q, want %q", got, want)
		}
	}
	// The handler's chat reply does not break an embeddings call.
	resp, body := call(t, srv, "POST", "/embeddings", bearer(srv), `{"model":"embedding-2","input":"x"}`)
	if resp.StatusCode != 200 {
		t.Errorf("embeddings with a chat handler: %d %s", resp.StatusCode, body)
	}
}

func TestDelayedStreamCancel(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.Text("slow").WithDelay(time.Hour))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL()+"/chat/completions",
		strings.NewReader(`{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"x"}]}`))
	req.Header.Set("Authorization", bearer(srv))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The status arrives at once; the first chunk waits an hour, so the
	// client can only end the read by cancelling.
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	cancel()
	datas, done, rerr := events(resp.Body)
	if len(datas) != 0 || done || !errors.Is(rerr, context.Canceled) {
		t.Errorf("after cancel: %d events, done=%v, err=%v", len(datas), done, rerr)
	}
}

// TestStallAfter: a stream that stalls after its first event sends that
// event, then nothing, until the client leaves.
func TestStallAfter(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	up.Enqueue(zhipuaitest.Text("abc").WithChunks("a", "b", "c").StallAfter(1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequestWithContext(ctx, "POST", up.URL()+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+up.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.Contains(first, `"content":"a"`) {
		t.Fatalf("first line %q, %v; want the first chunk", first, err)
	}
	got := make(chan string, 1)
	go func() {
		rest, _ := io.ReadAll(br)
		got <- string(rest)
	}()
	select {
	case rest := <-got:
		t.Fatalf("the stream went on after its stall: %q", rest)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if rest := <-got; strings.Contains(rest, `"b"`) {
		t.Fatalf("got %q after the stall, want nothing more", rest)
	}
}
