// Package jsonscan decodes the usual shape of a hot-path JSON body in one
// pass, without reflection, and says when it is not sure: the caller then
// gives the bytes to encoding/json, which decides exactly as it always did.
// So the pass never has to be complete, only never wrong: whatever it
// accepts, it must decode as encoding/json would (each user checks that
// against encoding/json with cases and a fuzz test). It refuses, among
// others: a key seen twice, a key that matches a field only under
// encoding/json's case-insensitive matching, null, numbers an integer field
// would refuse, and any value its caller does not read itself
// (docs/design.md §6).
package jsonscan

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of values that are skipped.
const maxDepth = 64

// Cursor walks a JSON text.
type Cursor struct {
	b []byte
	i int
}

// New returns a cursor at the start of b.
func New(b []byte) *Cursor { return &Cursor{b: b} }

// ws skips white space.
func (c *Cursor) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// eat consumes ch, after white space, if it is next.
func (c *Cursor) eat(ch byte) bool {
	c.ws()
	if c.i < len(c.b) && c.b[c.i] == ch {
		c.i++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (c *Cursor) End() bool {
	c.ws()
	return c.i == len(c.b)
}

// Object reads an object, possibly empty. keys must hold every JSON name of
// the Go type being decoded (at most 64), read or not: for a key written
// exactly as keys[k], field(k) must consume the value and report whether
// it could. A key seen twice, escaped, not ASCII, or equal to one of keys
// but for case refuses the object; any other key's value is skipped, as
// encoding/json skips it.
func (c *Cursor) Object(keys []string, field func(k int) bool) bool {
	if !c.eat('{') {
		return false
	}
	if c.eat('}') {
		return true
	}
	var seen uint64
	for {
		c.ws()
		start := c.i
		if !c.str() {
			return false
		}
		key := c.b[start+1 : c.i-1]
		if !c.eat(':') {
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
			for _, b := range key {
				// Escapes and non-ASCII keys: encoding/json's matching
				// (unquoting, Unicode case folding) decides.
				if b >= utf8.RuneSelf || b == '\\' {
					return false
				}
			}
			if !c.Skip() {
				return false
			}
		case seen&(1<<k) != 0 || !field(k):
			return false
		default:
			seen |= 1 << k
		}
		if !c.eat(',') {
			return c.eat('}')
		}
	}
}

// Array reads a non-empty array, calling elem for each element; elem must
// consume it. An empty array refuses (encoding/json makes it a non-nil
// empty slice; the callers leave that to it).
func (c *Cursor) Array(elem func() bool) bool {
	if !c.eat('[') || c.eat(']') {
		return false
	}
	for {
		if !elem() {
			return false
		}
		if !c.eat(',') {
			return c.eat(']')
		}
	}
}

// String reads a string into v. Escapes are decoded by encoding/json;
// bytes that are not UTF-8, which encoding/json would replace, refuse.
func (c *Cursor) String(v *string) bool { return c.StringOf(v) }

// StringOf reads a string into v like String; a value equal to one of
// known is given that string instead of a new copy. A message's role, a
// finish reason or a reply's request_id (its id again) is nearly always
// one of a few known values, and a copy of each was an allocation per
// request (docs/design.md §6).
func (c *Cursor) StringOf(v *string, known ...string) bool {
	c.ws()
	start := c.i
	if !c.str() {
		return false
	}
	raw := c.b[start+1 : c.i-1]
	for _, b := range raw {
		if b == '\\' {
			return json.Unmarshal(c.b[start:c.i], v) == nil
		}
	}
	for _, k := range known {
		if string(raw) == k { // compared in place, no copy
			*v = k
			return true
		}
	}
	if !utf8.Valid(raw) {
		return false
	}
	*v = string(raw)
	return true
}

// Bool reads true or false into v.
func (c *Cursor) Bool(v *bool) bool {
	c.ws()
	switch {
	case c.word("true"):
		*v = true
	case c.word("false"):
		*v = false
	default:
		return false
	}
	return true
}

// Int reads an integer into v; see integer.
func (c *Cursor) Int(v *int) bool {
	n, ok := c.integer(strconv.IntSize)
	*v = int(n)
	return ok
}

// Int64 reads an integer into v; see integer.
func (c *Cursor) Int64(v *int64) bool {
	n, ok := c.integer(64)
	*v = n
	return ok
}

// integer reads an integer written as digits with an optional minus that
// fits in bits; fractions and exponents refuse (encoding/json refuses
// them for an integer field, with its own error).
func (c *Cursor) integer(bits int) (int64, bool) {
	c.ws()
	start := c.i
	if !c.number() {
		return 0, false
	}
	n, err := strconv.ParseInt(string(c.b[start:c.i]), 10, bits)
	return n, err == nil
}

// Float64 reads a number into v as encoding/json does (strconv.ParseFloat
// of the literal); one out of range refuses.
func (c *Cursor) Float64(v *float64) bool {
	c.ws()
	start := c.i
	if !c.number() {
		return false
	}
	f, err := strconv.ParseFloat(string(c.b[start:c.i]), 64)
	*v = f
	return err == nil
}

// Skip steps over one value of any kind, checking it is JSON.
func (c *Cursor) Skip() bool { return c.skip(0) }

// SkipAt steps over the value at b[i:] (white space first) and returns
// the index after it: for scanners of other shapes that keep their own
// index over b.
func SkipAt(b []byte, i int) (int, bool) {
	c := Cursor{b: b, i: i}
	ok := c.skip(0)
	return c.i, ok
}

// NumberAt steps over the JSON number that starts at b[i] and returns the
// index after it.
func NumberAt(b []byte, i int) (int, bool) {
	c := Cursor{b: b, i: i}
	ok := c.number()
	return c.i, ok
}

func (c *Cursor) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	c.ws()
	if c.i >= len(c.b) {
		return false
	}
	switch c.b[c.i] {
	case '"':
		return c.str()
	case '{':
		c.i++
		if c.eat('}') {
			return true
		}
		for {
			if c.ws(); !c.str() || !c.eat(':') || !c.skip(depth+1) {
				return false
			}
			if !c.eat(',') {
				return c.eat('}')
			}
		}
	case '[':
		c.i++
		if c.eat(']') {
			return true
		}
		for {
			if !c.skip(depth + 1) {
				return false
			}
			if !c.eat(',') {
				return c.eat(']')
			}
		}
	}
	return c.word("true") || c.word("false") || c.word("null") || c.number()
}

// word consumes w if it is next.
func (c *Cursor) word(w string) bool {
	if len(c.b)-c.i >= len(w) && string(c.b[c.i:c.i+len(w)]) == w {
		c.i += len(w)
		return true
	}
	return false
}

// number steps over a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *Cursor) number() bool {
	b, j := c.b, c.i
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return false
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return false
		}
	}
	c.i = j
	return true
}

// str steps over a string at the cursor (no white space first) whose
// escapes are JSON's and which holds no control character.
func (c *Cursor) str() bool {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return false
	}
	for j := c.i + 1; j < len(c.b); j++ {
		switch b := c.b[j]; {
		case b == '"':
			c.i = j + 1
			return true
		case b < 0x20:
			return false
		case b == '\\':
			if j+1 >= len(c.b) {
				return false
			}
			j++
			switch c.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(c.b) {
					return false
				}
				for _, h := range c.b[j+1 : j+5] {
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

// Names lists the JSON names encoding/json gives the fields of struct
// type t (tags honoured, "-" left out, embedded structs flattened), for
// Object's keys: built from the type, a field added to it later is never
// skipped as unknown.
func Names(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			names = append(names, Names(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// AppendString appends s as a JSON string exactly as encoding/json writes
// it (HTML-safe): printable ASCII as is, anything else through
// encoding/json itself.
func AppendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(buf, b...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
