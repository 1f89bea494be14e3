package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/zhipuai"
)

func glm45Request(t *testing.T, model string) *zhipuai.ChatCompletionRequest {
	t.Helper()
	var req zhipuai.ChatCompletionRequest
	readJSONFile(t, "testdata/openai/glm45_request.v4.json", &req)
	req.Model = model
	return &req
}

// translateTranscript runs an engine's SSE transcript through the stream
// translation the openai backend uses for req, and compares the V4 chunks
// with the golden file.
func translateTranscript(t *testing.T, transcript, goldenName string, req *zhipuai.ChatCompletionRequest) []*zhipuai.ChatCompletionChunk {
	t.Helper()
	f, err := os.Open("testdata/openai/" + transcript)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	tr := newChunkTranslator(req, "glm-4.7")
	if p := textToolParserFor(ToolParserAuto, req); p != nil {
		tr.glm = p.stream()
	}
	if thinkInText(ToolParserAuto, req.Model) {
		tr.think = &thinkSplit{}
	}
	s := &oaStream{ctx: ctx, cancel: cancel, backend: "t", body: f, r: sse.NewReader(f), tr: tr}
	datas, chunks, err := drain(t, s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, goldenName, []byte("["+string(bytes.Join(datas, []byte(",")))+"]"))
	return chunks
}

// shapeOf names each chunk by what it carries: r (reasoning), c (content),
// t (tool calls), f (finish + usage).
func shapeOf(chunks []*zhipuai.ChatCompletionChunk) string {
	var b strings.Builder
	for _, c := range chunks {
		d := c.Choices[0].Delta
		switch {
		case c.Choices[0].FinishReason != "":
			b.WriteByte('f')
		case len(d.ToolCalls) > 0:
			b.WriteByte('t')
		case d.ReasoningContent != "":
			b.WriteByte('r')
		case d.Content != "":
			b.WriteByte('c')
		}
	}
	return b.String()
}

func collapse(s string) string {
	var b strings.Builder
	for i := range len(s) {
		if i == 0 || s[i] != s[i-1] {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// The golden transcripts of GLM-4.5/4.7 on engines (docs/v4.md §11), each
// turned into the V4 stream: reasoning_content deltas first, then content,
// then the whole tool call, then one final chunk with finish_reason
// tool_calls and usage whose details carry the cached and reasoning tokens.
func TestGLM45EngineTranscripts(t *testing.T) {
	for _, tc := range []struct {
		transcript, golden, model string
		shape, args, content      string
		usage                     [4]int // prompt, completion, cached, reasoning
	}{
		// vLLM --reasoning-parser glm45 --tool-call-parser glm47: the engine
		// parsed both; the reasoning tokens are estimated from the text.
		{"glm47_vllm_parsers.engine.sse", "glm47_vllm_parsers.v4.json", "zai-org/GLM-4.7-Flash",
			"rctf", `{"city": "北京", "days": 3}`, "\n\n我来查一下。", [4]int{1210, 52, 1024, 20}},
		// vLLM without --tool-call-parser: the markup arrives as content
		// and the gateway parses it; newer vLLM names the reasoning
		// "reasoning".
		{"glm45_vllm_noparser.engine.sse", "glm45_vllm_noparser.v4.json", "zai-org/GLM-4.5-Air",
			"rctf", `{"city":"北京","days":3}`, "好的，我来查。\n", [4]int{980, 40, 0, 6}},
		// vLLM with neither parser: <think> and the markup both arrive as
		// content, split across pieces.
		{"glm45_vllm_noparsers.engine.sse", "glm45_vllm_noparsers.v4.json", "zai-org/GLM-4.5-Air",
			"rctf", `{"city":"北京"}`, "好的。", [4]int{900, 40, 0, 9}},
		// llama.cpp --jinja parsed the call itself; no content at all.
		{"glm45_llamacpp.engine.sse", "glm45_llamacpp.v4.json", "GLM-4.5-Air-Q4_K_M.gguf",
			"rtf", `{"city":"Beijing","days":2}`, "", [4]int{402, 31, 0, 8}},
	} {
		t.Run(tc.transcript, func(t *testing.T) {
			chunks := translateTranscript(t, tc.transcript, tc.golden, glm45Request(t, tc.model))
			if got := collapse(shapeOf(chunks)); got != tc.shape {
				t.Errorf("got chunk order %q, want %q", got, tc.shape)
			}
			var acc zhipuai.ChatCompletionAccumulator
			for _, c := range chunks {
				acc.AddChunk(*c)
			}
			m := acc.Choices[0].Message
			if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "get_weather" || m.ToolCalls[0].Function.Arguments != tc.args {
				t.Errorf("got calls %+v, want get_weather %s", m.ToolCalls, tc.args)
			}
			if m.Content != tc.content || m.ReasoningContent == "" {
				t.Errorf("got content %q reasoning %q, want content %q and some reasoning", m.Content, m.ReasoningContent, tc.content)
			}
			if acc.Choices[0].FinishReason != zhipuai.FinishToolCalls {
				t.Errorf("got finish %q, want tool_calls", acc.Choices[0].FinishReason)
			}
			u := acc.Usage
			if got := [4]int{u.PromptTokens, u.CompletionTokens, u.CachedTokens(), u.ReasoningTokens()}; got != tc.usage {
				t.Errorf("got usage prompt/completion/cached/reasoning %v, want %v", got, tc.usage)
			}
		})
	}
}

// A sync reply of vLLM without a tool parser: two calls in markup become
// V4 tool_calls (string arguments as strings, the integer as JSON), the
// reasoning comes over from "reasoning".
func TestGLM45SyncMarkup(t *testing.T) {
	var in oaChatCompletion
	readJSONFile(t, "testdata/openai/glm47_vllm_noparser_reply.engine.json", &in)
	req := glm45Request(t, "zai-org/GLM-4.7-Flash")
	out := FromOpenAIChat(&in, req, "glm-4.7")
	textToolParserFor(ToolParserAuto, req).apply(out)
	for i := range out.Choices[0].Message.ToolCalls {
		out.Choices[0].Message.ToolCalls[i].ID = "call_x" // random per reply
	}
	b, _ := json.Marshal(out)
	golden(t, "glm47_vllm_noparser_reply.v4.json", b)
	m := out.Choices[0].Message
	if len(m.ToolCalls) != 2 || m.ToolCalls[0].Function.Arguments != `{"city":"北京","days":3}` || m.ToolCalls[1].Function.Arguments != `{"city":"上海"}` {
		t.Fatalf("got calls %+v, want Beijing (3 days) and Shanghai", m.ToolCalls)
	}
	if out.Choices[0].FinishReason != zhipuai.FinishToolCalls || m.Content != "" || m.ReasoningContent != "需要查北京和上海。" {
		t.Fatalf("got finish %q content %q reasoning %q", out.Choices[0].FinishReason, m.Content, m.ReasoningContent)
	}
}

// Markup that is not a well-formed call to an offered tool stays text,
// whole; the tag split over pieces is held back only as long as it may
// still be the tag.
func TestGLM45MarkupEdges(t *testing.T) {
	req := glm45Request(t, "glm-4.7")
	p := textToolParserFor(ToolParserAuto, req)
	for _, text := range []string{
		"<tool_call>delete_all<arg_key>x</arg_key><arg_value>1</arg_value></tool_call>", // not offered
		"<tool_call>get_weather<arg_key>city</arg_key>北京</tool_call>",                   // no arg_value
		"<tool_call>get_weather<arg_key>city</arg_key><arg_value>北京</arg_value>",        // not closed
		"<tool_call>get_weather</tool_call> and then some prose",                        // text after
	} {
		if _, _, ok := p.parseGLM45(text); ok {
			t.Errorf("parseGLM45(%q): got ok, want text", text)
		}
		g := p.stream()
		emitted := g.feed(text[:5]) + g.feed(text[5:])
		rest, calls := g.finish(true)
		if emitted+rest != text || calls != nil {
			t.Errorf("stream %q: got text %q and calls %v, want the text back", text, emitted+rest, calls)
		}
	}
	g := p.stream()
	steps := [][2]string{{"a <tool", "a "}, {"box>", "<toolbox>"}, {"x<", "x"}, {"/b>", "</b>"}}
	for _, st := range steps {
		if got := g.feed(st[0]); got != st[1] {
			t.Errorf("feed(%q): got %q, want %q", st[0], got, st[1])
		}
	}
	// Models the auto mode parses markup for, and those it leaves alone.
	for model, want := range map[string]bool{"zai-org/GLM-4.5-Air": true, "glm-4.7-flash": true, "GLM-4.6V": true, "glm-5": true,
		"glm4.6:latest": true, "THUDM/glm-4-9b-chat": false, "glm-4-32b-0414": false, "qwen3-8b": false, "glm-50": false} {
		if got := GLM45ToolModel(model); got != want {
			t.Errorf("GLM45ToolModel(%q): got %v, want %v", model, got, want)
		}
	}
}

// BenchmarkGLM45StreamChunk: the per-chunk cost of an engine's text and
// reasoning chunks with the GLM-4.5+ markup parser on (every ordinary
// answer of a GLM-4.5+ model with tools pays it), against the same chunk
// with no parser.
func BenchmarkGLM45StreamChunk(b *testing.B) {
	for _, tc := range []struct {
		name, line string
		parse      bool
	}{
		{"content/parser", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"查一下"},"finish_reason":null}]}`, true},
		{"content/none", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"查一下"},"finish_reason":null}]}`, false},
		{"reasoning/parser", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"用户想"},"finish_reason":null}]}`, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := &zhipuai.ChatCompletionRequest{Model: "zai-org/GLM-4.7-Flash", Messages: []zhipuai.Message{zhipuai.UserMessage("x")},
				Tools: []zhipuai.Tool{zhipuai.FunctionTool("get_weather", "", map[string]any{"type": "object"})}}
			tr := newChunkTranslator(req, "glm-4.7")
			if tc.parse {
				tr.glm = textToolParserFor(ToolParserAuto, req).stream()
			}
			line := []byte(tc.line)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				var c oaChunk
				if err := json.Unmarshal(line, &c); err != nil {
					b.Fatal(err)
				}
				for _, v4 := range tr.push(&c) {
					if _, err := json.Marshal(v4); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
