package upstream

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/glmkit/glmkit/internal/jsonscan"
	"github.com/glmkit/glmkit/zhipuai"
)

// TestEncodeEmbeddingRequestSameAsJSON: every shape of request encodes to
// json.Marshal's bytes, and the key list is the type's (a field added to
// EmbeddingRequest must be added to the encoder too).
func TestEncodeEmbeddingRequestSameAsJSON(t *testing.T) {
	if got, want := jsonscan.Names(reflect.TypeFor[zhipuai.EmbeddingRequest]()),
		[]string{"model", "input", "dimensions", "encoding_format", "user", "user_id", "request_id", "sensitive_word_check"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("EmbeddingRequest keys %v; the encoder writes %v — update encodeEmbeddingRequest", got, want)
	}
	dims := 512
	zero := 0
	for _, req := range []zhipuai.EmbeddingRequest{
		{},
		{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"hello"}},
		{Model: "embedding-3", Input: zhipuai.EmbeddingInput{}},
		{Model: "embedding-3", Input: zhipuai.EmbeddingInput{"a", "b <c> & \"d\"", "你好", "\u2028", "tab\there", "\x7f", "bad \xff utf8"}, Dimensions: &dims},
		{Model: "m", Input: zhipuai.EmbeddingInput{""}, Dimensions: &zero, EncodingFormat: "float", User: "u", UserID: "uid", RequestID: "r-1"},
		{Model: "m", Input: zhipuai.EmbeddingInput{"x"}, SensitiveWordCheck: &zhipuai.SensitiveWordCheck{Type: "ALL"}},
	} {
		checkEmbeddingEncode(t, &req)
	}
}

func checkEmbeddingEncode(t *testing.T, req *zhipuai.EmbeddingRequest) {
	t.Helper()
	want, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeEmbeddingRequest(req)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("encodeEmbeddingRequest(%+v)\n got %s (%v)\nwant %s", req, got, err, want)
	}
}

func FuzzEncodeEmbeddingRequest(f *testing.F) {
	f.Add("embedding-2", "hello", "", 1, 0, "", "")
	f.Add("m", "<a&b>", "你好\xff", 3, 256, "u", "r")
	f.Fuzz(func(t *testing.T, model, a, b string, n, dims int, user, rid string) {
		req := zhipuai.EmbeddingRequest{Model: model, User: user, RequestID: rid, UserID: b}
		for i := range n % 4 {
			req.Input = append(req.Input, []string{a, b}[i%2])
		}
		if dims%3 != 0 {
			req.Dimensions = &dims
		}
		checkEmbeddingEncode(t, &req)
	})
}

func BenchmarkEncodeEmbeddingRequest(b *testing.B) {
	req := &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"The quick brown fox jumps over the lazy dog."}}
	for _, path := range []string{"onepass", "json"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if path == "json" {
					_, _ = json.Marshal(req)
				} else {
					_, _ = encodeEmbeddingRequest(req)
				}
			}
		})
	}
}
