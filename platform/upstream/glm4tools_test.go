package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

type glm4Case struct {
	Name  string     `json:"name"`
	Text  string     `json:"text"`
	Want  string     `json:"want"` // "calls" or "text"
	Calls []glm4Call `json:"calls"`
}

type glm4Cases struct {
	Tools []string   `json:"tools"`
	Cases []glm4Case `json:"cases"`
}

func loadGLM4Cases(t *testing.T) glm4Cases {
	t.Helper()
	var c glm4Cases
	readJSONFile(t, "testdata/glm4tools_cases.json", &c)
	if len(c.Cases) < 10 || len(c.Tools) == 0 {
		t.Fatalf("case file holds %d cases, %d tools", len(c.Cases), len(c.Tools))
	}
	return c
}

// glm4Request is a V4 request offering the case file's tools, the first
// with the tutorial's schema.
func glm4Request(model string, tools []string) *zhipuai.ChatCompletionRequest {
	req := userChat(model, "北京今天天气怎么样？")
	for i, n := range tools {
		fd := &zhipuai.FunctionDef{Name: n, Description: "工具 " + n}
		if i == 0 {
			fd.Description = "获取指定城市的天气信息"
			fd.Parameters = json.RawMessage(`{"type":"object","properties":{"location":{"type":"string","description":"城市, 如: 北京"},"unit":{"type":"string","enum":["c","f"]}},"required":["location"]}`)
		}
		req.Tools = append(req.Tools, zhipuai.Tool{Type: zhipuai.ToolTypeFunction, Function: fd})
	}
	req.Tools = append(req.Tools, zhipuai.Tool{Type: "web_search", WebSearch: &zhipuai.WebSearchTool{Enable: zhipuai.Ptr(false)}})
	req.ToolChoice = "auto"
	return req
}

// splitRunes cuts s into pieces of n characters (engines send whole
// characters: content is a JSON string).
func splitRunes(s string, n int) []string {
	r := []rune(s)
	var out []string
	for len(r) > 0 {
		k := min(n, len(r))
		out = append(out, string(r[:k]))
		r = r[k:]
	}
	return out
}

func checkCalls(t *testing.T, where string, got []zhipuai.ToolCall, want []glm4Call) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d calls, want %d: %+v", where, len(got), len(want), got)
	}
	for i, c := range got {
		if !strings.HasPrefix(c.ID, "call_") || c.Type != "function" || c.Index == nil || *c.Index != i ||
			c.Function.Name != want[i].Name || c.Function.Arguments != want[i].Arguments {
			t.Fatalf("%s: call %d = %+v (index %v), want %+v", where, i, c, c.Index, want[i])
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(c.Function.Arguments), &obj); err != nil {
			t.Fatalf("%s: arguments are not a JSON object: %v", where, err)
		}
	}
	if len(got) > 1 && got[0].ID == got[1].ID {
		t.Fatalf("%s: duplicate call ids %s", where, got[0].ID)
	}
}

func TestGLM4ParseCases(t *testing.T) {
	cs := loadGLM4Cases(t)
	for _, c := range cs.Cases {
		calls, ok := parseGLM4Calls(c.Text, cs.Tools)
		if ok != (c.Want == "calls") {
			t.Fatalf("%s: converted=%v, want %s (calls %+v)", c.Name, ok, c.Want, calls)
		}
		if ok && fmt.Sprint(calls) != fmt.Sprint(c.Calls) {
			t.Fatalf("%s: calls %+v, want %+v", c.Name, calls, c.Calls)
		}
	}
	// The tutorial call's argument value survives as UTF-8 text.
	calls, _ := parseGLM4Calls("get_current_weather\n{\"location\": \"北京\", \"unit\": \"c\"}", cs.Tools)
	var args struct{ Location, Unit string }
	if err := json.Unmarshal([]byte(calls[0].Arguments), &args); err != nil || args.Location != "北京" || args.Unit != "c" {
		t.Fatalf("arguments %q: %+v %v", calls[0].Arguments, args, err)
	}
	if _, ok := parseGLM4Calls("get_time\n{}", nil); ok {
		t.Fatal("converted with no tools offered")
	}
}

func TestGLM4SyncAgainstEngine(t *testing.T) {
	cs := loadGLM4Cases(t)
	e := newScriptedEngine(t, "THUDM/glm-4-9b-chat")
	b := newEngineBackend(t, e, FlavorVLLM)
	for _, c := range cs.Cases {
		e.enqueue(engineReply{pieces: []string{c.Text}, usage: [2]int{120, 20}})
		resp, body, err := b.Chat(context.Background(), platform.ChatRequest{Req: glm4Request("THUDM/glm-4-9b-chat", cs.Tools), ClientModel: "glm-4"})
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		var back zhipuai.ChatCompletion
		if err := json.Unmarshal(body, &back); err != nil {
			t.Fatalf("%s: body %s: %v", c.Name, body, err)
		}
		ch := back.Choices[0]
		if back.Usage.TotalTokens != 140 || resp.Model != "glm-4" {
			t.Fatalf("%s: usage/model %s", c.Name, body)
		}
		if c.Want == "calls" {
			if ch.FinishReason != "tool_calls" || strings.TrimSpace(ch.Message.Content) != "" {
				t.Fatalf("%s: %s", c.Name, body)
			}
			checkCalls(t, c.Name, ch.Message.ToolCalls, c.Calls)
			continue
		}
		if ch.FinishReason != "stop" || ch.Message.Content != c.Text || len(ch.Message.ToolCalls) != 0 {
			t.Fatalf("%s: text changed: %s", c.Name, body)
		}
	}
}

// streamCase runs one native text through the scripted engine in pieces
// and checks the V4 chunks.
func streamCase(t *testing.T, b *OpenAI, e *scriptedEngine, model string, tools []string, c glm4Case, pieces []string) {
	t.Helper()
	where := fmt.Sprintf("%s %q", c.Name, pieces)
	e.enqueue(engineReply{pieces: pieces, usage: [2]int{120, 20}})
	s, err := b.ChatStream(context.Background(), platform.ChatRequest{Req: glm4Request(model, tools), ClientModel: "glm-4"})
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	defer s.Close()
	_, chunks, err := drain(t, s)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	last := chunks[len(chunks)-1]
	finals := 0
	for _, ch := range chunks {
		if len(ch.Choices) != 1 || ch.Choices[0].Delta.Role != "assistant" || ch.Model != "glm-4" {
			t.Fatalf("%s: bad chunk %+v", where, ch)
		}
		if ch.Choices[0].FinishReason != "" {
			finals++
		}
	}
	if finals != 1 || last.Usage == nil || last.Usage.TotalTokens != 140 || last.Choices[0].Delta.Content != "" {
		t.Fatalf("%s: %d finish chunks, last %+v", where, finals, last)
	}
	if c.Want == "calls" {
		// Exactly the call chunk (whole, no finish_reason) and the final one.
		if len(chunks) != 2 || chunks[0].Choices[0].FinishReason != "" || chunks[0].Choices[0].Delta.Content != "" ||
			last.Choices[0].FinishReason != "tool_calls" {
			t.Fatalf("%s: %d chunks, first %+v, finish %q", where, len(chunks), chunks[0].Choices[0], last.Choices[0].FinishReason)
		}
		checkCalls(t, where, chunks[0].Choices[0].Delta.ToolCalls, c.Calls)
		return
	}
	var text strings.Builder
	for _, ch := range chunks {
		if len(ch.Choices[0].Delta.ToolCalls) > 0 {
			t.Fatalf("%s: text became a call: %+v", where, ch.Choices[0].Delta.ToolCalls)
		}
		text.WriteString(ch.Choices[0].Delta.Content)
	}
	if text.String() != c.Text || last.Choices[0].FinishReason != "stop" {
		t.Fatalf("%s: streamed text %q, finish %q", where, text.String(), last.Choices[0].FinishReason)
	}
}

func TestGLM4StreamAgainstEngine(t *testing.T) {
	cs := loadGLM4Cases(t)
	e := newScriptedEngine(t, "THUDM/glm-4-9b-chat")
	b := newEngineBackend(t, e, FlavorVLLM)
	for _, c := range cs.Cases {
		for _, n := range []int{1, 2, 3, 5, 1 << 20} {
			streamCase(t, b, e, "THUDM/glm-4-9b-chat", cs.Tools, c, splitRunes(c.Text, n))
		}
	}
}

// The name split across pieces and the arguments split mid-string, as
// vLLM streams token by token.
func TestGLM4StreamNameAndArgumentsSplit(t *testing.T) {
	cs := loadGLM4Cases(t)
	e := newScriptedEngine(t, "glm4:9b")
	b := newEngineBackend(t, e, FlavorOllama)
	c := cs.Cases[0]
	pieces := []string{"get", "_current", "_wea", "ther", "\n", "{\"", "location", "\":", " \"", "北", "京", "\",", " \"unit\": \"", "c", "\"}"}
	if strings.Join(pieces, "") != c.Text {
		t.Fatal("pieces do not make up the tutorial call")
	}
	streamCase(t, b, e, "glm4:9b", cs.Tools, c, pieces)
}

// Plain text is released as soon as it cannot be a call: checked on the
// translator piece by piece, so "not delayed" means "emitted by the push
// of the piece that decided it", never "within some time".
func TestGLM4StreamTextReleasedEarly(t *testing.T) {
	cs := loadGLM4Cases(t)
	req := glm4Request("THUDM/glm-4-9b-chat", cs.Tools)
	push := func(tr *chunkTranslator, piece string) string {
		var sb strings.Builder
		for _, c := range tr.push(&oaChunk{ID: "x", Created: 1, Choices: []oaChunkChoice{{Delta: oaDelta{Content: &piece}}}}) {
			if len(c.Choices[0].Delta.ToolCalls) > 0 {
				t.Fatalf("unexpected call chunk after %q", piece)
			}
			sb.WriteString(c.Choices[0].Delta.Content)
		}
		return sb.String()
	}
	steps := []struct {
		name  string
		steps [][2]string // piece, content expected from its push
	}{
		{"first character cannot start a name", [][2]string{{"北京", "北京"}, {"今天晴\n", "今天晴\n"}, {"适合出行", "适合出行"}}},
		{"GLM's leading newline waits for one piece", [][2]string{{"\n", ""}, {"北京", "\n北京"}, {"今天晴", "今天晴"}}},
		{"name prefix held until it diverges", [][2]string{{"get", ""}, {"_c", ""}, {"ool", "get_cool"}, {" stuff", " stuff"}}},
		{"a name line not followed by {", [][2]string{{"get_time", ""}, {"\n", ""}, {"现在", "get_time\n现在"}, {"是", "是"}}},
		{"prose after a complete call", [][2]string{{"get_time\n{\"zone\"", ""}, {": \"UTC\"}", ""}, {"\n好的", "get_time\n{\"zone\": \"UTC\"}\n好的"}, {"。", "。"}}},
	}
	for _, s := range steps {
		tr := newChunkTranslator(req, "glm-4")
		tr.glm = textToolParserFor(ToolParserAuto, req).stream()
		for _, st := range s.steps {
			if got := push(tr, st[0]); got != st[1] {
				t.Fatalf("%s: push(%q) emitted %q, want %q", s.name, st[0], got, st[1])
			}
		}
	}
}

func TestGLM4ParserModes(t *testing.T) {
	cs := loadGLM4Cases(t)
	native := cs.Cases[0]
	cases := []struct {
		name, mode, model string
		tools             bool
		convert           bool
	}{
		{"auto, glm-4-9b-chat", "", "THUDM/glm-4-9b-chat", true, true},
		{"auto, GLM-4-32B-0414", ToolParserAuto, "THUDM/GLM-4-32B-0414", true, true},
		{"auto, no function tools in the request", "", "THUDM/glm-4-9b-chat", false, false},
		{"none", ToolParserNone, "THUDM/glm-4-9b-chat", true, false},
		{"auto, not a GLM-4 model", "", "Qwen/Qwen2.5-7B-Instruct", true, false},
		{"auto, GLM-4.5 (engines parse its own markup)", "", "zai-org/GLM-4.5-Air", true, false},
		{"glm4 forced on any model", ToolParserGLM4, "my-finetune", true, true},
	}
	for _, tc := range cases {
		e := newScriptedEngine(t, tc.model)
		b, err := NewOpenAI(OpenAIOptions{Name: "engine", BaseURL: e.URL(), ToolParser: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		req := glm4Request(tc.model, cs.Tools)
		if !tc.tools {
			req.Tools = req.Tools[len(req.Tools)-1:] // web_search only
		}
		e.enqueue(engineReply{pieces: []string{native.Text}}, engineReply{pieces: splitRunes(native.Text, 2)})
		resp, _, err := b.Chat(context.Background(), platform.ChatRequest{Req: req})
		if err != nil {
			t.Fatal(err)
		}
		_, chunks := streamAll(t, b, platform.ChatRequest{Req: req})
		syncCall := len(resp.Choices[0].Message.ToolCalls) == 1
		streamCall := len(chunks[0].Choices[0].Delta.ToolCalls) == 1
		if syncCall != tc.convert || streamCall != tc.convert {
			t.Fatalf("%s: sync converted %v, stream converted %v, want %v", tc.name, syncCall, streamCall, tc.convert)
		}
		if !tc.convert && resp.Choices[0].Message.Content != native.Text {
			t.Fatalf("%s: text changed to %q", tc.name, resp.Choices[0].Message.Content)
		}
	}
	if _, err := NewOpenAI(OpenAIOptions{BaseURL: "http://x/v1", ToolParser: "hermes"}); err == nil {
		t.Fatal("unknown tool_parser accepted")
	}
}

// An engine that does parse calls itself wins: its calls pass, content that
// was held (here a native-looking prefix) is sent as text, not a second call.
func TestGLM4EngineCallsWin(t *testing.T) {
	cs := loadGLM4Cases(t)
	e := newScriptedEngine(t, "glm4")
	b := newEngineBackend(t, e, "")
	e.enqueue(engineReply{pieces: []string{"get_time\n{"}, calls: []engineCall{{id: "chatcmpl-tool-9", name: "get_time", args: []string{`{"zone":`, `"UTC"}`}}}, usage: [2]int{10, 5}})
	_, chunks := streamAll(t, b, platform.ChatRequest{Req: glm4Request("glm4", cs.Tools)})
	if len(chunks) != 3 || chunks[0].Choices[0].Delta.Content != "get_time\n{" {
		t.Fatalf("%d chunks, first %+v", len(chunks), chunks[0].Choices[0])
	}
	calls := chunks[1].Choices[0].Delta.ToolCalls
	if len(calls) != 1 || calls[0].ID != "chatcmpl-tool-9" || calls[0].Function.Arguments != `{"zone":"UTC"}` ||
		chunks[2].Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("calls %+v, finish %q", calls, chunks[2].Choices[0].FinishReason)
	}
}

func TestGLM4NativeToolModel(t *testing.T) {
	yes := []string{"THUDM/glm-4-9b-chat", "glm4:9b", "glm4", "THUDM/GLM-4-9B-0414", "THUDM/GLM-4-32B-0414",
		"glm-4-9b-chat-1m", "/models/glm-4-9b-chat-Q4_K_M.gguf", "THUDM/glm-4-9b-chat-hf", "THUDM/glm-4v-9b"}
	no := []string{"zai-org/GLM-4.5-Air", "glm-4.6", "glm4.7-flash", "Qwen/Qwen2.5-7B-Instruct", "chatglm3-6b", "THUDM/GLM-Z1-9B-0414", ""}
	for _, m := range yes {
		if !GLM4NativeToolModel(m) {
			t.Fatalf("%q not recognised as GLM-4", m)
		}
	}
	for _, m := range no {
		if GLM4NativeToolModel(m) {
			t.Fatalf("%q taken for GLM-4", m)
		}
	}
}

// BenchmarkGLM4StreamTextChunk: BenchmarkTranslateStreamChunk with the
// GLM-4 parser on, after the reply was found to be text — the per-token
// cost every ordinary answer pays.
func BenchmarkGLM4StreamTextChunk(b *testing.B) {
	line := []byte(`{"id":"chatcmpl-7c2","object":"chat.completion.chunk","created":1718000001,"model":"THUDM/glm-4-9b-chat","choices":[{"index":0,"delta":{"content":"查一下"},"logprobs":null,"finish_reason":null}]}`)
	req := glm4Request("THUDM/glm-4-9b-chat", []string{"get_current_weather", "get_time"})
	tr := newChunkTranslator(req, "glm-4")
	tr.glm = textToolParserFor(ToolParserAuto, req).stream()
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		var c oaChunk
		if err := json.Unmarshal(line, &c); err != nil {
			b.Fatal(err)
		}
		out := tr.push(&c)
		if len(out) != 1 {
			b.Fatalf("%d chunks", len(out))
		}
		if _, err := json.Marshal(out[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// tutorialPieces is the tutorial call as a token-by-token engine stream.
var tutorialPieces = []string{"get", "_current", "_wea", "ther", "\n", "{\"", "location", "\":", " \"", "北", "京", "\",", " \"unit\": \"", "c", "\"}"}

// benchTranslate pushes the pieces (already decoded engine chunks) through
// a translator and encodes what comes out: one whole stream per op.
func benchTranslate(b *testing.B, parse bool, wantCalls int) {
	req := glm4Request("THUDM/glm-4-9b-chat", []string{"get_current_weather", "get_time"})
	b.ReportAllocs()
	for b.Loop() {
		tr := newChunkTranslator(req, "glm-4")
		if parse {
			tr.glm = textToolParserFor(ToolParserAuto, req).stream()
		}
		calls := 0
		emit := func(cs []*zhipuai.ChatCompletionChunk) {
			for _, c := range cs {
				calls += len(c.Choices[0].Delta.ToolCalls)
				if _, err := json.Marshal(c); err != nil {
					b.Fatal(err)
				}
			}
		}
		for i := range tutorialPieces {
			emit(tr.push(&oaChunk{ID: "x", Created: 1, Choices: []oaChunkChoice{{Delta: oaDelta{Content: &tutorialPieces[i]}}}}))
		}
		emit(tr.done())
		if calls != wantCalls {
			b.Fatalf("%d calls", calls)
		}
	}
}

// BenchmarkGLM4StreamToolCall: a native call streamed in 15 pieces, held
// and emitted as one V4 call chunk plus the final chunk.
func BenchmarkGLM4StreamToolCall(b *testing.B) { benchTranslate(b, true, 1) }

// BenchmarkGLM4StreamToolCallParserOff: the same 15 pieces passed through
// as 15 text chunks (parser off), the baseline for the one above.
func BenchmarkGLM4StreamToolCallParserOff(b *testing.B) { benchTranslate(b, false, 0) }

// BenchmarkGLM4ParseSync: the sync path's parse of the tutorial call.
func BenchmarkGLM4ParseSync(b *testing.B) {
	names := []string{"get_current_weather", "get_time"}
	text := strings.Join(tutorialPieces, "")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := parseGLM4Calls(text, names); !ok {
			b.Fatal("not parsed")
		}
	}
}

// With tool_parser "glm4" on vLLM the engine gets the tools unchanged and
// tool_choice "none" (vLLM without --tool-call-parser rejects "auto");
// in auto mode and on other engines the request is what it was.
func TestGLM4EngineRequestToolChoice(t *testing.T) {
	cs := loadGLM4Cases(t)
	cases := []struct {
		mode, flavor, wantChoice string
	}{
		{ToolParserGLM4, FlavorVLLM, "none"},
		{ToolParserAuto, FlavorVLLM, "auto"},
		{ToolParserGLM4, FlavorSGLang, "auto"},
		{ToolParserNone, FlavorVLLM, "auto"},
	}
	for _, tc := range cases {
		e := newScriptedEngine(t, "THUDM/glm-4-9b-chat")
		b, err := NewOpenAI(OpenAIOptions{Name: "engine", BaseURL: e.URL(), Flavor: tc.flavor, ToolParser: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		e.enqueue(engineReply{pieces: []string{cs.Cases[0].Text}}, engineReply{pieces: []string{cs.Cases[0].Text}})
		req := glm4Request("THUDM/glm-4-9b-chat", cs.Tools)
		if _, _, err := b.Chat(context.Background(), platform.ChatRequest{Req: req}); err != nil {
			t.Fatal(err)
		}
		streamAll(t, b, platform.ChatRequest{Req: req})
		for i, sent := range e.requests() {
			tools, _ := sent["tools"].([]any)
			if sent["tool_choice"] != tc.wantChoice || len(tools) != len(cs.Tools) {
				t.Fatalf("%s/%s request %d: tool_choice %v, %d tools", tc.mode, tc.flavor, i, sent["tool_choice"], len(tools))
			}
		}
		if req.ToolChoice != "auto" {
			t.Fatal("client request mutated")
		}
	}
}
