package zhipuai

import (
	"encoding/json"
	"testing"
)

// A message's text without escapes is taken without a second decoder
// (plainString); it must read every string exactly as encoding/json does,
// and leave the rest to it.
func TestContentTextAgreesWithJSON(t *testing.T) {
	texts := []string{
		`""`, `"hello"`, `"你好，介绍一下你自己。"`, `"emoji 😀"`, `"tab\tescaped"`,
		`"quote \" inside"`, `"\u4f60\u597d"`, `"slash \/"`, "\"bad \xff utf-8\"", "\"cut \xe4\xbd\"",
		"\"raw \x01 control\"", `"trailing backslash \\"`, "\"\xed\xa0\x80 surrogate\"",
	}
	for _, raw := range texts {
		var want string
		wantErr := json.Unmarshal([]byte(raw), &want)
		var c Content
		err := c.UnmarshalJSON([]byte(raw))
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%q: got err %v, want %v", raw, err, wantErr)
			continue
		}
		if err == nil && c.Text != want {
			t.Errorf("%q: got text %q, want %q", raw, c.Text, want)
		}
		if _, ok := plainString([]byte(raw)); ok && wantErr != nil {
			t.Errorf("%q: taken as plain, but encoding/json refuses it", raw)
		}
	}
	// The fast path is taken for the common case.
	if s, ok := plainString([]byte(`"你好 hello"`)); !ok || s != "你好 hello" {
		t.Errorf("plainString of a plain text: got %q %v, want it taken", s, ok)
	}
}
