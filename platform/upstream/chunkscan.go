package upstream

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/glmkit/glmkit/internal/jsonscan"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// contentChunk is what the pass-through path needs from a V4 chunk that
// carries only text: whether it may go out as it came, and how many
// completion tokens its text is worth.
type contentChunk struct {
	model   []byte // the "model" value as written (escapes kept); nil when absent
	modelAt int    // offset of the model value's opening quote (valid when model != nil)
	bodyAt  int    // offset just after the chunk's '{' (where a missing model goes)
	choices int
	// roleAt holds, for each delta without a role, the offset just after its
	// '{': the place a splice puts "role":"assistant". OpenAI-compatible
	// engines, and some upstreams after the first chunk, send no role.
	roleAt  [maxSplices]int
	noRoles int
	noDelta bool // some choice has no delta (the full path decides what it becomes)
	text    bool // some delta carries non-empty content or reasoning_content
	tokens  int  // estimated tokens of content + reasoning_content
	// id and created are the values as written, nil when absent: the
	// first chunk's are kept for a final chunk the stream may have to make
	// up (v4Stream.synthFinal). oddHead says one of them is not what the
	// decoder reads without help (not a string without escapes, not a
	// number): the first chunk then takes the full decode.
	id      []byte
	created []byte
	oddHead bool
	// The end of a stream: usage (hasUsage says it is there and not null,
	// read as encoding/json would by the sync reply's scanUsage), whether
	// some choice has a finish_reason, and the first choice's as written
	// (a string without escapes).
	usage    zhipuai.Usage
	hasUsage bool
	finished bool
	finish   []byte
}

// maxSplices bounds the role splices of one chunk; a chunk with more
// role-less deltas (many choices) takes the full path.
const maxSplices = 4

// scanContentChunk reads a V4 chunk without decoding it into a struct: a
// full json.Unmarshal of every chunk was ~17 % of glm serve's CPU on
// streams (notes/load.md), although most chunks are plain text that passes
// through unchanged. ok=false sends the chunk to the full decode: anything
// that carries an error or tool calls, usage the pass is not sure of
// (jsonscan's rules), a finish_reason that is not a string without
// escapes, a null where a string is expected, or bytes that do not scan as
// one JSON object. A null usage, error, finish_reason or tool_calls is the
// same as an absent one (docs/v4.md §8.11): OpenAI-style engines put
// "finish_reason":null on every chunk and a role on the first delta only.
// A chunk with usage or a finish_reason scans (the final chunk, read
// without the decode: docs/design.md §6); whether it may pass as it came
// is v4Stream's rule (splice refuses it, passFinal decides).
//
// Keys other than those named are skipped: the bytes are relayed as they
// are, which is what the full path does with a chunk it does not change.
func scanContentChunk(b []byte) (cc contentChunk, ok bool) {
	s := jscan{b: b}
	if !s.eat('{') {
		return cc, false
	}
	cc.bodyAt = s.i
	if s.eat('}') {
		return cc, false
	}
	if !s.fields(chunkKeys, func(key []byte) bool {
		switch string(key) {
		case "model":
			v, _, ok := s.str()
			if !ok {
				return false
			}
			cc.model, cc.modelAt = v, s.i-len(v)-2
			return true
		case "choices":
			return s.choices(&cc)
		case "id":
			if s.null() {
				cc.oddHead = true
				return true
			}
			v, esc, ok := s.str()
			cc.id, cc.oddHead = v, cc.oddHead || esc
			return ok
		case "created":
			s.ws()
			at := s.i
			if !s.null() && !s.whole(64) {
				return false
			}
			cc.created = s.b[at:s.i]
			return true
		case "request_id":
			if s.null() {
				return true
			}
			_, _, ok := s.str()
			return ok
		case "web_search":
			return s.typed(func(raw []byte) error { return json.Unmarshal(raw, new([]zhipuai.WebSearchResult)) })
		case "content_filter":
			return s.typed(func(raw []byte) error { return json.Unmarshal(raw, new([]zhipuai.ContentFilter)) })
		case "usage":
			return s.usage(&cc)
		case "error", "finish_reason", "tool_calls":
			return s.null()
		default:
			return s.skip()
		}
	}) {
		return cc, false
	}
	s.ws()
	return cc, s.i == len(b)
}

// jscan is a cursor over JSON bytes.
type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat consumes c (after white space) if it is next.
func (s *jscan) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// members reads the members of an object whose '{' has been consumed and
// which has at least one member, up to and including its '}'. For each key
// (escaped keys are refused) it calls field with the cursor at the value;
// field must consume the value and report whether it may be accepted.
func (s *jscan) members(field func(key []byte) bool) bool {
	for {
		key, esc, ok := s.str()
		if !ok || esc || !s.eat(':') || !field(key) {
			return false
		}
		if !s.eat(',') {
			return s.eat('}')
		}
	}
}

// fields is members for an object the full decode reads into a struct
// whose JSON names are names (jsonscan.Names). It refuses what makes the
// decode differ from a pass over the keys in order: one of names seen
// twice (the decode keeps the last), a key that equals one of names but
// for case (encoding/json matches keys without regard to case: "Usage"
// is usage), a key that is not ASCII (Unicode case folding). Other keys
// are the struct's unknown ones; field skips them.
func (s *jscan) fields(names []string, field func(key []byte) bool) bool {
	var seen uint64
	return s.members(func(key []byte) bool {
		for _, b := range key {
			if b >= utf8.RuneSelf {
				return false
			}
		}
		for k, n := range names {
			if string(key) == n {
				if seen&(1<<k) != 0 {
					return false
				}
				seen |= 1 << k
				break
			}
			if strings.EqualFold(string(key), n) {
				return false
			}
		}
		return field(key)
	})
}

// str reads a string and returns the bytes between its quotes as written;
// esc reports backslash escapes in them.
func (s *jscan) str() (raw []byte, esc, ok bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			if esc && !json.Valid(s.b[start-1:j+1]) {
				return nil, false, false // an escape encoding/json refuses
			}
			s.i = j + 1
			return s.b[start:j], esc, true
		case c == '\\':
			esc = true
			j++ // the escaped byte cannot end the string
		case c < 0x20:
			return nil, false, false // raw control characters are not JSON
		}
	}
	return nil, false, false
}

// null consumes a literal null if it is next.
func (s *jscan) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// text reads a string value and returns its token estimate; empty strings
// leave cc.text as it was.
func (s *jscan) text(cc *contentChunk) (int, bool) {
	start := s.i
	raw, esc, ok := s.str()
	if !ok {
		return 0, false
	}
	if len(raw) > 0 {
		cc.text = true
	}
	if esc || !utf8.Valid(raw) {
		// Escapes (\n, \u…) are rarer than plain text: decode just this
		// string so the estimate matches the full path exactly (bytes that
		// are not UTF-8 too: the decode replaces them).
		var v string
		if json.Unmarshal(s.b[start:s.i], &v) != nil {
			return 0, false
		}
		return platform.EstimateTokens(v), true
	}
	if len(raw) == 0 {
		return 0, true
	}
	// EstimateTokens only reads its argument: viewing the bytes as a string
	// saves a copy per chunk.
	return platform.EstimateTokens(unsafe.String(&raw[0], len(raw))), true
}

// usage reads a chunk's usage: null, or an object scanUsage reads
// exactly as encoding/json would (else the chunk takes the full decode).
func (s *jscan) usage(cc *contentChunk) bool {
	if s.null() {
		return true
	}
	end, ok := jsonscan.SkipAt(s.b, s.i)
	if !ok {
		return false
	}
	c := jsonscan.New(s.b[s.i:end])
	if !scanUsage(c, &cc.usage) || !c.End() {
		return false
	}
	s.i, cc.hasUsage = end, true
	return true
}

// finishReason reads a choice's finish_reason: null, or a string without
// escapes (first says it is the first choice's, which v4Stream's rules
// read).
func (s *jscan) finishReason(cc *contentChunk, first bool) bool {
	if s.null() {
		return true
	}
	v, esc, ok := s.str()
	if !ok || esc {
		return false
	}
	cc.finished = true
	if first {
		cc.finish = v
	}
	return true
}

// choices reads the "choices" array of a content chunk.
func (s *jscan) choices(cc *contentChunk) bool {
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		return true
	}
	for {
		if !s.eat('{') {
			return false
		}
		cc.choices++
		hasDelta := false
		if !s.eat('}') && !s.fields(chunkChoiceKeys, func(key []byte) bool {
			switch string(key) {
			case "delta":
				hasDelta = true
				return s.delta(cc)
			case "finish_reason":
				return s.finishReason(cc, cc.choices == 1)
			case "index":
				return s.null() || s.whole(strconv.IntSize)
			default:
				return s.skip()
			}
		}) {
			return false
		}
		if !hasDelta {
			cc.noDelta = true
		}
		if s.eat(',') {
			continue
		}
		return s.eat(']')
	}
}

// delta reads one choice's delta.
func (s *jscan) delta(cc *contentChunk) bool {
	if !s.eat('{') {
		return false
	}
	at := s.i
	if s.eat('}') {
		// An empty delta carries nothing; the full path drops or keeps it.
		cc.noDelta = true
		return true
	}
	role := false
	if !s.fields(deltaKeys, func(key []byte) bool {
		switch string(key) {
		case "role":
			// An empty role would need a replacement, not a splice.
			v, _, ok := s.str()
			role = true
			return ok && len(v) > 0
		case "content", "reasoning_content":
			n, ok := s.text(cc)
			cc.tokens += n
			return ok
		case "tool_calls":
			return s.null()
		default:
			return s.skip()
		}
	}) {
		return false
	}
	if !role {
		if cc.noRoles == maxSplices {
			return false
		}
		cc.roleAt[cc.noRoles] = at
		cc.noRoles++
	}
	return true
}

// The JSON names of a chunk's types, level by level (see other).
var (
	chunkKeys       = jsonscan.Names(reflect.TypeFor[zhipuai.ChatCompletionChunk]())
	chunkChoiceKeys = jsonscan.Names(reflect.TypeFor[zhipuai.ChunkChoice]())
	deltaKeys       = jsonscan.Names(reflect.TypeFor[zhipuai.Delta]())
)

// skip steps over one value of any kind, checking it is JSON (the
// shared cursor's rules, escapes included: internal/jsonscan).
func (s *jscan) skip() bool {
	i, ok := jsonscan.SkipAt(s.b, s.i)
	if ok {
		s.i = i
	}
	return ok
}

// whole steps over a number that an integer field of bits takes, as
// encoding/json reads it (strconv.ParseInt of the literal).
func (s *jscan) whole(bits int) bool {
	s.ws()
	i, ok := jsonscan.NumberAt(s.b, s.i)
	if !ok {
		return false
	}
	if _, err := strconv.ParseInt(string(s.b[s.i:i]), 10, bits); err != nil {
		return false
	}
	s.i = i
	return true
}

// typed steps over a value the scan does not read but the full decode
// types (rare: web search results, content filter verdicts), when decode,
// the decode of that value alone, takes it.
func (s *jscan) typed(decode func(raw []byte) error) bool {
	if s.null() {
		return true
	}
	s.ws()
	at := s.i
	return s.skip() && decode(s.b[at:s.i]) == nil
}

// number steps over a JSON number.
func (s *jscan) number() bool {
	i, ok := jsonscan.NumberAt(s.b, s.i)
	if ok {
		s.i = i
	}
	return ok
}
