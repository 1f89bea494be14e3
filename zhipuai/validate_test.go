package zhipuai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateChatRequest(t *testing.T) {
	good := func() *ChatCompletionRequest {
		return &ChatCompletionRequest{Model: "glm-4", Messages: []Message{SystemMessage("s"), UserMessage("u")}}
	}
	for _, tc := range []struct {
		field string
		kind  ValidationKind
		edit  func(r *ChatCompletionRequest)
	}{
		{"model", MissingField, func(r *ChatCompletionRequest) { r.Model = "" }},
		{"messages", MissingField, func(r *ChatCompletionRequest) { r.Messages = nil }},
		{"messages", InvalidField, func(r *ChatCompletionRequest) { r.Messages = []Message{SystemMessage("s"), AssistantMessage("a")} }},
		{"messages[1].role", InvalidField, func(r *ChatCompletionRequest) { r.Messages[1].Role = "function" }},
		{"messages[1].role", MissingField, func(r *ChatCompletionRequest) { r.Messages[1].Role = "" }},
		{"messages[2].tool_call_id", InvalidField, func(r *ChatCompletionRequest) { r.Messages = append(r.Messages, ToolMessage("", "42")) }},
		{"messages[1].tool_calls", InvalidField, func(r *ChatCompletionRequest) {
			r.Messages[1].ToolCalls = []ToolCall{{Function: FunctionCall{Name: "f"}}}
		}},
		{"messages[2].tool_calls[0].function.name", InvalidField, func(r *ChatCompletionRequest) {
			r.Messages = append(r.Messages, AssistantToolCallsMessage(ToolCall{ID: "c"}))
		}},
		{"messages[1].content[1].image_url.url", InvalidField, func(r *ChatCompletionRequest) {
			r.Messages[1] = UserParts(TextPart("what?"), ImageURLPart(""))
		}},
		{"messages[1].content[0].image_url.url", InvalidField, func(r *ChatCompletionRequest) {
			r.Messages[1] = UserParts(ContentPart{Type: PartImageURL})
		}},
		{"messages[1].content[0].video_url.url", InvalidField, func(r *ChatCompletionRequest) { r.Messages[1] = UserParts(VideoURLPart("")) }},
		{"messages[1].content[0].type", InvalidField, func(r *ChatCompletionRequest) { r.Messages[1] = UserParts(ContentPart{Type: "audio"}) }},
		{"messages[1].content", InvalidField, func(r *ChatCompletionRequest) { r.Messages[1] = UserParts() }},
		{"messages[1].content", InvalidField, func(r *ChatCompletionRequest) { r.Messages[1] = UserMessage("") }},
		{"messages[1].content[0].type", MissingField, func(r *ChatCompletionRequest) { r.Messages[1] = UserParts(ContentPart{Text: "x"}) }},
		{"messages[1].content[0].image_url.url", InvalidField, func(r *ChatCompletionRequest) { r.Messages[1] = UserParts(ImageURLPart("  ")) }},
		{"messages[2].content[0].type", InvalidField, func(r *ChatCompletionRequest) {
			r.Messages = append(r.Messages, Message{Role: RoleAssistant, Content: Content{Parts: []ContentPart{ImageURLPart("https://a/b.png")}}})
		}},
		{"messages[0].content", InvalidField, func(r *ChatCompletionRequest) { r.Messages[0].Content = Content{Parts: []ContentPart{TextPart("x")}} }},
		{"temperature", InvalidField, func(r *ChatCompletionRequest) { r.Temperature = Ptr(1.5) }},
		{"temperature", InvalidField, func(r *ChatCompletionRequest) { r.Temperature = Ptr(-0.1) }},
		{"temperature", InvalidField, func(r *ChatCompletionRequest) { r.Temperature = Ptr(math.NaN()) }},
		{"top_p", InvalidField, func(r *ChatCompletionRequest) { r.TopP = Ptr(2.0) }},
		{"top_p", InvalidField, func(r *ChatCompletionRequest) { r.TopP = Ptr(0.0) }},
		{"top_p", InvalidField, func(r *ChatCompletionRequest) { r.TopP = Ptr(-0.5) }},
		{"max_tokens", InvalidField, func(r *ChatCompletionRequest) { r.MaxTokens = Ptr(0) }},
		{"stop", InvalidField, func(r *ChatCompletionRequest) { r.Stop = StopWords{"a", "b"} }},
		{"stop[0]", InvalidField, func(r *ChatCompletionRequest) { r.Stop = StopWords{""} }},
		{"tools[0].type", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{{Type: "code_interpreter"}} }},
		{"tools[0].type", MissingField, func(r *ChatCompletionRequest) { r.Tools = []Tool{{Function: &FunctionDef{Name: "f"}}} }},
		{"tools[0].function", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{{Type: ToolTypeFunction}} }},
		{"tools[0].function.name", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{FunctionTool("get weather", "", nil)} }},
		{"tools[0].function.name", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{FunctionTool(strings.Repeat("f", 65), "", nil)} }},
		{"tools[0].function.parameters", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{FunctionTool("f", "", "{not json")} }},
		{"tools[0].function.parameters", MalformedRequest, func(r *ChatCompletionRequest) {
			r.Tools = []Tool{{Type: ToolTypeFunction, Function: &FunctionDef{Name: "f", Parameters: json.RawMessage("{")}}}
		}},
		{"tools[0].function.parameters", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{FunctionTool("f", "", `[1,2]`)} }},
		{"tools[0].function.parameters", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{FunctionTool("f", "", make(chan int))} }},
		{"tools[0].retrieval", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{{Type: ToolTypeRetrieval}} }},
		{"tools[0].retrieval.knowledge_id", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{NewRetrievalTool("", "")} }},
		{"tools[0].web_search", InvalidField, func(r *ChatCompletionRequest) { r.Tools = []Tool{{Type: ToolTypeWebSearch}} }},
		{"tools[0]", ExclusiveFields, func(r *ChatCompletionRequest) {
			r.Tools = []Tool{{Type: ToolTypeWebSearch, WebSearch: &WebSearchTool{}, Retrieval: &RetrievalTool{KnowledgeID: "k"}}}
		}},
		{"tool_choice", InvalidField, func(r *ChatCompletionRequest) { r.ToolChoice = "required" }},
		{"user_id", InvalidField, func(r *ChatCompletionRequest) { r.UserID = "abc" }},
		{"user_id", InvalidField, func(r *ChatCompletionRequest) { r.UserID = strings.Repeat("u", 129) }},
		{"response_format.type", InvalidField, func(r *ChatCompletionRequest) { r.ResponseFormat = &ResponseFormat{Type: "xml"} }},
		{"thinking.type", InvalidField, func(r *ChatCompletionRequest) { r.Thinking = &Thinking{Type: "on"} }},
		{"thinking.type", InvalidField, func(r *ChatCompletionRequest) { r.Thinking = &Thinking{Type: "ENABLED"} }},
		{"sensitive_word_check.type", InvalidField, func(r *ChatCompletionRequest) { r.SensitiveWordCheck = &SensitiveWordCheck{Type: "SOME"} }},
		{"sensitive_word_check.status", InvalidField, func(r *ChatCompletionRequest) {
			r.SensitiveWordCheck = &SensitiveWordCheck{Type: "ALL", Status: "OFF"}
		}},
		{"messages[0].reasoning_content", InvalidField, func(r *ChatCompletionRequest) { r.Messages[0].ReasoningContent = "hmm" }},
		{"extra", MalformedRequest, func(r *ChatCompletionRequest) { r.Extra = json.RawMessage("{") }},
	} {
		r := good()
		tc.edit(r)
		err := ValidateChatRequest(r)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field || ve.Kind != tc.kind {
			t.Errorf("%s: got %v (kind %v), want field %s kind %v", tc.field, err, kindOf(ve), tc.field, tc.kind)
			continue
		}
		if !strings.Contains(err.Error(), tc.field) || ve.Reason == "" {
			t.Errorf("%s: unclear error %q", tc.field, err)
		}
	}

	// What must pass.
	ok := good()
	ok.Temperature, ok.TopP, ok.MaxTokens = Ptr(0.0), Ptr(1.0), Ptr(1)
	ok.Stop = StopWords{"\n"}
	ok.UserID = "用户一二三四" // six characters, 18 bytes
	ok.ToolChoice = "auto"
	ok.Tools = []Tool{FunctionTool("get_current_weather", "d", nil), WebSearchOff(), NewRetrievalTool("k1", "{{knowledge}} {{question}}"),
		NewWebSearchTool(WebSearchTool{SearchQuery: "q"})}
	ok.Messages = append(ok.Messages, AssistantToolCallsMessage(ToolCall{ID: "c", Function: FunctionCall{Name: "f", Arguments: "{}"}}),
		ToolMessage("c", "sunny"), UserParts(TextPart("x"), ImageURLPart("https://a/b.png")),
		Message{Role: RoleAssistant, Content: Content{Parts: []ContentPart{TextPart("t")}}})
	ok.Thinking = &Thinking{Type: ThinkingEnabled, ClearThinking: Ptr(false)}
	ok.ToolStream, ok.WatermarkEnabled = true, Ptr(false)
	ok.ResponseFormat = &ResponseFormat{Type: "json_object"}
	ok.SensitiveWordCheck = &SensitiveWordCheck{Type: "ALL", Status: "DISABLE"}
	ok.Messages = append(ok.Messages, Message{Role: RoleAssistant, Content: Content{Text: "a"}, ReasoningContent: "r"}, UserMessage("again"))
	if err := ValidateChatRequest(ok); err != nil {
		t.Fatal(err)
	}
	// A thinking object without a type keeps the model's default.
	ok.Thinking = &Thinking{ClearThinking: Ptr(false)}
	if err := ValidateChatRequest(ok); err != nil {
		t.Fatalf("thinking without type: got %v, want nil", err)
	}
	var ve *ValidationError
	if err := ValidateChatRequest(nil); !errors.As(err, &ve) || ve.Kind != MalformedRequest {
		t.Fatalf("nil request: got %v (kind %v), want kind %v", err, kindOf(ve), MalformedRequest)
	}
}

func kindOf(ve *ValidationError) any {
	if ve == nil {
		return "none"
	}
	return ve.Kind
}

// The kinds the server maps to V4 codes, for the embedding validator too.
func TestValidateEmbeddingRequestKinds(t *testing.T) {
	for _, tc := range []struct {
		req   *EmbeddingRequest
		field string
		kind  ValidationKind
	}{
		{nil, "request", MalformedRequest},
		{&EmbeddingRequest{Input: EmbeddingInput{"x"}}, "model", MissingField},
		{&EmbeddingRequest{Model: "embedding-3"}, "input", MissingField},
		{&EmbeddingRequest{Model: "embedding-3", Input: make(EmbeddingInput, 65)}, "input", InvalidField},
		{&EmbeddingRequest{Model: "embedding-3", Input: EmbeddingInput{"a", " "}}, "input[1]", InvalidField},
		{&EmbeddingRequest{Model: "embedding-3", Input: EmbeddingInput{"a"}, Dimensions: Ptr(300)}, "dimensions", InvalidField},
		{&EmbeddingRequest{Model: "embedding-3", Input: EmbeddingInput{"a"}, EncodingFormat: "hex"}, "encoding_format", InvalidField},
	} {
		var ve *ValidationError
		if err := ValidateEmbeddingRequest(tc.req); !errors.As(err, &ve) || ve.Field != tc.field || ve.Kind != tc.kind {
			t.Errorf("%+v: got %v (kind %v), want field %s kind %v", tc.req, err, kindOf(ve), tc.field, tc.kind)
		}
	}
}

// Invalid requests never reach the network.
func TestValidationBeforeRequest(t *testing.T) {
	rt := &fakeRT{}
	c := newTestClient(t, rt, &sleeps{})
	ctx := context.Background()
	bad := &ChatCompletionRequest{Model: "glm-4"}
	if _, err := c.Chat.Completions.Create(ctx, bad); err == nil {
		t.Fatal("accepted")
	}
	if _, err := c.Chat.Completions.Stream(ctx, bad); err == nil {
		t.Fatal("accepted")
	}
	if _, err := c.Chat.AsyncCompletions.Create(ctx, bad); err == nil {
		t.Fatal("accepted")
	}
	if _, err := c.Chat.Completions.Create(ctx, nil); err == nil {
		t.Fatal("nil accepted")
	}
	streaming := chatReq()
	streaming.Stream = true
	if _, err := c.Chat.Completions.Create(ctx, streaming); err == nil {
		t.Fatal("Create with stream:true accepted")
	}
	if _, err := c.Chat.AsyncCompletions.RetrieveCompletionResult(ctx, ""); err == nil {
		t.Fatal("empty task id accepted")
	}
	for _, er := range []*EmbeddingRequest{
		nil,
		{Input: EmbeddingInput{"x"}},
		{Model: "embedding-2"},
		{Model: "embedding-2", Input: EmbeddingInput{"x"}, Dimensions: Ptr(512)},
		{Model: "embedding-3", Input: EmbeddingInput{"x"}, Dimensions: Ptr(300)},
		{Model: "embedding-3", Input: make(EmbeddingInput, 65)},
		{Model: "embedding-3", Input: EmbeddingInput{"a", ""}},
		{Model: "embedding-3", Input: EmbeddingInput{"a"}, EncodingFormat: "int8"},
	} {
		if _, err := c.Embeddings.Create(ctx, er); err == nil {
			t.Fatalf("embedding request %+v accepted", er)
		}
	}
	for _, ir := range []*ImageRequest{nil, {Prompt: "p"}, {Model: "cogview-3"}, {Model: "cogview-3", Prompt: "p", UserID: "x"}} {
		if _, err := c.Images.Generations(ctx, ir); err == nil {
			t.Fatalf("image request %+v accepted", ir)
		}
	}
	if rt.attempts() != 0 {
		t.Fatalf("%d requests sent for invalid input", rt.attempts())
	}
	for _, d := range []int{256, 512, 1024, 2048} {
		if err := ValidateEmbeddingRequest(&EmbeddingRequest{Model: "embedding-3", Input: EmbeddingInput{"x"}, Dimensions: Ptr(d)}); err != nil {
			t.Fatal(err)
		}
	}
}

// Edge values are clamped like the Python SDK, on the SDK's copy only.
func TestClampingAndDataURIOnCopy(t *testing.T) {
	var sent []byte
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		buf := new(bytes.Buffer)
		_, _ = buf.ReadFrom(r.Body)
		sent = buf.Bytes()
		return respond(200, okChat)(r)
	})
	c := newTestClient(t, rt, &sleeps{})
	req := chatReq()
	req.Temperature, req.TopP = Ptr(0.0), Ptr(1.0)
	req.Messages = append(req.Messages, UserParts(TextPart("x"), ImageURLPart("data:image/png;base64,iVBORw0KGgo=")))
	if _, err := c.Chat.Completions.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	var got ChatCompletionRequest
	if err := json.Unmarshal(sent, &got); err != nil {
		t.Fatal(err)
	}
	if *got.Temperature != 0.01 || got.DoSample == nil || *got.DoSample || *got.TopP != 0.99 {
		t.Fatalf("sent temperature %v do_sample %v top_p %v", *got.Temperature, got.DoSample, *got.TopP)
	}
	if u := got.Messages[1].Content.Parts[1].ImageURL.URL; u != "iVBORw0KGgo=" {
		t.Fatalf("image url sent as %q, want bare base64", u)
	}
	// The caller's request is untouched.
	if *req.Temperature != 0 || *req.TopP != 1 || req.DoSample != nil || req.Stream ||
		req.Messages[1].Content.Parts[1].ImageURL.URL != "data:image/png;base64,iVBORw0KGgo=" {
		t.Fatalf("caller's request modified: %+v", req)
	}
	req.Temperature, req.TopP = Ptr(1.0), Ptr(0.005)
	if _, err := c.Chat.Completions.Create(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	got = ChatCompletionRequest{}
	_ = json.Unmarshal(sent, &got)
	if *got.Temperature != 0.99 || *got.TopP != 0.005 {
		t.Fatalf("sent temperature %v top_p %v, want 0.99 and 0.005", *got.Temperature, *got.TopP)
	}
	// top_p 0 means nothing: the server refuses it with 1214, so the SDK
	// refuses it too instead of clamping it into range.
	sent = nil
	req.TopP = Ptr(0.0)
	var ve *ValidationError
	if _, err := c.Chat.Completions.Create(context.Background(), req); !errors.As(err, &ve) || ve.Field != "top_p" {
		t.Fatalf("top_p 0: got %v, want a ValidationError on top_p", err)
	}
	if sent != nil {
		t.Fatal("top_p 0 was sent")
	}
}

func TestImageFilePart(t *testing.T) {
	dir := t.TempDir()
	p, err := ImageFilePart("testdata/glm4v_image.png")
	if err != nil || p.Type != PartImageURL || strings.HasPrefix(p.ImageURL.URL, "data:") || !strings.HasPrefix(p.ImageURL.URL, "iVBORw0KGgo") {
		t.Fatalf("png: %+v, %v", p, err)
	}
	// GIF is refused.
	var gb bytes.Buffer
	img := image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black, color.White})
	if err := gif.Encode(&gb, img, nil); err != nil {
		t.Fatal(err)
	}
	gifPath := filepath.Join(dir, "a.gif")
	_ = os.WriteFile(gifPath, gb.Bytes(), 0o644)
	if _, err := ImageFilePart(gifPath); err == nil || !strings.Contains(err.Error(), "jpg or png") {
		t.Fatalf("gif: %v", err)
	}
	// Over 5 MB is refused.
	big := filepath.Join(dir, "big.png")
	data := make([]byte, MaxImageBytes+1)
	png, _ := os.ReadFile("testdata/glm4v_image.png")
	copy(data, png)
	_ = os.WriteFile(big, data, 0o644)
	if _, err := ImageFilePart(big); err == nil || !strings.Contains(err.Error(), "5 MB") {
		t.Fatalf("big: %v", err)
	}
	if _, err := ImageFilePart(filepath.Join(dir, "missing.png")); err == nil {
		t.Fatal("missing file accepted")
	}
	if got := ImageBase64Part([]byte{0xff, 0xd8, 0xff}); got.ImageURL.URL != "/9j/" {
		t.Fatalf("ImageBase64Part = %q", got.ImageURL.URL)
	}
}
