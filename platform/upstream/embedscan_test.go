package upstream

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
)

// The one-pass decoder gives what encoding/json gives, on the fast path
// and on every reply it hands back to encoding/json.
func TestDecodeEmbeddingsAgreesWithJSON(t *testing.T) {
	long := `[` + strings.TrimSuffix(strings.Repeat("0.0123456789,-1.5e-3,", 512), ",") + `]`
	cases := []struct {
		raw  string
		fast bool
	}{
		{`{"model":"embedding-2","object":"list","data":[{"index":0,"object":"embedding","embedding":` + long + `}],"usage":{"prompt_tokens":7,"completion_tokens":0,"total_tokens":7}}`, true},
		{` { "data" : [ { "embedding" : [ 1 , -0 , 2.5E+2 , 1e-300 ] , "index" : 1 } , {"index":0,"embedding":[]} ] , "x" : {"y":[null,true]} } `, true},
		{`{"data":[{"index":0,"embedding":"AACAPwAAAMA="}],"usage":{"prompt_tokens":1,"total_tokens":1,"prompt_tokens_details":{"cached_tokens":0}}}`, true},
		{`{"model":null,"data":null}`, true},
		{`{}`, true},
		// Left to encoding/json: escapes, out-of-range numbers, bad shapes.
		{`{"model":"emb\u0065dding-2","data":[{"index":0,"embedding":[1]}]}`, false},
		{`{"data":[{"index":0,"embedding":[1e999]}]}`, false},
		{`{"data":[{"index":0,"embedding":[-1` + strings.Repeat("0", 400) + `]}]}`, false},
		{`{"data":[{"index":0,"embedding":[1e308,-2.5e-400,` + strings.Repeat("9", 300) + `]}]}`, true},
		{`{"data":[{"index":0,"embedding":[1,2],"embedding":"AACAPwAAAMA="}]}`, true},
		{`{"data":[{"index":0,"embedding":"AACAPwAAAMA=","embedding":[3]}]}`, true},
		{`{"data":[{"index":1.5,"embedding":[1]}]}`, false},
		{`{"data":[{"index":0,"embedding":[1,]}]}`, false},
		{`{"data":[{"index":0,"embedding":{"a":1}}]}`, false},
		{`{"data":[]} x`, false},
		{`not json`, false},
	}
	for _, c := range cases {
		var fast zhipuai.EmbeddingResponse
		if got := scanEmbeddings([]byte(c.raw), &fast); got != c.fast {
			t.Errorf("%.80s: got fast path %v, want %v", c.raw, got, c.fast)
		}
		var got, want zhipuai.EmbeddingResponse
		gotErr := decodeEmbeddings([]byte(c.raw), &got)
		wantErr := json.Unmarshal([]byte(c.raw), &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%.80s: got error %v, want %v", c.raw, gotErr, wantErr)
			continue
		}
		if gotErr != nil {
			continue
		}
		// A vector kept as bytes holds exactly the numbers encoding/json
		// reads from it, and says how many.
		for i := range got.Data {
			d := &got.Data[i]
			if d.Raw == nil {
				continue
			}
			v, err := d.Floats()
			if err != nil || len(v) != d.RawDims {
				t.Errorf("%.80s: vector %d: raw %.40s holds %d numbers (%v), says %d", c.raw, i, d.Raw, len(v), err, d.RawDims)
			}
			d.Embedding, d.Raw, d.RawDims = v, nil, 0
		}
		// encoding/json makes an empty slice of "data":[]; both mean no vectors.
		if len(got.Data) == 0 && len(want.Data) == 0 {
			got.Data, want.Data = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.80s:\n got %+v\nwant %+v", c.raw, got, want)
		}
	}
}

func BenchmarkDecodeEmbeddings(b *testing.B) {
	raw := []byte(`{"model":"embedding-2","object":"list","data":[{"index":0,"object":"embedding","embedding":[` +
		strings.TrimSuffix(strings.Repeat("0.0123456789,-0.0987654321,", 512), ",") + `]}],"usage":{"prompt_tokens":7,"completion_tokens":0,"total_tokens":7}}`)
	for _, path := range []string{"onepass", "json"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				var out zhipuai.EmbeddingResponse
				var err error
				if path == "json" {
					err = json.Unmarshal(raw, &out)
				} else {
					err = decodeEmbeddings(raw, &out)
				}
				if err != nil || out.Data[0].Dims() != 1024 {
					b.Fatal(err)
				}
			}
		})
	}
}
