package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func newZhipuPair(t *testing.T) (*zhipuaitest.Server, *Zhipu) {
	t.Helper()
	srv := zhipuaitest.NewServer()
	t.Cleanup(srv.Close)
	z, err := NewZhipu(ZhipuOptions{Name: "cloud", BaseURL: srv.URL(), APIKey: srv.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	return srv, z
}

func userChat(model, text string) *zhipuai.ChatCompletionRequest {
	return &zhipuai.ChatCompletionRequest{Model: model, Messages: []zhipuai.Message{{Role: "user", Content: zhipuai.Content{Text: text}}}}
}

// rawOf encodes req the way a client would have sent it.
func rawOf(t *testing.T, req *zhipuai.ChatCompletionRequest) []byte {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// drain reads a stream to its end and returns the chunks' data lines and
// their decoded form. It checks what every platform.Chunk promises besides its
// bytes: Usage is the usage in Data, Tokens the estimate of Data's text.
func drain(t *testing.T, s platform.Stream) ([][]byte, []*zhipuai.ChatCompletionChunk, error) {
	t.Helper()
	var datas [][]byte
	var chunks []*zhipuai.ChatCompletionChunk
	for {
		ch, err := s.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return datas, chunks, nil
			}
			return datas, chunks, err
		}
		if len(ch.Data) == 0 {
			if ch.More {
				t.Fatal("got a chunk without data that says More, want only flush requests")
			}
			continue // a flush request (platform.Chunk.More)
		}
		datas = append(datas, append([]byte(nil), ch.Data...))
		chunks = append(chunks, checkChunk(t, ch))
	}
}

// streamAll opens a stream on b, reads it to the end, which must come
// without an error, and closes it.
func streamAll(t *testing.T, b platform.ChatBackend, req platform.ChatRequest) ([][]byte, []*zhipuai.ChatCompletionChunk) {
	t.Helper()
	s, err := b.ChatStream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	datas, chunks, err := drain(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return datas, chunks
}

// checkChunk decodes ch.Data and checks ch.Usage and ch.Tokens against it.
func checkChunk(t *testing.T, ch platform.Chunk) *zhipuai.ChatCompletionChunk {
	t.Helper()
	c := new(zhipuai.ChatCompletionChunk)
	if err := json.Unmarshal(ch.Data, c); err != nil {
		t.Fatalf("chunk %s: %v", ch.Data, err)
	}
	if !reflect.DeepEqual(c.Usage, ch.Usage) {
		t.Fatalf("chunk %s: Usage = %+v, want %+v", ch.Data, ch.Usage, c.Usage)
	}
	n := 0
	for i := range c.Choices {
		n += deltaTokens(&c.Choices[i].Delta)
	}
	if ch.Tokens != n {
		t.Fatalf("chunk %s: Tokens = %d, want %d", ch.Data, ch.Tokens, n)
	}
	return c
}

func wantCode(t *testing.T, err error, code string) *platform.Error {
	t.Helper()
	var pe *platform.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *platform.Error", err, err)
	}
	if pe.Code != code {
		t.Fatalf("code = %s (%v), want %s", pe.Code, pe, code)
	}
	return pe
}

func TestZhipuChatPassesRawBodyAndReply(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.Text("你好，我是智谱清言").WithUsage(7, 9))
	req := userChat("glm-4", "你好")
	req.RequestID = "req-1"
	raw := append(rawOf(t, req), ' ', '\n') // the exact client bytes go out
	resp, body, err := z.Chat(context.Background(), platform.ChatRequest{Req: req, Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "你好，我是智谱清言" || resp.Usage.TotalTokens != 16 {
		t.Fatalf("reply = %+v", resp)
	}
	var back zhipuai.ChatCompletion
	if err := json.Unmarshal(body, &back); err != nil || back.Choices[0].Message.Content != resp.Choices[0].Message.Content {
		t.Fatalf("body %s does not decode to the reply: %v", body, err)
	}
	got := srv.Requests()
	if len(got) != 1 || !bytes.Equal(got[0].Body, raw) {
		t.Fatalf("upstream got %q, want the raw client body", got[0].Body)
	}
	if h := got[0].Header.Get("Authorization"); h != "Bearer "+srv.APIKey {
		t.Fatalf("Authorization = %q, want the raw operator key", h)
	}
}

func TestZhipuDropsStreamOptionsAndClamps(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.Text("ok"))
	req := userChat("glm-4", "hi")
	req.Temperature = zhipuai.Ptr(0.0)
	req.TopP = zhipuai.Ptr(1.0)
	raw := []byte(`{"model":"glm-4","messages":[{"role":"user","content":"hi"}],"temperature":0,"top_p":1,"stream_options":{"include_usage":true}}`)
	if _, _, err := z.Chat(context.Background(), platform.ChatRequest{Req: req, Raw: raw}); err != nil {
		t.Fatal(err)
	}
	body := srv.Requests()[0].Body
	if bytes.Contains(body, []byte("stream_options")) {
		t.Fatalf("stream_options reached the cloud: %s", body)
	}
	var sent zhipuai.ChatCompletionRequest
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	if *sent.Temperature != 0.01 || *sent.TopP != 0.99 || sent.DoSample == nil || *sent.DoSample {
		t.Fatalf("sampling not clamped: %s", body)
	}
}

func TestZhipuAliasRewritesModel(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.Text("hi"), zhipuaitest.Text("hello"))
	req := userChat("glm-4-plus", "x")
	resp, body, err := z.Chat(context.Background(), platform.ChatRequest{Req: req, ClientModel: "house-model"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "house-model" || !bytes.Contains(body, []byte(`"model":"house-model"`)) {
		t.Fatalf("model not rewritten: %s", body)
	}
	if srv.Requests()[0].Chat.Model != "glm-4-plus" {
		t.Fatalf("upstream got model %q", srv.Requests()[0].Chat.Model)
	}
	datas, _ := streamAll(t, z, platform.ChatRequest{Req: req, ClientModel: "house-model"})
	for _, d := range datas {
		if !bytes.Contains(d, []byte(`"model":"house-model"`)) {
			t.Fatalf("chunk keeps the engine name: %s", d)
		}
	}
}

func TestZhipuStreamPassThrough(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.Text("你好呀").WithChunks("你", "好", "呀").WithUsage(3, 3))
	req := userChat("glm-4", "hi")
	req.Stream = true
	datas, chunks := streamAll(t, z, platform.ChatRequest{Req: req, Raw: rawOf(t, req)})
	if len(chunks) != 4 {
		t.Fatalf("got %d chunks, want 3 content + 1 final", len(chunks))
	}
	var text strings.Builder
	for i, c := range chunks {
		text.WriteString(c.Choices[0].Delta.Content)
		if c.Choices[0].Delta.Role != "assistant" {
			t.Fatalf("chunk %d has no assistant role", i)
		}
		// Data is a single JSON line that decodes to the same chunk.
		var back zhipuai.ChatCompletionChunk
		if bytes.ContainsAny(datas[i], "\r\n") || json.Unmarshal(datas[i], &back) != nil || back.ID != c.ID {
			t.Fatalf("data %d is not the chunk's JSON line: %q", i, datas[i])
		}
	}
	last := chunks[3]
	if text.String() != "你好呀" || last.Choices[0].FinishReason != "stop" || last.Usage == nil || last.Usage.TotalTokens != 6 {
		t.Fatalf("text %q final %+v", text.String(), last)
	}
	if srv.Requests()[0].Chat == nil || !srv.Requests()[0].Chat.Stream {
		t.Fatal("upstream was not asked to stream")
	}
}

func TestZhipuStreamToolCall(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.ToolCalls(zhipuai.ToolCall{Function: zhipuai.FunctionCall{Name: "get_weather", Arguments: `{"city":"北京"}`}}))
	req := userChat("glm-4", "北京天气")
	_, chunks := streamAll(t, z, platform.ChatRequest{Req: req})
	var calls []zhipuai.ToolCall
	finals := 0
	for _, c := range chunks {
		calls = append(calls, c.Choices[0].Delta.ToolCalls...)
		if c.Choices[0].FinishReason != "" {
			finals++
			if c.Usage == nil || c.Choices[0].FinishReason != "tool_calls" {
				t.Fatalf("final chunk %+v", c)
			}
		}
	}
	if finals != 1 || len(calls) != 1 || calls[0].Function.Arguments != `{"city":"北京"}` || calls[0].ID == "" {
		t.Fatalf("finals %d calls %+v", finals, calls)
	}
}

func TestZhipuSyncToolCall(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.ToolCalls(zhipuai.ToolCall{Function: zhipuai.FunctionCall{Name: "f", Arguments: `{}`}}))
	resp, _, err := z.Chat(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].FinishReason != "tool_calls" || resp.Choices[0].Message.ToolCalls[0].Function.Name != "f" {
		t.Fatalf("reply %+v", resp)
	}
}

func TestZhipuErrorsKeepCodes(t *testing.T) {
	cases := []struct {
		reply     zhipuaitest.Reply
		code      string
		retryable bool
		msg       string
	}{
		{zhipuaitest.Error(400, "1261", "Prompt 超长"), "1261", false, "Prompt 超长"},
		{zhipuaitest.Error(400, "1214", "messages 参数非法"), "1214", false, "messages 参数非法"},
		{zhipuaitest.Error(400, "1301", "系统检测到输入或生成内容可能包含不安全或敏感内容"), "1301", false, ""},
		// The operator's key, not the client's: never a 1002 to the client.
		{zhipuaitest.Error(401, "1002", "Authorization Token非法，请确认Authorization Token正确传递。"), "500", true, "upstream authentication failed"},
		{zhipuaitest.Error(429, "1113", "您的账户已欠费，请充值后重试。"), "500", true, "upstream account unavailable"},
		{zhipuaitest.Error(429, "1302", "您当前使用该API的并发数过高"), "1305", true, ""},
		{zhipuaitest.Error(500, "500", "Internal Error"), "500", true, "upstream error"},
	}
	for _, tc := range cases {
		srv, z := newZhipuPair(t)
		srv.Enqueue(tc.reply, tc.reply)
		_, _, err := z.Chat(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
		pe := wantCode(t, err, tc.code)
		if Retryable(err) != tc.retryable {
			t.Fatalf("%s: retryable = %v", tc.code, Retryable(err))
		}
		if tc.msg != "" && pe.Message != tc.msg {
			t.Fatalf("%s: message %q, want %q", tc.code, pe.Message, tc.msg)
		}
		if strings.Contains(pe.Message, srv.APIKey) {
			t.Fatal("message leaks the key")
		}
		// Streams fail the same way, before any chunk.
		_, err = z.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
		wantCode(t, err, tc.code)
	}
}

func TestZhipuConnectionFailureIsRetryable1234(t *testing.T) {
	srv := zhipuaitest.NewServer()
	url := srv.URL()
	srv.Close() // nothing listens there any more
	z, _ := NewZhipu(ZhipuOptions{BaseURL: url, APIKey: "a.b"})
	_, _, err := z.Chat(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
	wantCode(t, err, "1234")
	if !Retryable(err) {
		t.Fatal("connection failure must be retryable")
	}
	_, err = z.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
	wantCode(t, err, "1234")
}

func TestZhipuCutStreamIsAnErrorNotEOF(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.Text("abcdef").WithChunks("ab", "cd", "ef").CutAfter(2))
	s, err := z.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, chunks, err := drain(t, s)
	if len(chunks) != 2 {
		t.Fatalf("got %d chunks before the cut, want 2", len(chunks))
	}
	wantCode(t, err, "1234")
	if _, again := s.Next(); again == nil || errors.Is(again, io.EOF) {
		t.Fatalf("after a cut Next returns %v", again)
	}
}

func TestZhipuInBandError(t *testing.T) {
	srv, z := newZhipuPair(t)
	srv.Enqueue(zhipuaitest.InBandError("1301", "内容不安全").WithChunks("a", "b"))
	s, err := z.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, chunks, err := drain(t, s)
	if len(chunks) != 2 {
		t.Fatalf("chunks before the error: %d", len(chunks))
	}
	pe := wantCode(t, err, "1301")
	if pe.Message != "内容不安全" {
		t.Fatalf("message %q", pe.Message)
	}
}

func TestZhipuEmbeddingsAndImages(t *testing.T) {
	srv, z := newZhipuPair(t)
	resp, err := z.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"你好", "hello"}, EncodingFormat: "base64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 || resp.Data[0].Dims() != 1024 {
		t.Fatalf("embeddings %d × %d", len(resp.Data), resp.Data[0].Dims())
	}
	if e := srv.Requests()[0].Embedding; e == nil || e.EncodingFormat != "" {
		t.Fatalf("encoding_format should not be forwarded: %s", srv.Requests()[0].Body)
	}
	img, err := z.Images(context.Background(), &zhipuai.ImageRequest{Model: "cogview-3", Prompt: "一只猫"})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Data) == 0 || !strings.HasPrefix(img.Data[0].URL, "http") || img.Created == 0 {
		t.Fatalf("images %+v", img)
	}
	if srv.Requests()[1].Path != "/images/generations" {
		t.Fatalf("path %s", srv.Requests()[1].Path)
	}
}

// A finish_reason that arrives before usage (2025 traffic, docs/v4.md §4) is
// moved onto the usage chunk, so exactly one chunk carries finish_reason.
func TestV4StreamHoldsEarlyFinish(t *testing.T) {
	body := "data: {\"id\":\"1\",\"created\":5,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"hi\"}}]}\n\n" +
		"data: {\"id\":\"1\",\"created\":5,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\",\"delta\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"index\":0,\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n" +
		"data: {\"id\":\"1\",\"created\":5,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\",\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n" +
		"data: [DONE]\n\n"
	_, chunks := runV4Stream(t, body)
	if len(chunks) != 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	if chunks[1].Choices[0].FinishReason != "" || len(chunks[1].Choices[0].Delta.ToolCalls) != 1 {
		t.Fatalf("tool-call chunk %+v", chunks[1])
	}
	if chunks[2].Choices[0].FinishReason != "tool_calls" || chunks[2].Usage.TotalTokens != 7 {
		t.Fatalf("final %+v", chunks[2])
	}
}

// A stream that ends with [DONE] but never sent usage gets a final chunk
// with finish_reason and an estimated usage.
func TestV4StreamSynthesisesUsage(t *testing.T) {
	body := "data: {\"id\":\"1\",\"created\":5,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"你好世界\"}}]}\n\n" +
		"data: {\"id\":\"1\",\"created\":5,\"model\":\"glm-4\",\"choices\":[{\"index\":0,\"finish_reason\":\"length\",\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		"data: [DONE]\n\n"
	datas, chunks := runV4Stream(t, body)
	if len(chunks) != 2 {
		t.Fatalf("%d chunks: %q", len(chunks), datas)
	}
	f := chunks[1]
	if f.Choices[0].FinishReason != "length" || f.Usage == nil || f.Usage.CompletionTokens != 4 || f.Usage.PromptTokens == 0 || f.ID != "1" {
		t.Fatalf("final %s", datas[1])
	}
}

func runV4Stream(t *testing.T, body string) ([][]byte, []*zhipuai.ChatCompletionChunk) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp := &http.Response{Body: io.NopCloser(strings.NewReader(body))}
	s := newV4Stream(ctx, cancel, "t", resp, platform.ChatRequest{Req: userChat("glm-4", "hello")})
	defer s.Close()
	datas, chunks, err := drain(t, s)
	if err != nil {
		t.Fatal(err)
	}
	return datas, chunks
}

// TestZhipuEmbeddingsReplyLease: a reply's buffer is reused only through a
// lease given back. Without a lease, or before Return, an earlier reply's
// vectors stay as they were whatever later calls read; with leases given
// back, concurrent calls each get their own input's vectors.
func TestZhipuEmbeddingsReplyLease(t *testing.T) {
	_, z := newZhipuPair(t)
	ctx := context.Background()
	inputs := []string{"alpha", "beta", "gamma", "delta"}
	want := map[string][]byte{}
	for _, in := range inputs {
		resp, err := z.Embeddings(ctx, &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{in}})
		if err != nil {
			t.Fatal(err)
		}
		want[in] = bytes.Clone(resp.Data[0].Raw)
	}
	if bytes.Equal(want["alpha"], want["beta"]) {
		t.Fatal("two inputs got the same vector; the test needs different ones")
	}
	call := func(ctx context.Context, in string) *zhipuai.EmbeddingResponse {
		t.Helper()
		resp, err := z.Embeddings(ctx, &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{in}})
		if err != nil {
			t.Error(err)
			return nil
		}
		if got := resp.Data[0].Raw; !bytes.Equal(got, want[in]) {
			t.Errorf("%s: got vector %.40s…, want %.40s…", in, got, want[in])
		}
		return resp
	}

	// Held replies: a lease not yet given back, and no lease at all.
	var held platform.ReplyLease
	first := call(platform.WithReplyLease(ctx, &held), "alpha")
	plain := call(ctx, "beta")
	for range 20 {
		var l platform.ReplyLease
		call(platform.WithReplyLease(ctx, &l), "gamma")
		l.Return()
		call(ctx, "delta")
	}
	if !bytes.Equal(first.Data[0].Raw, want["alpha"]) || !bytes.Equal(plain.Data[0].Raw, want["beta"]) {
		t.Fatalf("a reply still held changed under later calls: got %.40s… and %.40s…", first.Data[0].Raw, plain.Data[0].Raw)
	}
	held.Return()

	// Concurrent calls, each giving its buffer back after checking it.
	done := make(chan struct{})
	for w := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 25 {
				var l platform.ReplyLease
				call(platform.WithReplyLease(ctx, &l), inputs[(w+i)%len(inputs)])
				l.Return()
			}
		}()
	}
	for range 8 {
		<-done
	}
}
