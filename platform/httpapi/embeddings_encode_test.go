package httpapi

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/zhipuai"
)

// The one-pass encoder writes the same bytes encoding/json wrote for the
// same reply, floats and base64 alike.
func TestEncodeEmbeddingsSameBytesAsJSON(t *testing.T) {
	vec := zhipuai.Vector{0.0123456789, -1.5e-7, 1, 0, -0.5, 3.4028234663852886e38, 1e-320}
	resp := &zhipuai.EmbeddingResponse{Model: `emb<"ed">ding-2 é`, Object: "list",
		Data:  []zhipuai.Embedding{{Index: 0, Object: "embedding", Embedding: vec}, {Index: 1, Object: "embedding", Embedding: zhipuai.Vector{}}},
		Usage: zhipuai.Usage{PromptTokens: 7, TotalTokens: 7, PromptTokensDetails: &zhipuai.PromptTokensDetails{CachedTokens: 1}}}

	want, err := json.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeEmbeddings(nil, resp, false)
	if err != nil || string(got) != string(want) {
		t.Fatalf("floats: got %s, %v\nwant %s", got, err, want)
	}

	type b64Embedding struct {
		Index     int    `json:"index"`
		Object    string `json:"object"`
		Embedding string `json:"embedding"`
	}
	out := struct {
		Model  string         `json:"model"`
		Object string         `json:"object"`
		Data   []b64Embedding `json:"data"`
		Usage  zhipuai.Usage  `json:"usage"`
	}{Model: resp.Model, Object: resp.Object, Usage: resp.Usage}
	for _, d := range resp.Data {
		out.Data = append(out.Data, b64Embedding{Index: d.Index, Object: "embedding", Embedding: zhipuai.EncodeBase64Vector(d.Embedding)})
	}
	want, _ = json.Marshal(out)
	got, err = encodeEmbeddings(nil, resp, true)
	if err != nil || string(got) != string(want) {
		t.Fatalf("base64: got %s, %v\nwant %s", got, err, want)
	}
	// The handler encodes into a pooled buffer that held another reply:
	// nothing of that reply may show.
	used := []byte(strings.Repeat(`{"stale":[9,9,9]}`, 64))
	if got, err := encodeEmbeddings(used[:0], resp, true); err != nil || string(got) != string(want) {
		t.Fatalf("base64 into a used buffer: got %s, %v\nwant %s", got, err, want)
	}

	resp.Data[0].Embedding[1] = math.NaN()
	if _, err := encodeEmbeddings(nil, resp, false); err == nil {
		t.Fatal("got no error for a NaN, want one")
	}
}

// A vector kept as the upstream's bytes (zhipuai.Embedding.Raw) goes out
// as those bytes when floats are asked, and as the same base64 as its
// parsed numbers when base64 is asked.
func TestEncodeEmbeddingsRelaysRawVectors(t *testing.T) {
	raw := []byte("[ 0.0123456789,-1.5e-7 ,1,\n0, -0.5E+0,3.4028234663852886e38,1e-320]")
	var vec zhipuai.Vector
	if err := json.Unmarshal(raw, &vec); err != nil {
		t.Fatal(err)
	}
	mk := func(e zhipuai.Embedding) *zhipuai.EmbeddingResponse {
		return &zhipuai.EmbeddingResponse{Model: "embedding-2", Object: "list",
			Data: []zhipuai.Embedding{e, {Index: 1, Object: "embedding", Embedding: zhipuai.Vector{2}}}, Usage: zhipuai.Usage{PromptTokens: 3, TotalTokens: 3}}
	}
	asRaw := mk(zhipuai.Embedding{Index: 0, Object: "embedding", Raw: raw, RawDims: len(vec)})
	asFloats := mk(zhipuai.Embedding{Index: 0, Object: "embedding", Embedding: vec})

	got, err := encodeEmbeddings(nil, asRaw, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"embedding-2","object":"list","data":[{"index":0,"object":"embedding","embedding":` + string(raw) +
		`},{"index":1,"object":"embedding","embedding":[2]}],"usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}}`
	if string(got) != want {
		t.Fatalf("floats: got %s\nwant %s", got, want)
	}
	var back zhipuai.EmbeddingResponse
	if err := json.Unmarshal(got, &back); err != nil || len(back.Data) != 2 || len(back.Data[0].Embedding) != len(vec) {
		t.Fatalf("floats: got %s, which decodes to %+v (%v)", got, back, err)
	}
	for i := range vec {
		if back.Data[0].Embedding[i] != vec[i] {
			t.Errorf("value %d: got %v, want %v", i, back.Data[0].Embedding[i], vec[i])
		}
	}

	got, err = encodeEmbeddings(nil, asRaw, true)
	if err != nil {
		t.Fatal(err)
	}
	wantB64, err := encodeEmbeddings(nil, asFloats, true)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(wantB64) {
		t.Fatalf("base64: got %s\nwant %s", got, wantB64)
	}
}
