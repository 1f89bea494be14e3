package upstream

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"

	"github.com/glmkit/glmkit/zhipuai"
)

// Gateway-side extraction of GLM-4.5 and later tool calls (docs/v4.md §11).
//
// GLM-4.5, 4.6, 4.7 and 5 write a call as XML-like markup:
//
//	<tool_call>get_weather
//	<arg_key>city</arg_key>
//	<arg_value>北京</arg_value>
//	</tool_call>
//
// (4.7 drops the newlines). vLLM turns it into tool_calls only when started
// with --tool-call-parser glm45 / glm47, llama.cpp only with --jinja; an
// engine started without them hands the markup back as content. The chat
// templates write a string argument as it is and any other value as JSON
// (`v | tojson if v is not string`), so a value is a string when the
// tool's schema says so and JSON when it parses as JSON, else a string —
// the rule of vLLM's own glm45 parser.
//
// Only well-formed calls to the request's function tools convert; text
// before the first call stays content, and a reply with any malformed call
// stays text, untouched.

// ToolParserGLM45 always parses GLM-4.5+ markup calls on a backend.
const ToolParserGLM45 = "glm45"

const (
	glm45Open     = "<tool_call>"
	glm45Close    = "</tool_call>"
	glm45KeyOpen  = "<arg_key>"
	glm45KeyClose = "</arg_key>"
	glm45ValOpen  = "<arg_value>"
	glm45ValClose = "</arg_value>"
)

// glm45ModelRE matches engine model names of GLM-4.5 and later:
// zai-org/GLM-4.5-Air, glm-4.7-flash, GLM-4.6V, glm-5, glm4.6.
var glm45ModelRE = regexp.MustCompile(`(?i)glm-?(4\.[5-9]|[5-9])([^0-9]|$)`)

// GLM45ToolModel reports whether an engine model name belongs to the
// generation that writes calls as <tool_call> markup.
func GLM45ToolModel(model string) bool { return glm45ModelRE.MatchString(model) }

// toolText is a parser of tool calls written into the reply text, one per
// stream (glm4Stream, glm45Stream).
type toolText interface {
	// feed takes one content piece and returns the content to emit now.
	feed(piece string) string
	// finish returns the held text and the calls it makes up; with convert
	// false (the engine sent its own calls) everything held is text.
	finish(convert bool) (text string, calls []glm4Call)
}

// textToolParser says how one request's reply text is searched for calls.
type textToolParser struct {
	names  []string
	glm45  bool
	params map[string]map[string]string // tool → argument → JSON Schema type
}

// textToolParserFor picks the parser for a request on a backend with the
// given tool_parser mode: nil when the request offers no function tools or
// the mode and engine model name ask for none.
func textToolParserFor(mode string, req *zhipuai.ChatCompletionRequest) *textToolParser {
	glm45 := false
	switch mode {
	case ToolParserNone:
		return nil
	case ToolParserGLM45:
		glm45 = true
	case ToolParserGLM4:
	default:
		switch {
		case GLM45ToolModel(req.Model):
			glm45 = true
		case !GLM4NativeToolModel(req.Model):
			return nil
		}
	}
	p := &textToolParser{glm45: glm45}
	for _, t := range req.Tools {
		if t.Type != zhipuai.ToolTypeFunction || t.Function == nil || t.Function.Name == "" {
			continue
		}
		p.names = append(p.names, t.Function.Name)
		if glm45 {
			if p.params == nil {
				p.params = map[string]map[string]string{}
			}
			p.params[t.Function.Name] = schemaTypes(t.Function.Parameters)
		}
	}
	if p.names == nil {
		return nil
	}
	return p
}

// schemaTypes reads the "type" of each property of a JSON Schema object.
func schemaTypes(schema json.RawMessage) map[string]string {
	var s struct {
		Properties map[string]struct {
			Type any `json:"type"`
		} `json:"properties"`
	}
	if json.Unmarshal(schema, &s) != nil {
		return nil
	}
	out := make(map[string]string, len(s.Properties))
	for k, v := range s.Properties {
		if t, ok := v.Type.(string); ok {
			out[k] = t
		}
	}
	return out
}

// stream returns the parser for a stream.
func (p *textToolParser) stream() toolText {
	if p.glm45 {
		return &glm45Stream{p: p}
	}
	return newGLM4Stream(p.names)
}

// apply converts sync choices whose text holds calls.
func (p *textToolParser) apply(out *zhipuai.ChatCompletion) {
	if !p.glm45 {
		applyGLM4Calls(out, p.names)
		return
	}
	for i := range out.Choices {
		c := &out.Choices[i]
		if len(c.Message.ToolCalls) > 0 || !strings.Contains(c.Message.Content, glm45Open) {
			continue
		}
		head, calls, ok := p.parseGLM45(c.Message.Content)
		if !ok {
			continue
		}
		setTextCalls(c, calls, head)
	}
}

// parseGLM45 splits text into the content before the first call and the
// calls. ok is false when there is no call, a call is malformed or names
// a tool the request did not offer, or text other than blanks follows a
// call.
func (p *textToolParser) parseGLM45(text string) (head string, calls []glm4Call, ok bool) {
	i := strings.Index(text, glm45Open)
	if i < 0 {
		return "", nil, false
	}
	head, rest := trimRightSpace(text[:i]), text[i:]
	for {
		rest = trimLeftSpace(rest)
		if rest == "" {
			return head, calls, len(calls) > 0
		}
		if !strings.HasPrefix(rest, glm45Open) {
			return "", nil, false
		}
		end := strings.Index(rest, glm45Close)
		if end < 0 {
			return "", nil, false
		}
		c, ok := p.parseGLM45Call(rest[len(glm45Open):end])
		if !ok {
			return "", nil, false
		}
		calls = append(calls, c)
		rest = rest[end+len(glm45Close):]
	}
}

// parseGLM45Call reads "name<arg_key>k</arg_key><arg_value>v</arg_value>…".
func (p *textToolParser) parseGLM45Call(body string) (glm4Call, bool) {
	k := strings.Index(body, glm45KeyOpen)
	if k < 0 {
		k = len(body)
	}
	name := strings.TrimSpace(body[:k])
	if !hasName(p.names, name) {
		return glm4Call{}, false
	}
	types := p.params[name]
	var args bytes.Buffer
	args.WriteByte('{')
	rest := body[k:]
	for n := 0; ; n++ {
		rest = trimLeftSpace(rest)
		if rest == "" {
			break
		}
		key, after, ok := between(rest, glm45KeyOpen, glm45KeyClose)
		if !ok {
			return glm4Call{}, false
		}
		val, after, ok := between(trimLeftSpace(after), glm45ValOpen, glm45ValClose)
		if !ok {
			return glm4Call{}, false
		}
		rest = after
		if n > 0 {
			args.WriteByte(',')
		}
		kb, _ := json.Marshal(strings.TrimSpace(key))
		args.Write(kb)
		args.WriteByte(':')
		args.Write(argValue(val, types[strings.TrimSpace(key)]))
	}
	args.WriteByte('}')
	return glm4Call{Name: name, Arguments: args.String()}, true
}

// between reads open…close at the start of s and returns what lies
// between and what follows.
func between(s, open, close string) (inner, after string, ok bool) {
	if !strings.HasPrefix(s, open) {
		return "", "", false
	}
	s = s[len(open):]
	j := strings.Index(s, close)
	if j < 0 {
		return "", "", false
	}
	return s[:j], s[j+len(close):], true
}

// argValue encodes one argument: as a string when the schema says string
// (or the text is not JSON), else as the JSON the model wrote.
func argValue(v, typ string) []byte {
	if typ != "string" {
		t := strings.TrimSpace(v)
		var buf bytes.Buffer
		if t != "" && json.Valid([]byte(t)) && json.Compact(&buf, []byte(t)) == nil {
			return buf.Bytes()
		}
	}
	b, _ := json.Marshal(v)
	return b
}

// glm45Stream passes content until "<tool_call>" appears and holds
// everything from there to the end of the stream, when the whole text
// decides between calls and text. Only a tail that could be the start of
// "<tool_call>" is held back before that, so ordinary text is delayed by
// at most ten bytes.
type glm45Stream struct {
	p       *textToolParser
	pending []byte // a tail that may start "<tool_call>"
	held    []byte // from "<tool_call>" on
}

func (g *glm45Stream) feed(piece string) string {
	if g.held != nil {
		g.held = append(g.held, piece...)
		return ""
	}
	s := string(g.pending) + piece
	g.pending = g.pending[:0]
	if i := strings.Index(s, glm45Open); i >= 0 {
		g.held = append([]byte{}, s[i:]...)
		return s[:i]
	}
	// Hold back the longest tail that is a prefix of the tag.
	for n := min(len(s), len(glm45Open)-1); n > 0; n-- {
		if strings.HasPrefix(glm45Open, s[len(s)-n:]) {
			g.pending = append(g.pending, s[len(s)-n:]...)
			return s[:len(s)-n]
		}
	}
	return s
}

func (g *glm45Stream) finish(convert bool) (string, []glm4Call) {
	text := string(g.pending) + string(g.held)
	g.pending, g.held = g.pending[:0], nil
	if text == "" {
		return "", nil
	}
	if convert {
		if head, calls, ok := g.p.parseGLM45(text); ok {
			return head, calls
		}
	}
	return text, nil
}
