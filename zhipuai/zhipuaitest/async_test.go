package zhipuaitest_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// submit posts an async chat and returns the task status.
func submit(t *testing.T, srv *zhipuaitest.Server, req zhipuai.ChatCompletionRequest) zhipuai.AsyncTaskStatus {
	t.Helper()
	resp, body := call(t, srv, "POST", "/async/chat/completions", bearer(srv), req)
	if resp.StatusCode != 200 {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	var st zhipuai.AsyncTaskStatus
	decode(t, body, &st)
	return st
}

// poll fetches a task result and returns it with the raw body.
func poll(t *testing.T, srv *zhipuaitest.Server, id string) (zhipuai.AsyncCompletion, []byte) {
	t.Helper()
	resp, body := call(t, srv, "GET", "/async-result/"+id, bearer(srv), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("poll: %d %s", resp.StatusCode, body)
	}
	// The Python SDK needs media type application/json here (docs/v4.md §10).
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var ac zhipuai.AsyncCompletion
	decode(t, body, &ac)
	return ac, body
}

func TestAsyncProcessingThenSuccess(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.SetAsyncPolls(2)
	srv.Enqueue(zhipuaitest.Text("阿根廷").WithUsage(50, 4))
	req := chatReq("Who won the 2022 World Cup?", false)
	req.RequestID = "req-1"
	st := submit(t, srv, req)
	if st.ID == "" || st.RequestID != "req-1" || st.Model != "glm-4" || st.TaskStatus != "PROCESSING" {
		t.Fatalf("submit reply %+v", st)
	}
	if srv.Pending() != 0 {
		t.Error("the reply was not taken at submit time")
	}
	for i := range 2 {
		ac, body := poll(t, srv, st.ID)
		if ac.TaskStatus != "PROCESSING" || ac.ID != st.ID || len(ac.Choices) != 0 || bytes.Contains(body, []byte("usage")) {
			t.Errorf("poll %d: %s", i, body)
		}
	}
	for range 2 { // the final state is stable
		ac, _ := poll(t, srv, st.ID)
		if ac.TaskStatus != "SUCCESS" || ac.RequestID != "req-1" || ac.Model != "glm-4" || len(ac.Choices) != 1 ||
			ac.Choices[0].Message.Content != "阿根廷" || ac.Choices[0].Message.Role != "assistant" ||
			ac.Choices[0].FinishReason != "stop" || ac.Usage == nil || ac.Usage.TotalTokens != 54 {
			t.Errorf("final %+v", ac)
		}
	}
}

func TestAsyncDefaultPollsAndToolCalls(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.ToolCalls(zhipuai.ToolCall{Function: zhipuai.FunctionCall{Name: "f", Arguments: "{}"}}))
	st := submit(t, srv, chatReq("x", false))
	if st.RequestID != st.ID {
		t.Errorf("request_id %q, want = id without a client value", st.RequestID)
	}
	if ac, _ := poll(t, srv, st.ID); ac.TaskStatus != "PROCESSING" {
		t.Errorf("first poll %q, want PROCESSING (default 1 poll)", ac.TaskStatus)
	}
	ac, body := poll(t, srv, st.ID)
	if ac.TaskStatus != "SUCCESS" || ac.Choices[0].FinishReason != "tool_calls" || len(ac.Choices[0].Message.ToolCalls) != 1 {
		t.Errorf("final %s", body)
	}
	if !bytes.Contains(body, []byte(`"content":null`)) {
		t.Errorf("tool-call content not null: %s", body)
	}
}

func TestAsyncFail(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.SetAsyncPolls(0)
	srv.Enqueue(zhipuaitest.Text("unused").Fail("1234", "网络错误"), zhipuaitest.InBandError("1301", "敏感内容"))
	for _, want := range []string{"1234", "1301"} {
		st := submit(t, srv, chatReq("x", false))
		ac, body := poll(t, srv, st.ID)
		if ac.TaskStatus != "FAIL" || ac.Error == nil || string(ac.Error.Code) != want || ac.Error.Message == "" ||
			len(ac.Choices) != 0 {
			t.Errorf("FAIL result %s", body)
		}
	}
}

func TestAsyncSubmitErrorAndUnknownTask(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.Error(429, "1113", "您的账户已欠费，请充值后重试。"))
	resp, body := call(t, srv, "POST", "/async/chat/completions", bearer(srv), chatReq("x", false))
	wantError(t, resp, body, 429, "1113")
	resp, body = call(t, srv, "GET", "/async-result/123456", bearer(srv), nil)
	wantError(t, resp, body, http.StatusNotFound, "1214")
	resp, body = call(t, srv, "GET", "/async-result/123456", "", nil)
	wantError(t, resp, body, http.StatusUnauthorized, "1001")
}
