package upstream

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/glmkit/glmkit/zhipuai"
)

// decodeChatReply decodes a sync chat reply. Replies of the usual shape
// (id, request_id, created, model, choices whose message is a role and a
// text, usage with its counts) are read in one pass with the chunk
// scanner's cursor; everything else, and every reply the pass is not sure
// of, goes to encoding/json, which then decides exactly as before. The
// pass was worth it because encoding/json, with CompletionMessage's own
// UnmarshalJSON re-scanning the message, was the largest piece of glm
// serve's own CPU on a sync chat (docs/design.md §6).
func decodeChatReply(raw []byte, out *zhipuai.ChatCompletion) error {
	if scanChatReply(raw, out) {
		return nil
	}
	*out = zhipuai.ChatCompletion{}
	return json.Unmarshal(raw, out)
}

// The fields the pass reads, level by level. A key the pass does not know
// is skipped, as encoding/json skips it, unless it could be one of these
// under encoding/json's case-insensitive matching: then the pass gives up.
var (
	replyKeys   = []string{"id", "request_id", "created", "model", "choices", "usage", "web_search", "content_filter"}
	choiceKeys  = []string{"index", "finish_reason", "message"}
	messageKeys = []string{"role", "content", "reasoning_content", "tool_calls"}
	usageKeys   = []string{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"}
)

// replyScan is the pass over one reply: the cursor and the reply it fills.
type replyScan struct {
	jscan
}

// scanChatReply fills out from raw and reports whether it could; false
// leaves out partly written.
func scanChatReply(raw []byte, out *zhipuai.ChatCompletion) bool {
	s := replyScan{jscan{b: raw}}
	if !s.object(replyKeys, func(k int) bool {
		switch replyKeys[k] {
		case "id":
			return s.string(&out.ID)
		case "request_id":
			return s.string(&out.RequestID)
		case "created":
			return s.int64(&out.Created)
		case "model":
			return s.string(&out.Model)
		case "choices":
			return s.choices(out)
		case "usage":
			return s.usage(&out.Usage)
		}
		return false // web_search, content_filter: encoding/json's
	}) {
		return false
	}
	s.ws()
	return s.i == len(s.b)
}

// object reads an object (possibly empty) with fields.
func (s *replyScan) object(keys []string, field func(k int) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	var seen uint
	return s.fields(keys, &seen, field)
}

// fields reads the members of an object whose '{' was consumed and that
// has one or more. For a key of keys (exactly as written) it calls field
// with the key's index; a key seen twice, escaped, not ASCII, or equal to
// one of keys but for case gives up; other keys are skipped.
func (s *replyScan) fields(keys []string, seen *uint, field func(k int) bool) bool {
	for {
		key, esc, ok := s.str()
		if !ok || esc || !s.eat(':') {
			return false
		}
		k := -1
		for i, name := range keys {
			if string(key) == name {
				k = i
				break
			}
			if equalFoldASCII(key, name) {
				return false
			}
		}
		switch {
		case k < 0:
			for _, c := range key {
				if c >= utf8.RuneSelf {
					return false // Unicode case folding: encoding/json's call
				}
			}
			if !s.skipValue(0) {
				return false
			}
		case *seen&(1<<k) != 0 || !field(k):
			return false
		default:
			*seen |= 1 << k
		}
		if !s.eat(',') {
			return s.eat('}')
		}
	}
}

// string reads a JSON string into v. Escapes are decoded by encoding/json
// (rare outside message text); bytes that are not UTF-8, which
// encoding/json would replace, give up.
func (s *replyScan) string(v *string) bool {
	start := s.i
	raw, esc, ok := s.str()
	switch {
	case !ok:
		return false
	case esc:
		return json.Unmarshal(s.b[start:s.i], v) == nil
	case !utf8.Valid(raw):
		return false
	}
	*v = string(raw)
	return true
}

// integer reads a JSON integer as written (digits, an optional minus);
// fractions and exponents give up, so encoding/json decides about them.
func (s *replyScan) integer(bits int) (int64, bool) {
	s.ws()
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	d := j
	for j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9' {
		j++
	}
	if j == d || j-d > 1 && s.b[d] == '0' || j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E') {
		return 0, false // no digits, a leading zero (not JSON), a fraction or an exponent
	}
	n, err := strconv.ParseInt(string(s.b[s.i:j]), 10, bits)
	if err != nil {
		return 0, false
	}
	s.i = j
	return n, true
}

func (s *replyScan) int64(v *int64) bool {
	n, ok := s.integer(64)
	*v = n
	return ok
}

func (s *replyScan) int(v *int) bool {
	n, ok := s.integer(strconv.IntSize)
	*v = int(n)
	return ok
}

// choices reads a non-empty array of choices.
func (s *replyScan) choices(out *zhipuai.ChatCompletion) bool {
	if !s.eat('[') || s.eat(']') {
		return false
	}
	out.Choices = make([]zhipuai.Choice, 0, 1)
	for {
		out.Choices = append(out.Choices, zhipuai.Choice{})
		c := &out.Choices[len(out.Choices)-1]
		if !s.object(choiceKeys, func(k int) bool {
			switch choiceKeys[k] {
			case "index":
				return s.int(&c.Index)
			case "finish_reason":
				return s.string(&c.FinishReason)
			}
			return s.message(&c.Message)
		}) {
			return false
		}
		if !s.eat(',') {
			return s.eat(']')
		}
	}
}

// message reads a message whose content is a string (a null or a list of
// parts, and tool calls, are encoding/json's).
func (s *replyScan) message(m *zhipuai.CompletionMessage) bool {
	return s.object(messageKeys, func(k int) bool {
		switch messageKeys[k] {
		case "role":
			return s.string(&m.Role)
		case "content":
			return s.string(&m.Content)
		case "reasoning_content":
			return s.string(&m.ReasoningContent)
		}
		return false
	})
}

// usage reads the token counts and their details.
func (s *replyScan) usage(u *zhipuai.Usage) bool {
	return s.object(usageKeys, func(k int) bool {
		switch usageKeys[k] {
		case "prompt_tokens":
			return s.int(&u.PromptTokens)
		case "completion_tokens":
			return s.int(&u.CompletionTokens)
		case "total_tokens":
			return s.int(&u.TotalTokens)
		case "prompt_tokens_details":
			u.PromptTokensDetails = new(zhipuai.PromptTokensDetails)
			return s.detail("cached_tokens", &u.PromptTokensDetails.CachedTokens)
		}
		u.CompletionTokensDetails = new(zhipuai.CompletionTokensDetails)
		return s.detail("reasoning_tokens", &u.CompletionTokensDetails.ReasoningTokens)
	})
}

// detail reads {"name": n}; anything else is encoding/json's.
func (s *replyScan) detail(name string, v *int) bool {
	return s.object([]string{name}, func(int) bool { return s.int(v) })
}

// equalFoldASCII reports whether key and name are equal but for the case
// of ASCII letters.
func equalFoldASCII(key []byte, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := range key {
		a, b := key[i], name[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// skipValue steps over one value of any kind, as jscan.skip does, but also
// checks the escapes of its strings: encoding/json refuses a whole reply
// for a bad escape anywhere in it, so the pass must too.
func (s *replyScan) skipValue(depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		return s.validString()
	case '{':
		s.i++
		if s.eat('}') {
			return true
		}
		for {
			if s.ws(); !s.validString() || !s.eat(':') || !s.skipValue(depth+1) {
				return false
			}
			if s.eat(',') {
				continue
			}
			return s.eat('}')
		}
	case '[':
		s.i++
		if s.eat(']') {
			return true
		}
		for {
			if !s.skipValue(depth + 1) {
				return false
			}
			if s.eat(',') {
				continue
			}
			return s.eat(']')
		}
	}
	return s.literal()
}

// validString steps over a string at the cursor whose escapes are JSON's.
func (s *replyScan) validString() bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if j+1 >= len(s.b) {
				return false
			}
			j++
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}
