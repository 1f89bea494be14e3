package zhipuai_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

var update = flag.Bool("update", false, "rewrite testdata/*_request.json from what the SDK sends")

// TestGoldenRequests checks, byte for byte, the JSON bodies the SDK puts on
// the wire for the tutorial's calls. The platform side decodes the same
// files (testdata/*_request.json).
func TestGoldenRequests(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	c := newClient(t, srv)
	ctx := context.Background()

	calls := []struct {
		name string
		call func() error
	}{
		{"chat_joke", func() error { _, err := c.Chat.Completions.Create(ctx, jokeRequest()); return err }},
		{"chat_system_joke", func() error { _, err := c.Chat.Completions.Create(ctx, systemJokeRequest()); return err }},
		{"async_skynet", func() error { _, err := c.Chat.AsyncCompletions.Create(ctx, skynetRequest()); return err }},
		{"chat_stream", func() error {
			s, err := c.Chat.Completions.Stream(ctx, jokeRequest())
			if err != nil {
				return err
			}
			defer s.Close()
			for s.Next() {
			}
			return s.Err()
		}},
		{"chat_weather_tools", func() error { _, err := c.Chat.Completions.Create(ctx, weatherRequest()); return err }},
		{"chat_vision", func() error { _, err := c.Chat.Completions.Create(ctx, visionRequest(t)); return err }},
		{"embedding_hello", func() error { _, err := c.Embeddings.Create(ctx, embeddingRequest()); return err }},
	}
	for i, tc := range calls {
		if err := tc.call(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		reqs := srv.Requests()
		if len(reqs) != i+1 {
			t.Fatalf("%s: server saw %d requests", tc.name, len(reqs))
		}
		got := append(bytes.Clone(reqs[i].Body), '\n')
		path := filepath.Join("testdata", tc.name+"_request.json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: body differs from %s\n got: %s\nwant: %s", tc.name, path, got, want)
		}
	}
}

// fileServer answers every request with one testdata file.
func fileServer(t *testing.T, status int, contentType string, files map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := files[strings.TrimPrefix(r.URL.Path, "/api/paas/v4")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		body, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func staticClient(t *testing.T, srv *httptest.Server) *zhipuai.Client {
	t.Helper()
	c, err := zhipuai.NewClient(zhipuai.WithAPIKey("id.secret"), zhipuai.WithBaseURL(srv.URL+"/api/paas/v4"),
		zhipuai.WithMaxRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestGoldenReplies decodes the reply transcripts the platform side must
// produce.
func TestGoldenReplies(t *testing.T) {
	ctx := context.Background()
	const js = "application/json; charset=UTF-8"

	t.Run("chat_weather_tools", func(t *testing.T) {
		c := staticClient(t, fileServer(t, 200, js, map[string]string{"/chat/completions": "chat_weather_tools_response.json"}))
		resp, err := c.Chat.Completions.Create(ctx, weatherRequest())
		if err != nil {
			t.Fatal(err)
		}
		ch := resp.Choices[0]
		if ch.FinishReason != zhipuai.FinishToolCalls || ch.Message.Content != "" || len(ch.Message.ToolCalls) != 1 {
			t.Fatalf("choice = %+v", ch)
		}
		tc := ch.Message.ToolCalls[0]
		if tc.ID != "call_8313806677844095616" || tc.Function.Name != "get_current_weather" ||
			tc.Function.Arguments != `{"location":"北京","unit":"c"}` || tc.Type != "function" {
			t.Fatalf("tool call = %+v", tc)
		}
	})
	t.Run("chat_vision", func(t *testing.T) {
		c := staticClient(t, fileServer(t, 200, js, map[string]string{"/chat/completions": "chat_vision_response.json"}))
		resp, err := c.Chat.Completions.Create(ctx, visionRequest(t))
		if err != nil {
			t.Fatal(err)
		}
		if resp.ID != "8239375684858666781" || resp.Model != "glm-4v" || resp.Created != 1703487403 ||
			resp.Usage != (zhipuai.Usage{PromptTokens: 1037, CompletionTokens: 37, TotalTokens: 1074}) {
			t.Fatalf("resp = %+v", resp)
		}
	})
	t.Run("async", func(t *testing.T) {
		c := staticClient(t, fileServer(t, 200, js, map[string]string{
			"/async/chat/completions":                            "async_submit_response.json",
			"/async-result/476916963227608958353256502217868346": "async_result_success_response.json",
			"/async-result/processing":                           "async_result_processing_response.json",
			"/async-result/fail":                                 "async_result_fail_response.json",
		}))
		st, err := c.Chat.AsyncCompletions.Create(ctx, skynetRequest())
		if err != nil {
			t.Fatal(err)
		}
		if st.ID != "476916963227608958353256502217868346" || st.RequestID != "8353256502217868345" || st.TaskStatus != zhipuai.TaskProcessing {
			t.Fatalf("status = %+v", st)
		}
		res, err := c.Chat.AsyncCompletions.RetrieveCompletionResult(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if res.TaskStatus != zhipuai.TaskSuccess || !strings.HasPrefix(res.Choices[0].Message.Content, "Argentina") || res.Usage.TotalTokens != 138 {
			t.Fatalf("result = %+v", res)
		}
		res, err = c.Chat.AsyncCompletions.RetrieveCompletionResult(ctx, "processing")
		if err != nil || res.TaskStatus != zhipuai.TaskProcessing || res.Choices != nil {
			t.Fatalf("processing = %+v, %v", res, err)
		}
		_, err = c.Chat.AsyncCompletions.Wait(ctx, "fail")
		var fe *zhipuai.TaskFailedError
		if !errors.As(err, &fe) || fe.Code != "1301" || fe.TaskID != "fail" || !strings.Contains(err.Error(), "1301") {
			t.Fatalf("FAIL: err = %v", err)
		}
	})
	t.Run("embeddings", func(t *testing.T) {
		c := staticClient(t, fileServer(t, 200, js, map[string]string{"/embeddings": "embedding_hello_response.json"}))
		resp, err := c.Embeddings.Create(ctx, embeddingRequest())
		if err != nil {
			t.Fatal(err)
		}
		v := resp.Data[0].Embedding
		if len(v) != 1024 || v[0] != 8.075759978964925e-05 || v[1023] != -0.0017411574954167008 {
			t.Fatalf("vector: len %d, first %v, last %v", len(v), v[0], v[len(v)-1])
		}
	})
	t.Run("embeddings_base64", func(t *testing.T) {
		c := staticClient(t, fileServer(t, 200, js, map[string]string{"/embeddings": "embedding_base64_response.json"}))
		resp, err := c.Embeddings.Create(ctx, &zhipuai.EmbeddingRequest{Model: "embedding-3", Input: zhipuai.EmbeddingInput{"a", "b"},
			Dimensions: zhipuai.Ptr(256), EncodingFormat: zhipuai.EncodingBase64})
		if err != nil {
			t.Fatal(err)
		}
		want := []float64{0.5, -0.25, 0.125, 1}
		for i := range 2 {
			got := resp.Data[i].Embedding
			if len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
				t.Fatalf("data[%d] = %v, want %v", i, got, want)
			}
		}
	})
	t.Run("images_and_models", func(t *testing.T) {
		c := staticClient(t, fileServer(t, 200, js, map[string]string{
			"/images/generations": "images_cogview_response.json", "/models": "models_response.json"}))
		img, err := c.Images.Generations(ctx, &zhipuai.ImageRequest{Model: "cogview-3", Prompt: "一只可爱的小猫咪"})
		if err != nil || img.Created != 1706092500 || !strings.HasPrefix(img.Data[0].URL, "https://") {
			t.Fatalf("images = %+v, %v", img, err)
		}
		ml, err := c.Models.List(ctx)
		if err != nil || len(ml.Data) != 2 || ml.Data[0].ID != "glm-4" {
			t.Fatalf("models = %+v, %v", ml, err)
		}
	})
	for _, tc := range []struct {
		file, code string
		status     int
	}{
		{"error_1113_response.json", "1113", 429},
		{"error_1002_response.json", "1002", 401},
		{"error_1261_response.json", "1261", 400},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c := staticClient(t, fileServer(t, tc.status, js, map[string]string{"/chat/completions": tc.file}))
			_, err := c.Chat.Completions.Create(ctx, jokeRequest())
			var apiErr *zhipuai.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != tc.status || apiErr.Code != tc.code || apiErr.Message == "" {
				t.Fatalf("err = %#v", err)
			}
			if tc.code == "1261" && (apiErr.RequestID != "8313807536837492499" ||
				err.Error() != "zhipuai: 400 1261 Prompt 超长 (request_id 8313807536837492499)") {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}

// streamFile opens a stream served from a testdata SSE transcript.
func streamFile(t *testing.T, file string) *zhipuai.Stream[zhipuai.ChatCompletionChunk] {
	t.Helper()
	c := staticClient(t, fileServer(t, 200, "text/event-stream;charset=UTF-8", map[string]string{"/chat/completions": file}))
	s, err := c.Chat.Completions.Stream(context.Background(), jokeRequest())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestGoldenStreams(t *testing.T) {
	t.Run("tutorial", func(t *testing.T) {
		s := streamFile(t, "stream_tutorial.sse")
		var acc zhipuai.ChatCompletionAccumulator
		var pieces []string
		for s.Next() {
			ch := s.Current()
			if !acc.AddChunk(ch) {
				t.Fatal("chunk rejected")
			}
			pieces = append(pieces, ch.Choices[0].Delta.Content)
		}
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		if strings.Join(pieces, "|") != "土|星|, |主要由|" {
			t.Fatalf("pieces = %q", pieces)
		}
		got := acc.ChatCompletion
		if got.ID != "8313807536837492492" || got.Created != 1706092316 || got.Model != "glm-4" ||
			got.Choices[0].Message.Content != "土星, 主要由" || got.Choices[0].FinishReason != zhipuai.FinishLength ||
			got.Choices[0].Message.Role != "assistant" ||
			got.Usage != (zhipuai.Usage{PromptTokens: 60, CompletionTokens: 100, TotalTokens: 160}) {
			t.Fatalf("accumulated = %+v", got)
		}
	})
	t.Run("tool_call", func(t *testing.T) {
		s := streamFile(t, "stream_tool_call.sse")
		var acc zhipuai.ChatCompletionAccumulator
		var finished []zhipuai.FinishedToolCall
		for s.Next() {
			acc.AddChunk(s.Current())
			finished = append(finished, acc.JustFinishedToolCalls()...)
		}
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		if len(finished) != 1 || finished[0].Name != "get_current_weather" || finished[0].Arguments != `{"location":"北京","unit":"c"}` ||
			finished[0].ID != "call_8313806677844095616" {
			t.Fatalf("finished = %+v", finished)
		}
		if acc.Choices[0].FinishReason != zhipuai.FinishToolCalls || acc.Usage.TotalTokens != 137 {
			t.Fatalf("acc = %+v", acc.ChatCompletion)
		}
	})
	t.Run("thinking", func(t *testing.T) {
		// A thinking model's stream (docs/v4.md §11): reasoning first, then
		// content, usage with both details on the final chunk.
		s := streamFile(t, "stream_thinking.sse")
		var acc zhipuai.ChatCompletionAccumulator
		var reasoning []string
		for s.Next() {
			acc.AddChunk(s.Current())
			if r, ok := acc.JustFinishedReasoning(); ok {
				reasoning = append(reasoning, r)
			}
		}
		if s.Err() != nil {
			t.Fatal(s.Err())
		}
		m := acc.Choices[0].Message
		if m.ReasoningContent != "用户问六乘七。" || m.Content != "42" || len(reasoning) != 1 || reasoning[0] != m.ReasoningContent {
			t.Fatalf("got reasoning %q (finished %q) content %q, want 用户问六乘七。 then 42", m.ReasoningContent, reasoning, m.Content)
		}
		if u := acc.Usage; u.CachedTokens() != 1024 || u.ReasoningTokens() != 7 || u.PromptTokens != 1210 || u.CompletionTokens != 9 {
			t.Fatalf("got usage %+v, want 1210 (1024 cached) and 9 (7 reasoning)", u)
		}
	})
	t.Run("inband_error", func(t *testing.T) {
		s := streamFile(t, "stream_inband_error.sse")
		n := 0
		for s.Next() {
			n++
		}
		var apiErr *zhipuai.APIError
		if n != 2 || !errors.As(s.Err(), &apiErr) || apiErr.Code != "1301" || apiErr.StatusCode != 200 {
			t.Fatalf("chunks %d, err %v", n, s.Err())
		}
	})
	t.Run("cut", func(t *testing.T) {
		s := streamFile(t, "stream_cut.sse")
		n := 0
		for s.Next() {
			n++
		}
		if n != 2 || !errors.Is(s.Err(), io.ErrUnexpectedEOF) {
			t.Fatalf("chunks %d, err %v", n, s.Err())
		}
	})
}
