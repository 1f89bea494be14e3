package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Gateway-side extraction of GLM-4 open-model tool calls (docs/peers.md §4.10).
//
// Engines have no working tool parser for GLM-4-9B-chat or the GLM-4-0414
// models (docs/peers.md §4 table: vLLM's parsers start at GLM-4.5, Ollama refuses
// tools for glm4), so such an engine answers a call as plain text in the
// model's native form. Format facts and their sources:
//
//   - The chat template of THUDM/glm-4-9b-chat renders an assistant turn as
//     "<|assistant|>{metadata}\n{content}" and a function call puts the
//     function name into metadata and the JSON arguments into content; the
//     generation prompt ends at "<|assistant|>". So a call is generated as
//     "<name>\n<JSON arguments>" and plain text starts with "\n" (empty
//     metadata). (Template as quoted by llama.cpp's chat-template tests and
//     by gorilla BFCL's GLM handler, whose decoder splits the output on "\n":
//     line 0 = name, line 1 = JSON.)
//   - THUDM/GLM-4 inference/glm_server.py process_response: strip the output,
//     split on "\n"; a call when there are >= 2 lines, line 2 starts with
//     "{", the stripped first line names one of the request's tools and the
//     rest (lines 2.., stripped) parses with json.loads; otherwise the text is
//     returned as it is. Its stream path decides once two lines exist and the
//     first names a tool.
//   - Several calls in one turn are joined by "<|assistant|>" and the turn
//     ends with "<|observation|>" (ms-swift's GLM4 agent template); both are
//     special tokens that engines drop from text by default
//     (skip_special_tokens, and <|observation|> is a stop token: GLM-4
//     openai_api_server.py stop_token_ids 151329/151336/151338), so calls may
//     also arrive back to back with no separator.
//   - GLM-4-0414 (GLM-4-9B-0414, GLM-4-32B-0414) uses the same call form; its
//     template differs only in the tools system prompt (ms-swift's
//     GLM4_0414AgentTemplate; raw GLM-4-9B-0414 output "get_weather\n{…}"
//     in mlx-swift-lm issue #491). GLM-4.5 and later use
//     "<tool_call>name<arg_key>…" instead, which vLLM's glm45/glm47 parsers
//     handle; that form is not parsed here.
//
// Only text that is entirely calls converts: the name must be one of the
// request's function tools and the arguments a JSON object; anything else
// stays text, untouched.

// Tool parser modes of an openai backend (config "tool_parser").
const (
	// ToolParserAuto (or "") parses GLM-4 native calls for models whose
	// engine name looks like GLM-4 / GLM-4-0414 (see GLM4NativeToolModel).
	ToolParserAuto = "auto"
	// ToolParserGLM4 always parses GLM-4 native calls on this backend.
	ToolParserGLM4 = "glm4"
	// ToolParserNone never parses; the engine's reply passes as it is.
	ToolParserNone = "none"
)

// Special tokens that may survive in the text when an engine keeps them.
const (
	glm4TokAssistant   = "<|assistant|>"
	glm4TokObservation = "<|observation|>"
)

// GLM4NativeToolModel reports whether an engine model name belongs to the
// GLM-4 generation that writes calls as "name\n{json}": names containing
// "glm-4" or "glm4" (THUDM/glm-4-9b-chat, glm4:9b, GLM-4-32B-0414), but not
// GLM-4.5 and later ("glm-4.5", "glm4.7": they use <tool_call> markup that
// engines parse themselves). GLM-4V names match too, which is harmless: the
// parser only acts on requests with function tools.
func GLM4NativeToolModel(model string) bool {
	m := strings.ToLower(model)
	for _, p := range []string{"glm-4", "glm4"} {
		for i := strings.Index(m, p); i >= 0; {
			end := i + len(p)
			if end == len(m) || m[end] != '.' {
				return true
			}
			j := strings.Index(m[end:], p)
			if j < 0 {
				break
			}
			i = end + j
		}
	}
	return false
}

// glm4Call is one extracted call; Arguments is the model's JSON object text.
type glm4Call struct {
	Name, Arguments string
}

// glm4Verdict is what a (possibly partial) text is.
type glm4Verdict int

const (
	glm4More  glm4Verdict = iota // a prefix of calls: need more text
	glm4Text                     // not calls: leave it as text
	glm4Calls                    // complete calls
)

// isSpace is the whitespace Python's str.strip removes in practice here.
func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func trimLeftSpace(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

func trimRightSpace(s string) string {
	i := len(s)
	for i > 0 && isSpace(s[i-1]) {
		i--
	}
	return s[:i]
}

func hasName(names []string, s string) bool {
	for _, n := range names {
		if n == s {
			return true
		}
	}
	return false
}

func isNamePrefix(names []string, s string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, s) {
			return true
		}
	}
	return false
}

// scanGLM4 classifies s. With final false, s may be the start of a longer
// text: glm4More means it could still become calls. With final true the
// answer is glm4Calls or glm4Text. calls is appended to dst (only
// meaningful with glm4Calls).
func scanGLM4(dst []glm4Call, s string, names []string, final bool) ([]glm4Call, glm4Verdict) {
	more := glm4More
	if final {
		more = glm4Text
	}
	t := trimLeftSpace(s)
	if t == "" {
		return dst, more
	}
	start := len(dst)
	for {
		nl := strings.IndexByte(t, '\n')
		if nl < 0 {
			// The first line is not complete: it can still become a name
			// only if it is a prefix of one (trailing blanks allowed only
			// after a whole name).
			if final {
				return dst[:start], glm4Text
			}
			core := trimRightSpace(t)
			if core == t && isNamePrefix(names, t) || core != t && hasName(names, core) {
				return dst, glm4More
			}
			return dst[:start], glm4Text
		}
		name := trimRightSpace(t[:nl])
		if !hasName(names, name) {
			return dst[:start], glm4Text
		}
		rest := trimLeftSpace(t[nl+1:])
		if rest == "" {
			if final {
				return dst[:start], glm4Text
			}
			return dst, glm4More
		}
		if rest[0] != '{' {
			return dst[:start], glm4Text
		}
		dec := json.NewDecoder(strings.NewReader(rest))
		var obj json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			if !final && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
				return dst, glm4More
			}
			return dst[:start], glm4Text
		}
		dst = append(dst, glm4Call{Name: name, Arguments: string(obj)})
		t = trimLeftSpace(rest[dec.InputOffset():])
		// Between and after calls: nothing, <|assistant|> + next call,
		// <|observation|> (end of turn) or the next call directly.
		switch {
		case t == "":
			if final {
				return dst, glm4Calls
			}
			return dst, glm4More
		case strings.HasPrefix(t, glm4TokObservation):
			if trimLeftSpace(t[len(glm4TokObservation):]) != "" {
				return dst[:start], glm4Text
			}
			if final {
				return dst, glm4Calls
			}
			return dst, glm4More
		case strings.HasPrefix(t, glm4TokAssistant):
			t = trimLeftSpace(t[len(glm4TokAssistant):])
			if t == "" {
				if final {
					return dst[:start], glm4Text
				}
				return dst, glm4More
			}
		case !final && (strings.HasPrefix(glm4TokAssistant, t) || strings.HasPrefix(glm4TokObservation, t)):
			return dst, glm4More
		}
	}
}

// parseGLM4Calls extracts calls from a complete reply text; ok is false when
// the text is not entirely GLM-4 native calls to the given tools.
func parseGLM4Calls(text string, names []string) ([]glm4Call, bool) {
	if len(names) == 0 {
		return nil, false
	}
	calls, v := scanGLM4(nil, text, names, true)
	return calls, v == glm4Calls
}

// applyGLM4Calls turns sync choices whose text is GLM-4 native calls into
// V4 tool calls (finish_reason tool_calls, content empty). Choices that
// already carry the engine's own tool calls are left alone.
func applyGLM4Calls(out *zhipuai.ChatCompletion, names []string) {
	for i := range out.Choices {
		c := &out.Choices[i]
		if len(c.Message.ToolCalls) > 0 || c.Message.Content == "" {
			continue
		}
		calls, ok := parseGLM4Calls(c.Message.Content, names)
		if !ok {
			continue
		}
		setTextCalls(c, calls, "")
	}
}

// setTextCalls puts the calls parsed from a sync choice's text in its
// place: V4 tool calls, content what text stays (before the calls), and
// finish_reason tool_calls where the engine said stop.
func setTextCalls(c *zhipuai.Choice, calls []glm4Call, content string) {
	prefix := "call_" + platform.NewID(time.Now())
	for k, gc := range calls {
		c.Message.ToolCalls = append(c.Message.ToolCalls, zhipuai.ToolCall{
			ID: fmt.Sprintf("%s_%d", prefix, k), Type: zhipuai.ToolTypeFunction, Index: zhipuai.Ptr(k),
			Function: zhipuai.FunctionCall{Name: gc.Name, Arguments: gc.Arguments},
		})
	}
	c.Message.Content = content
	if c.FinishReason == zhipuai.FinishStop || c.FinishReason == "" {
		c.FinishReason = zhipuai.FinishToolCalls
	}
}

// glm4Stream holds the start of a streamed reply until it is clear whether
// it is a GLM-4 native call. Plain text is released as soon as its first
// characters cannot begin a tool name (or the name line is not followed by
// "{"), so ordinary answers are delayed by at most the few characters that
// look like the start of a tool name. Once the text looks like a call it is
// held to the end of the stream: only the whole text tells calls from text
// that merely starts like one.
type glm4Stream struct {
	names []string
	state int // glm4Sniff, glm4Pass or glm4Hold
	buf   []byte
	calls []glm4Call
}

const (
	glm4Sniff = iota // deciding
	glm4Pass         // text: content flows through
	glm4Hold         // looks like a call: held to the end
)

func newGLM4Stream(names []string) *glm4Stream {
	return &glm4Stream{names: names}
}

// feed takes one content piece and returns the content to emit now.
func (g *glm4Stream) feed(piece string) string {
	switch g.state {
	case glm4Pass:
		return piece
	case glm4Hold:
		// Re-scan only when the piece can have completed a JSON value or
		// started text after it; this keeps a long call linear in practice.
		g.buf = append(g.buf, piece...)
		if strings.ContainsAny(piece, "}<") || trimLeftSpace(piece) != "" && g.afterObject() {
			var v glm4Verdict
			g.calls, v = scanGLM4(g.calls[:0], string(g.buf), g.names, false)
			if v == glm4Text {
				return g.release()
			}
		}
		return ""
	}
	g.buf = append(g.buf, piece...)
	var v glm4Verdict
	g.calls, v = scanGLM4(g.calls[:0], string(g.buf), g.names, false)
	switch v {
	case glm4Text:
		return g.release()
	case glm4More:
		if g.pastName() {
			g.state = glm4Hold
		}
	}
	return ""
}

// pastName reports whether the held text has a tool-name line followed by
// "{" — from then on only the end of the stream decides.
func (g *glm4Stream) pastName() bool {
	t := trimLeftSpace(string(g.buf))
	nl := strings.IndexByte(t, '\n')
	return nl >= 0 && strings.HasPrefix(trimLeftSpace(t[nl+1:]), "{")
}

// afterObject reports whether at least one complete call was seen (text
// after it may now decide the verdict).
func (g *glm4Stream) afterObject() bool { return len(g.calls) > 0 }

// release switches to pass-through and returns the held text.
func (g *glm4Stream) release() string {
	g.state = glm4Pass
	s := string(g.buf)
	g.buf = g.buf[:0]
	g.calls = g.calls[:0]
	return s
}

// finish is called at the end of the stream. With convert false (the
// engine sent its own tool calls) held text is returned as text. Otherwise
// it returns either the calls the held text makes up, or the held text.
func (g *glm4Stream) finish(convert bool) (text string, calls []glm4Call) {
	if g.state == glm4Pass || len(g.buf) == 0 {
		return "", nil
	}
	if convert {
		var v glm4Verdict
		g.calls, v = scanGLM4(g.calls[:0], string(g.buf), g.names, true)
		if v == glm4Calls {
			g.state = glm4Pass
			g.buf = g.buf[:0]
			return "", g.calls
		}
	}
	return g.release(), nil
}

// glm4EngineRequest adjusts the engine request when this backend was told
// explicitly (ToolParserGLM4, ToolParserGLM45) that the gateway parses the calls: vLLM
// refuses tool_choice "auto" — and a missing tool_choice with tools, which
// it turns into "auto" — unless started with --enable-auto-tool-choice and
// a --tool-call-parser (vllm serving_chat.py; vLLM #9986 is exactly this
// with glm4), and it has no parser for GLM-4-9B. With tool_choice "none"
// it still renders the tools into the prompt (unless
// --exclude-tools-when-tool-choice-none) and returns the model's text,
// which the gateway then parses. The tools field itself is unchanged. Only
// vLLM: other engines drop the tools from the prompt on "none".
func (b *OpenAI) glm4EngineRequest(oreq *oaChatRequest, parser *textToolParser) {
	explicit := b.toolParser == ToolParserGLM4 || b.toolParser == ToolParserGLM45
	if parser == nil || !explicit || b.flavor != FlavorVLLM || len(oreq.Tools) == 0 {
		return
	}
	oreq.ToolChoice = "none"
}
