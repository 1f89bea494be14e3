package upstream

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/glmkit/glmkit/zhipuai"
)

// decodeEmbeddings decodes an embeddings reply (docs/v4.md §5) in one pass
// over its bytes. The vectors, nearly all of the reply, are not parsed at
// all: each is checked (numbers, finite, counted) and kept as the bytes
// the upstream wrote (zhipuai.Embedding.Raw), which the HTTP layer relays
// as they are. Through encoding/json the reply was scanned twice, every
// number parsed, stored by reflection and formatted again on the way out:
// most of glm serve's CPU on embeddings. A reply in any other shape than
// the plain one (escaped keys, an unexpected value) is left to
// encoding/json, which decides what it means exactly as before.
func decodeEmbeddings(raw []byte, out *zhipuai.EmbeddingResponse) error {
	if scanEmbeddings(raw, out) {
		return nil
	}
	*out = zhipuai.EmbeddingResponse{}
	return json.Unmarshal(raw, out)
}

// scanEmbeddings is the fast path of decodeEmbeddings; false means "use
// encoding/json".
func scanEmbeddings(raw []byte, out *zhipuai.EmbeddingResponse) bool {
	s := jscan{b: raw}
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return s.end()
	}
	seenData := false
	if !s.members(func(key []byte) bool {
		switch string(key) {
		case "model":
			return s.plainString(&out.Model)
		case "object":
			return s.plainString(&out.Object)
		case "data":
			// A second "data" is merged into the first's elements by
			// encoding/json: that rare reply is left to it.
			if seenData {
				return false
			}
			seenData = true
			return s.embeddingList(out)
		case "usage":
			// Small: its exact decoding rules stay encoding/json's.
			start := s.i
			if !s.skip() {
				return false
			}
			return json.Unmarshal(raw[start:s.i], &out.Usage) == nil
		default:
			return !foldsTo(key, "model", "object", "data", "usage") && s.skip()
		}
	}) {
		return false
	}
	return s.end()
}

// foldsTo reports whether encoding/json could match key to one of names
// other than exactly: it matches field names case-insensitively, with
// Unicode folding (so any non-ASCII key is left to it as well).
func foldsTo(key []byte, names ...string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true
		}
	}
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// end reports whether only white space is left.
func (s *jscan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// plainString reads a string without escapes into v (null leaves it).
func (s *jscan) plainString(v *string) bool {
	if s.null() {
		return true
	}
	raw, esc, ok := s.str()
	if !ok || esc {
		return false
	}
	*v = string(raw)
	return true
}

// embeddingList reads "data": an array of {"index","object","embedding"}.
func (s *jscan) embeddingList(out *zhipuai.EmbeddingResponse) bool {
	if s.null() {
		return true
	}
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
		var e zhipuai.Embedding
		if !s.eat('}') && !s.members(func(key []byte) bool {
			switch string(key) {
			case "index":
				return s.integer(&e.Index)
			case "object":
				return s.plainString(&e.Object)
			case "embedding":
				return s.vector(&e)
			default:
				return !foldsTo(key, "index", "object", "embedding") && s.skip()
			}
		}) {
			return false
		}
		out.Data = append(out.Data, e)
		if !s.eat(',') {
			return s.eat(']')
		}
	}
}

// int reads an integer that fits an int.
func (s *jscan) integer(v *int) bool {
	s.ws()
	start := s.i
	if !s.number() {
		return false
	}
	n, err := strconv.Atoi(unsafe.String(&s.b[start], s.i-start))
	*v = n
	return err == nil
}

// vector reads an array of numbers (kept as bytes in e.Raw), or a base64
// string of little-endian float32 values (decoded, as Vector does).
func (s *jscan) vector(e *zhipuai.Embedding) bool {
	v := &e.Embedding
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '"' {
		raw, esc, ok := s.str()
		if !ok || esc {
			return false
		}
		f, err := zhipuai.DecodeBase64Vector(string(raw))
		*v, e.Raw, e.RawDims = f, nil, 0 // a repeated key: the last one counts
		return err == nil
	}
	if s.null() {
		return true
	}
	s.ws()
	start := s.i
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		*v, e.Raw, e.RawDims = zhipuai.Vector{}, nil, 0
		return true
	}
	// The numbers are checked, counted and kept as the upstream wrote
	// them: the HTTP layer relays floats as these bytes, and parses them
	// only to convert to base64 (docs/v4.md §5).
	end, n, ok := scanNumbers(s.b, s.i)
	if !ok {
		return false // out of range or not numbers: encoding/json says what that is
	}
	s.i = end
	*v, e.Raw, e.RawDims = nil, s.b[start:end], n
	return true
}

// scanNumbers checks the rest of a non-empty JSON array of numbers, from
// just after its '[': each number in JSON's grammar and finite as a
// float64 (finiteNumber). It returns the index just after the ']' and how
// many numbers it read; ok is false for anything else. One tight loop over
// the bytes, not the general scanner's calls per token: a vector is
// nearly all of an embeddings reply, and this check is all glm serve does
// with it (docs/design.md §6).
func scanNumbers(b []byte, i int) (end, n int, ok bool) {
	for {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		tok := i
		if i < len(b) && b[i] == '-' {
			i++
		}
		switch {
		case i >= len(b):
			return 0, 0, false
		case b[i] == '0':
			i++
		case b[i] >= '1' && b[i] <= '9':
			i++
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
		default:
			return 0, 0, false
		}
		if i < len(b) && b[i] == '.' {
			i++
			k := i
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
			if i == k {
				return 0, 0, false
			}
		}
		if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
			i++
			if i < len(b) && (b[i] == '+' || b[i] == '-') {
				i++
			}
			k := i
			for i < len(b) && b[i] >= '0' && b[i] <= '9' {
				i++
			}
			if i == k || !finiteNumber(b[tok:i]) {
				return 0, 0, false
			}
		} else if i-tok > 300 && !finiteNumber(b[tok:i]) {
			return 0, 0, false
		}
		n++
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
		if i >= len(b) {
			return 0, 0, false
		}
		switch b[i] {
		case ',':
			i++
		case ']':
			return i + 1, n, true
		default:
			return 0, 0, false
		}
	}
}

// finiteNumber: the JSON number tok reads as a finite float64. Without
// an exponent and with at most 300 digits it always does; otherwise
// strconv decides.
func finiteNumber(tok []byte) bool {
	plain := len(tok) <= 300
	for _, c := range tok {
		if c == 'e' || c == 'E' {
			plain = false
			break
		}
	}
	if plain {
		return true
	}
	x, err := strconv.ParseFloat(unsafe.String(&tok[0], len(tok)), 64)
	return err == nil && !math.IsInf(x, 0)
}
