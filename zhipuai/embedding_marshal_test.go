package zhipuai

import (
	"encoding/json"
	"testing"
)

// An embedding a server holds as the upstream's bytes encodes like the
// decoded one: same JSON, never "embedding": null.
func TestEmbeddingMarshalRawLikeDecoded(t *testing.T) {
	raw := []byte(`[0.25,-1.5,3e-7]`)
	var v Vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	decoded, err := json.Marshal(EmbeddingResponse{Object: "list", Data: []Embedding{{Index: 0, Object: "embedding", Embedding: v}}})
	if err != nil {
		t.Fatal(err)
	}
	relayed, err := json.Marshal(EmbeddingResponse{Object: "list", Data: []Embedding{{Index: 0, Object: "embedding", Raw: raw, RawDims: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	var a, b EmbeddingResponse
	if err := json.Unmarshal(decoded, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(relayed, &b); err != nil {
		t.Fatalf("relayed form %s: %v", relayed, err)
	}
	if got, want := len(b.Data[0].Embedding), 3; got != want {
		t.Fatalf("relayed vector decoded: got %d numbers, want %d (%s)", got, want, relayed)
	}
	for i := range a.Data[0].Embedding {
		if got, want := b.Data[0].Embedding[i], a.Data[0].Embedding[i]; got != want {
			t.Errorf("number %d: got %v, want %v", i, got, want)
		}
	}
}
