package upstream

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unsafe"

	"github.com/glmkit/glmkit/zhipuai"
)

// decodeEmbeddings decodes an embeddings reply (docs/v4.md §5) in one pass
// over its bytes: the vectors, nearly all of the reply, are parsed number
// by number straight into their []float64. Through encoding/json they were
// scanned twice (once to check the document, once by Vector's own
// decoder) and stored by reflection: most of glm serve's CPU on
// embeddings. A reply in any other shape than the plain one (escaped
// keys, an unexpected value) is left to encoding/json, which decides what
// it means exactly as before.
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
	if !s.members(func(key []byte) bool {
		switch string(key) {
		case "model":
			return s.plainString(&out.Model)
		case "object":
			return s.plainString(&out.Object)
		case "data":
			return s.embeddingList(out)
		case "usage":
			// Small: its exact decoding rules stay encoding/json's.
			start := s.i
			if !s.skip(0) {
				return false
			}
			return json.Unmarshal(raw[start:s.i], &out.Usage) == nil
		default:
			return s.skip(0)
		}
	}) {
		return false
	}
	return s.end()
}

var comma = []byte{','}

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
				return s.vector(&e.Embedding)
			default:
				return s.skip(0)
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

// vector reads an array of numbers, or a base64 string of little-endian
// float32 values (what Vector accepts).
func (s *jscan) vector(v *zhipuai.Vector) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '"' {
		raw, esc, ok := s.str()
		if !ok || esc {
			return false
		}
		f, err := zhipuai.DecodeBase64Vector(string(raw))
		*v = f
		return err == nil
	}
	if s.null() {
		return true
	}
	if !s.eat('[') {
		return false
	}
	if s.eat(']') {
		*v = zhipuai.Vector{}
		return true
	}
	// Counting the commas first (a memchr-speed pass) sizes the vector
	// exactly: one allocation.
	n := 1
	if j := bytes.IndexByte(s.b[s.i:], ']'); j >= 0 {
		n += bytes.Count(s.b[s.i:s.i+j], comma)
	}
	f := make([]float64, 0, n)
	for {
		s.ws()
		start := s.i
		if !s.number() {
			return false
		}
		x, err := strconv.ParseFloat(unsafe.String(&s.b[start], s.i-start), 64)
		if err != nil || math.IsInf(x, 0) {
			return false // out of range: encoding/json says what that is
		}
		f = append(f, x)
		if !s.eat(',') {
			*v = f
			return s.eat(']')
		}
	}
}
