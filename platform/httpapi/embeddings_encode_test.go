package httpapi

import (
	"encoding/json"
	"math"
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
	got, err := encodeEmbeddings(resp, false)
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
	got, err = encodeEmbeddings(resp, true)
	if err != nil || string(got) != string(want) {
		t.Fatalf("base64: got %s, %v\nwant %s", got, err, want)
	}

	resp.Data[0].Embedding[1] = math.NaN()
	if _, err := encodeEmbeddings(resp, false); err == nil {
		t.Fatal("got no error for a NaN, want one")
	}
}
