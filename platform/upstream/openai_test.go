package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// golden compares got (JSON) with the file's JSON, ignoring formatting.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "openai", name)
	if *update {
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got: %v", err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", name, d)
	}
}

// readJSONFile decodes the JSON file at path into v.
func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func readV4Request(t *testing.T) *zhipuai.ChatCompletionRequest {
	t.Helper()
	var req zhipuai.ChatCompletionRequest
	readJSONFile(t, "testdata/openai/chat_request.v4.json", &req)
	return &req
}

func TestToOpenAIChatGolden(t *testing.T) {
	req := readV4Request(t)
	req.Model = "THUDM/glm-4v-9b"
	for _, stream := range []bool{false, true} {
		out, err := ToOpenAIChat(req, stream, FlavorVLLM)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out)
		name := "chat_request.engine.json"
		if stream {
			name = "chat_request_stream.engine.json"
		}
		golden(t, name, b)
	}
}

func TestFromOpenAIChatGolden(t *testing.T) {
	var in oaChatCompletion
	readJSONFile(t, "testdata/openai/chat_reply.engine.json", &in)
	out := FromOpenAIChat(&in, readV4Request(t), "glm-4-local")
	b, _ := json.Marshal(out)
	golden(t, "chat_reply.v4.json", b)
}

func TestStreamTranslationGolden(t *testing.T) {
	f, err := os.Open("testdata/openai/chat_stream.engine.sse")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	s := &oaStream{ctx: ctx, cancel: cancel, backend: "t", body: f, r: sse.NewReader(f),
		tr: newChunkTranslator(readV4Request(t), "glm-4-local")}
	datas, chunks, err := drain(t, s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "chat_stream.v4.json", []byte("["+string(bytes.Join(datas, []byte(",")))+"]"))
	// The rules the golden file encodes, checked explicitly too.
	finals := 0
	for _, c := range chunks {
		if len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant" {
			t.Fatalf("chunk without one assistant choice: %+v", c)
		}
		if c.Choices[0].FinishReason != "" {
			finals++
			if c.Usage == nil || c.Usage.TotalTokens != 215 {
				t.Fatalf("final chunk without the engine's usage: %+v", c)
			}
		}
	}
	calls := chunks[len(chunks)-2].Choices[0].Delta.ToolCalls
	if finals != 1 || len(calls) != 1 || calls[0].Function.Arguments != `{"city": "上海"}` || calls[0].ID != "chatcmpl-tool-5e" {
		t.Fatalf("finals %d, calls %+v", finals, calls)
	}
}

func TestImageURLConversion(t *testing.T) {
	png := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	cases := map[string]string{
		png:                           "data:image/png;base64," + png,
		"/9j/4AAQSkZJRgABAQEASABIAAD": "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQEASABIAAD",
		"R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==": "data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==",
		"UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAwA0JaQAA3AA/vuUAAA=": "data:image/webp;base64,UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAwA0JaQAA3AA/vuUAAA=",
		"https://example.com/a.png":                                    "https://example.com/a.png",
		"data:image/png;base64,AAAA":                                   "data:image/png;base64,AAAA",
	}
	for in, want := range cases {
		got, err := imageURLForEngine(in, FlavorVLLM)
		if err != nil || got != want {
			t.Fatalf("%.20s… → %.40s… %v, want %.40s…", in, got, err, want)
		}
	}
	if _, err := imageURLForEngine("bm90IGFuIGltYWdlIGF0IGFsbA==", FlavorVLLM); err == nil {
		t.Fatal("base64 of text accepted as an image")
	}
	_, err := imageURLForEngine("https://example.com/a.png", FlavorOllama)
	wantCode(t, err, "1214")
}

func TestVideoPartIs1214(t *testing.T) {
	req := userChat("m", "")
	req.Messages[0].Content = zhipuai.Content{Parts: []zhipuai.ContentPart{{Type: "video_url", VideoURL: &zhipuai.URLPart{URL: "https://x/v.mp4"}}}}
	_, err := ToOpenAIChat(req, false, "")
	wantCode(t, err, "1214")
}

func newEngineBackend(t *testing.T, e *scriptedEngine, flavor string) *OpenAI {
	t.Helper()
	b, err := NewOpenAI(OpenAIOptions{Name: "engine", BaseURL: e.URL(), APIKey: e.key, Flavor: flavor})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenAIChatAgainstEngine(t *testing.T) {
	e := newScriptedEngine(t, "THUDM/glm-4-9b-chat")
	e.key = "engine-secret"
	b := newEngineBackend(t, e, FlavorVLLM)
	e.enqueue(engineReply{pieces: []string{"你好", "！"}, usage: [2]int{12, 3}})
	req := userChat("THUDM/glm-4-9b-chat", "你好")
	req.RequestID = "r1"
	req.DoSample = zhipuai.Ptr(false)
	resp, body, err := b.Chat(context.Background(), platform.ChatRequest{Req: req, ClientModel: "glm-4"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Choices[0].Message.Content != "你好！" || resp.Model != "glm-4" || resp.RequestID != "r1" ||
		resp.Usage.TotalTokens != 15 || resp.Choices[0].Message.Role != "assistant" || resp.Created != 1718000000 {
		t.Fatalf("reply %s", body)
	}
	if bytes.Contains(body, []byte(`"object"`)) || bytes.Contains(body, []byte("THUDM")) {
		t.Fatalf("engine fields leak into the V4 reply: %s", body)
	}
	sent := e.requests()[0]
	if sent["temperature"] != 0.0 || sent["top_p"] != nil || sent["do_sample"] != nil || sent["request_id"] != nil {
		t.Fatalf("engine got %v", sent)
	}
}

func TestOpenAIStreamAgainstEngine(t *testing.T) {
	e := newScriptedEngine(t, "glm4")
	b := newEngineBackend(t, e, FlavorVLLM)
	e.enqueue(engineReply{pieces: []string{"a", "b", "c"}, usage: [2]int{5, 3}})
	datas, chunks := streamAll(t, b, platform.ChatRequest{Req: userChat("glm4", "x"), ClientModel: "glm-4"})
	if so, _ := e.requests()[0]["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatalf("include_usage not injected: %v", e.requests()[0])
	}
	if len(chunks) != 4 {
		t.Fatalf("%d chunks: %s", len(chunks), bytes.Join(datas, []byte("\n")))
	}
	for _, d := range datas {
		if bytes.Contains(d, []byte(`"choices":[]`)) || !bytes.Contains(d, []byte(`"model":"glm-4"`)) {
			t.Fatalf("bad V4 chunk %s", d)
		}
	}
	last := chunks[3]
	if last.Choices[0].FinishReason != "stop" || last.Usage.PromptTokens != 5 || last.Usage.CompletionTokens != 3 {
		t.Fatalf("final %s", datas[3])
	}
}

// An engine that ignores include_usage (older Ollama) still gives a V4
// final chunk, with an estimate.
func TestOpenAIStreamWithoutUsageEstimates(t *testing.T) {
	e := newScriptedEngine(t, "glm4")
	b := newEngineBackend(t, e, FlavorOllama)
	e.enqueue(engineReply{pieces: []string{"hello ", "world"}, noUsage: true})
	_, chunks := streamAll(t, b, platform.ChatRequest{Req: userChat("glm4", "say hello")})
	last := chunks[len(chunks)-1]
	if last.Usage == nil || last.Usage.PromptTokens == 0 || last.Usage.CompletionTokens == 0 || last.Choices[0].FinishReason != "stop" {
		t.Fatalf("final %+v", last)
	}
}

func TestOpenAIStreamToolCallAssembled(t *testing.T) {
	e := newScriptedEngine(t, "glm4")
	b := newEngineBackend(t, e, "")
	e.enqueue(engineReply{calls: []engineCall{
		{id: "chatcmpl-tool-1", name: "get_weather", args: []string{`{"ci`, `ty": "北`, `京"}`}},
		{id: "chatcmpl-tool-2", name: "get_time", args: []string{`{}`}},
	}, usage: [2]int{30, 10}})
	req := userChat("glm4", "x")
	req.Tools = []zhipuai.Tool{{Type: "function", Function: &zhipuai.FunctionDef{Name: "get_weather"}}}
	_, chunks := streamAll(t, b, platform.ChatRequest{Req: req})
	if len(chunks) != 2 {
		t.Fatalf("want one tool-call chunk and one final chunk, got %d", len(chunks))
	}
	calls := chunks[0].Choices[0].Delta.ToolCalls
	if len(calls) != 2 || calls[0].Function.Arguments != `{"city": "北京"}` || calls[0].ID != "chatcmpl-tool-1" ||
		*calls[1].Index != 1 || calls[1].Function.Name != "get_time" || chunks[0].Choices[0].FinishReason != "" {
		t.Fatalf("calls %+v", calls)
	}
	if chunks[1].Choices[0].FinishReason != "tool_calls" || chunks[1].Usage.TotalTokens != 40 {
		t.Fatalf("final %+v", chunks[1])
	}
}

func TestOpenAIErrorsMapped(t *testing.T) {
	cases := []struct {
		name      string
		rep       engineReply
		model     string
		ollama    bool
		code      string
		retryable bool
	}{
		{"context", engineReply{status: 400, errType: "BadRequestError", errMsg: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens (8000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion."}, "", false, "1261", false},
		{"llamacpp context", engineReply{status: 400, errType: "exceed_context_size_error", errMsg: "the request exceeds the available context size, try increasing it"}, "", false, "1261", false},
		{"bad request", engineReply{status: 400, errType: "BadRequestError", errMsg: "temperature must be non-negative"}, "", false, "1210", false},
		{"ollama tools", engineReply{status: 400, errType: "api_error", errMsg: "registry.ollama.ai/library/glm4:latest does not support tools"}, "", true, "1212", false},
		{"unknown model", engineReply{}, "other-model", false, "1211", true},
		{"rate", engineReply{status: 429, errType: "RateLimitError", errMsg: "too many"}, "", false, "1305", true},
		{"auth", engineReply{status: 401, errType: "Unauthorized", errMsg: "bad key"}, "", false, "500", true},
		{"5xx", engineReply{status: 500, errType: "InternalServerError", errMsg: "CUDA out of memory"}, "", false, "500", true},
	}
	for _, tc := range cases {
		e := newScriptedEngine(t, "glm4")
		e.ollama = tc.ollama
		b := newEngineBackend(t, e, "")
		model := "glm4"
		if tc.model != "" {
			model = tc.model
		}
		e.enqueue(tc.rep, tc.rep)
		_, _, err := b.Chat(context.Background(), platform.ChatRequest{Req: userChat(model, "x")})
		pe := wantCode(t, err, tc.code)
		if Retryable(err) != tc.retryable {
			t.Fatalf("%s: retryable %v", tc.name, Retryable(err))
		}
		if strings.Contains(pe.Message, "CUDA") || strings.Contains(pe.Message, "bad key") {
			t.Fatalf("%s: engine internals in message %q", tc.name, pe.Message)
		}
		_, err = b.ChatStream(context.Background(), platform.ChatRequest{Req: userChat(model, "x")})
		wantCode(t, err, tc.code)
	}
}

func TestOpenAIErrorMessageHidesEngineModel(t *testing.T) {
	err := engineError("e", 400, []byte(`{"object":"error","message":"model THUDM/glm-4-9b-chat cannot take logprobs","type":"BadRequestError","param":null,"code":400}`),
		"THUDM/glm-4-9b-chat", "glm-4")
	if strings.Contains(err.Message, "THUDM") || !strings.Contains(err.Message, "glm-4") {
		t.Fatalf("message %q", err.Message)
	}
}

func TestOpenAIBareBase64ImageReachesEngineAsDataURI(t *testing.T) {
	e := newScriptedEngine(t, "glm-4v-9b")
	b := newEngineBackend(t, e, FlavorVLLM)
	png := "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	req := userChat("glm-4v-9b", "")
	req.Messages[0].Content = zhipuai.Content{Parts: []zhipuai.ContentPart{
		{Type: "text", Text: "what is it"}, {Type: "image_url", ImageURL: &zhipuai.URLPart{URL: png}}}}
	if _, _, err := b.Chat(context.Background(), platform.ChatRequest{Req: req}); err != nil {
		t.Fatalf("the engine refused the translated image: %v", err)
	}
	got, _ := json.Marshal(e.requests()[0]["messages"])
	if !bytes.Contains(got, []byte("data:image/png;base64,"+png)) {
		t.Fatalf("engine got %s", got)
	}
}

func TestOpenAICutAndInBand(t *testing.T) {
	e := newScriptedEngine(t, "glm4")
	b := newEngineBackend(t, e, "")
	e.enqueue(engineReply{pieces: []string{"a", "b", "c"}, cutAfter: 2}, engineReply{pieces: []string{"a"}, inBand: true})
	s, err := b.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm4", "x")})
	if err != nil {
		t.Fatal(err)
	}
	_, chunks, err := drain(t, s)
	s.Close()
	if len(chunks) != 1 { // the opening role-only chunk is dropped
		t.Fatalf("%d chunks before the cut", len(chunks))
	}
	wantCode(t, err, "1234")

	s, err = b.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm4", "x")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _, err = drain(t, s)
	wantCode(t, err, "500")
}

func TestOpenAIEmbeddings(t *testing.T) {
	e := newScriptedEngine(t, "bge-m3")
	b := newEngineBackend(t, e, "")
	e.enqueue(engineReply{dims: 1024}, engineReply{dims: 1024, noUsage: true})
	resp, err := b.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "bge-m3", Input: zhipuai.EmbeddingInput{"a", "b"}, Dimensions: zhipuai.Ptr(1024), EncodingFormat: "base64"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 || resp.Data[1].Dims() != 1024 || resp.Usage.PromptTokens != 2 {
		t.Fatalf("resp %+v", resp.Usage)
	}
	if v, err := resp.Data[1].Floats(); err != nil || len(v) != 1024 || v[1] != 1 {
		t.Fatalf("vector 1: got %d numbers, [1] = %v (%v); want 1024, [1] = 1", len(v), v[1:2], err)
	}
	sent := e.requests()[0]
	if sent["dimensions"] != nil || sent["encoding_format"] != "float" {
		t.Fatalf("engine got %v", sent)
	}
	resp, err = b.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "bge-m3", Input: zhipuai.EmbeddingInput{"你好世界"}})
	if err != nil || resp.Usage.PromptTokens != 4 || resp.Usage.TotalTokens != 4 {
		t.Fatalf("usage estimate %+v %v", resp, err)
	}
	// Engines have no CogView: an openai backend is no image backend, so
	// an image model on it is refused when the router is configured.
	if platform.Serves(b, platform.KindImage) {
		t.Error("openai backend serves image models: got true, want false")
	}
}
