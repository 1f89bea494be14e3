package upstream

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
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
		agreesWithJSON(t, []byte(c.raw))
	}
}

// agreesWithJSON fails t unless decodeEmbeddings reads raw as encoding/json
// does: the same error or none, and the same values.
func agreesWithJSON(t *testing.T, raw []byte) {
	t.Helper()
	var got, want zhipuai.EmbeddingResponse
	gotErr := decodeEmbeddings(raw, &got)
	wantErr := json.Unmarshal(raw, &want)
	if (gotErr == nil) != (wantErr == nil) {
		t.Errorf("%.80s: got error %v, want %v", raw, gotErr, wantErr)
		return
	}
	if gotErr != nil {
		return
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
			t.Errorf("%.80s: vector %d: raw %.40s holds %d numbers (%v), says %d", raw, i, d.Raw, len(v), err, d.RawDims)
		}
		d.Embedding, d.Raw, d.RawDims = v, nil, 0
	}
	// encoding/json makes an empty slice of "data":[]; both mean no vectors.
	if len(got.Data) == 0 && len(want.Data) == 0 {
		got.Data, want.Data = nil, nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%.80s:\n got %+v\nwant %+v", raw, got, want)
	}
}

// Any reply, however malformed, decodes as encoding/json decodes it.
func FuzzDecodeEmbeddings(f *testing.F) {
	for _, s := range []string{
		`{"data":[{"index":0,"embedding":[0.5,-0,1e-3,2E+2]}]}`,
		`{"data":[{"index":0,"embedding":[ 1 , 2 ]}],"usage":{"prompt_tokens":1}}`,
		`{"data":[{"index":0,"embedding":[-01]}]}`,
		`{"data":[{"index":0,"embedding":[1.]}]}`,
		`{"data":[{"index":0,"embedding":[1e400]}]}`,
		`{"data":[{"index":0,"embedding":"AACAPwAAAMA="}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		agreesWithJSON(t, raw)
	})
}

// A reply read with the previous reply's size as its guess is the whole
// reply, whether it is chunked or announced, bigger or smaller than the
// guess; the guess moves to its size, and the limit still holds.
func TestReadBodySizedReadsWholeReplies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		body := bytes.Repeat([]byte("0123456789"), n/10)
		if r.URL.Query().Get("announce") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		// Two writes with a flush between: chunked unless announced.
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		w.Write(body[len(body)/2:])
	}))
	defer srv.Close()
	get := func(q string) *http.Response {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL + "/?" + q)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var last atomic.Int64
	for _, c := range []struct {
		q string
		n int
	}{{"n=20000", 20000}, {"n=50000", 50000}, {"n=100", 100}, {"n=30000&announce=1", 30000}, {"n=0", 0}} {
		resp := get(c.q)
		if c.n > 0 && !strings.Contains(c.q, "announce") && resp.ContentLength != -1 {
			t.Fatalf("%s: got Content-Length %d, want a chunked reply", c.q, resp.ContentLength)
		}
		b, err := readBodySized(resp, 1<<20, &last, nil)
		if err != nil || len(b) != c.n || !bytes.Equal(b, bytes.Repeat([]byte("0123456789"), c.n/10)) {
			t.Fatalf("%s: got %d bytes (%v), want the %d sent", c.q, len(b), err, c.n)
		}
		if got := last.Load(); got != int64(c.n) {
			t.Fatalf("%s: got last size %d, want %d", c.q, got, c.n)
		}
	}
	last.Store(1000)
	if b, err := readBodySized(get("n=6000"), 5000, &last, nil); err == nil {
		t.Fatalf("6000 bytes under a 5000-byte limit: got %d bytes and no error, want an error", len(b))
	}
	last.Store(1 << 40)
	if b, err := readBodySized(get("n=4000"), 5000, &last, nil); err != nil || len(b) != 4000 {
		t.Fatalf("a guess beyond the limit: got %d bytes (%v), want 4000", len(b), err)
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
