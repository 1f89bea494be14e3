package requestlog

import (
	"strings"
	"unicode/utf8"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Bound cuts the client-supplied strings of a row to what a valid request
// may hold, in place, and returns the names of the fields it cut.
//
// A row is recorded for every request, refused and unauthenticated ones
// too, and some of them are recorded with the request_id and model the
// client sent before validation refused them; storage must not take
// whatever length a client chooses (docs/design.md §3 "Bad input"). The
// bounds are the validator's (zhipuai.MaxRequestIDLen, MaxModelLen): a
// valid request is never cut. A cut value keeps a prefix, so the row
// still says what the client sent, with bytes outside visible ASCII
// (request_id) or invalid UTF-8 (model) replaced.
func Bound(row *platform.RequestLog) (cut []string) {
	if v, ok := boundRequestID(row.RequestID); !ok {
		row.RequestID = v
		cut = append(cut, "request_id")
	}
	if v, ok := boundModel(row.Model); !ok {
		row.Model = v
		cut = append(cut, "model")
	}
	return cut
}

func boundRequestID(s string) (string, bool) {
	ok := len(s) <= zhipuai.MaxRequestIDLen
	for i := 0; ok && i < len(s); i++ {
		ok = s[i] >= 0x21 && s[i] <= 0x7e
	}
	if ok {
		return s, true
	}
	b := []byte(s[:min(len(s), zhipuai.MaxRequestIDLen)])
	for i, c := range b {
		if c < 0x21 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b), false
}

func boundModel(s string) (string, bool) {
	if len(s) <= zhipuai.MaxModelLen && utf8.ValidString(s) {
		return s, true
	}
	s = s[:min(len(s), zhipuai.MaxModelLen)]
	// A cut may split the last character: ToValidUTF8 replaces it (and any
	// other invalid byte) with "?", which may lengthen the string by at
	// most a few bytes per byte replaced; cut again to stay in bounds.
	s = strings.ToValidUTF8(s, "?")
	for len(s) > zhipuai.MaxModelLen {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return s, false
}
