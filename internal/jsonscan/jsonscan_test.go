package jsonscan

import (
	"encoding/json"
	"reflect"
	"testing"
	"unsafe"
)

// sample is a small type decoded both ways.
type sample struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	Big   int64   `json:"big"`
	Ratio float64 `json:"ratio"`
	On    bool    `json:"on"`
	Tags  []inner `json:"tags"`
}

type inner struct {
	Text string `json:"text"`
}

var sampleKeys = []string{"name", "count", "big", "ratio", "on", "tags"}

func scanSample(b []byte, v *sample) bool {
	c := New(b)
	return c.Object(sampleKeys, func(k int) bool {
		switch sampleKeys[k] {
		case "name":
			return c.String(&v.Name)
		case "count":
			return c.Int(&v.Count)
		case "big":
			return c.Int64(&v.Big)
		case "ratio":
			return c.Float64(&v.Ratio)
		case "on":
			return c.Bool(&v.On)
		}
		return c.Array(func() bool {
			v.Tags = append(v.Tags, inner{})
			t := &v.Tags[len(v.Tags)-1]
			return c.Object([]string{"text"}, func(int) bool { return c.String(&t.Text) })
		})
	}) && c.End()
}

func TestScanAgreesWithJSON(t *testing.T) {
	cases := []struct {
		raw  string
		fast bool
	}{
		{`{"name":"a","count":-3,"big":9007199254740993,"ratio":0.1,"on":true,"tags":[{"text":"x"},{}]}`, true},
		{` { "name" : "a\n\u00e9\ud83d\ude00" , "ratio" : -1.5e-3 , "on" : false } `, true},
		{`{"other":{"a":[1,"b",null,true,{"c":-0.5E+2}]},"name":"你好"}`, true},
		{`{}`, true},
		{`{"Name":"a"}`, false},                   // another case: encoding/json's match
		{`{"name":"a","name":"b"}`, false},        // twice
		{`{"n\u0061me":"a"}`, false},              // escaped key
		{`{"ñame":"a"}`, false},                   // non-ASCII key
		{`{"name":null}`, false},                  // null
		{`{"count":1.0}`, false},                  // fraction for an int
		{`{"count":1e2}`, false},                  // exponent for an int
		{`{"count":01}`, false},                   // leading zero
		{`{"count":99999999999999999999}`, false}, // overflow
		{`{"ratio":1e400}`, false},                // out of range
		{`{"tags":[]}`, false},                    // empty array
		{`{"name":"a\x"}`, false},                 // bad escape
		{`{"other":"a\x"}`, false},                // bad escape, skipped
		{`{"other":"a` + "\t" + `"}`, false},      // control character
		{"{\"name\":\"\xff\"}", false},            // not UTF-8
		{`{"name":"a"} {}`, false},                // trailing data
		{`{"name":"a"`, false},                    // truncated
		{`{"on":"true"}`, false},                  // wrong type
		{`{"other":[1,]}`, false},                 // not JSON
		{`{"other":tru}`, false},                  // not JSON
	}
	for _, c := range cases {
		var got sample
		if ok := scanSample([]byte(c.raw), &got); ok != c.fast {
			t.Errorf("%s: scanned: got %v, want %v", c.raw, ok, c.fast)
			continue
		}
		if c.fast {
			var want sample
			if err := json.Unmarshal([]byte(c.raw), &want); err != nil {
				t.Errorf("%s: scanned, but encoding/json says %v", c.raw, err)
			} else if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\ngot  %+v\nwant %+v", c.raw, got, want)
			}
		}
	}
}

// FuzzScan: whatever the scan accepts, encoding/json accepts and decodes
// to the same value.
func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"name":"a","count":-3,"big":1,"ratio":0.1,"on":true,"tags":[{"text":"x"}],"z":[{}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got sample
		if !scanSample(raw, &got) {
			return
		}
		var want sample
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("scanned, but encoding/json says %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

func TestNames(t *testing.T) {
	type base struct {
		ID string `json:"id"`
	}
	type v struct {
		base
		Plain   int
		Tagged  string `json:"tagged,omitempty"`
		Skipped string `json:"-"`
		hidden  int
		Opts    bool `json:",omitempty"`
	}
	_ = v{}.hidden
	got := Names(reflect.TypeFor[v]())
	want := []string{"id", "Plain", "tagged", "Opts"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// SkipAt and NumberAt step over one value from an index and refuse what
// encoding/json refuses, a bad escape inside a string included.
func TestSkipAtAndNumberAt(t *testing.T) {
	for _, tc := range []struct {
		in     string
		at     int
		number bool
		want   int
		ok     bool
	}{
		{in: `x {"a":[1,"b",null]} y`, at: 1, want: 20, ok: true},
		{in: `["\q"]`, at: 0, ok: false},
		{in: `"\u12g4"`, at: 0, ok: false},
		{in: `,-1.5e3]`, at: 1, number: true, want: 7, ok: true},
		{in: `01`, at: 0, number: true, want: 1, ok: true},
		{in: `-x`, at: 0, number: true, ok: false},
	} {
		var got int
		var ok bool
		if tc.number {
			got, ok = NumberAt([]byte(tc.in), tc.at)
		} else {
			got, ok = SkipAt([]byte(tc.in), tc.at)
		}
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("%q at %d: got (%d, %v), want (%d, %v)", tc.in, tc.at, got, ok, tc.want, tc.ok)
		}
	}
}

// TestStringOf: a value equal to a known one is that string (no copy);
// any other value, an escaped one included, reads as String reads it.
func TestStringOf(t *testing.T) {
	known := []string{"user", "assistant"}
	for _, tc := range []struct {
		in, want string
		shared   bool
	}{
		{`"assistant"`, "assistant", true},
		{`"user"`, "user", true},
		{`"u\u0073er"`, "user", false},
		{`"users"`, "users", false},
		{`""`, "", false},
	} {
		var got string
		c := New([]byte(tc.in))
		if !c.StringOf(&got, known...) || !c.End() {
			t.Fatalf("StringOf(%s) refused; want %q", tc.in, tc.want)
		}
		if got != tc.want {
			t.Errorf("StringOf(%s) = %q; want %q", tc.in, got, tc.want)
		}
		shared := false
		for _, k := range known {
			shared = shared || (len(got) > 0 && unsafe.StringData(got) == unsafe.StringData(k))
		}
		if shared != tc.shared {
			t.Errorf("StringOf(%s) shares a known string: got %v, want %v", tc.in, shared, tc.shared)
		}
	}
	var got string
	if New([]byte("\"\xff\"")).StringOf(&got, known...) {
		t.Errorf("StringOf of invalid UTF-8 = %q; want a refusal", got)
	}
}
