package rag

import (
	"context"
	"fmt"

	"github.com/glmkit/glmkit/zhipuai"
)

// ClientEmbedder embeds through the V4 embeddings API: the Zhipu cloud's
// embedding-2 / embedding-3, or whatever model a glm serve offers
// (including its built-in offline one).
type ClientEmbedder struct {
	Client     *zhipuai.Client
	Model      string
	Dimensions int // 0: the model's default (embedding-3 only takes other values)
}

// Embed sends texts in one call and returns their vectors in input order.
func (e ClientEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	vs, _, err := e.EmbedAs(ctx, texts)
	return vs, err
}

// AnsweringEmbedder is an Embedder that also says which model really
// produced the vectors (the reply's model field), which may differ from
// the name asked for: a server may answer a name with another model. The
// index keeps it, so vectors of two models are never compared.
type AnsweringEmbedder interface {
	Embedder
	EmbedAs(ctx context.Context, texts []string) (vecs [][]float32, answeredBy string, err error)
}

// embedAs embeds with emb and names the model that answered (the asked
// name when emb cannot tell).
func embedAs(ctx context.Context, emb Embedder, asked string, texts []string) ([][]float32, string, error) {
	if a, ok := emb.(AnsweringEmbedder); ok {
		return a.EmbedAs(ctx, texts)
	}
	vs, err := emb.Embed(ctx, texts)
	return vs, asked, err
}

// EmbedAs implements AnsweringEmbedder.
func (e ClientEmbedder) EmbedAs(ctx context.Context, texts []string) ([][]float32, string, error) {
	req := &zhipuai.EmbeddingRequest{Model: e.Model, Input: zhipuai.EmbeddingInput(texts)}
	if e.Dimensions > 0 {
		req.Dimensions = zhipuai.Ptr(e.Dimensions)
	}
	resp, err := e.Client.Embeddings.Create(ctx, req)
	if err != nil {
		return nil, "", err
	}
	if len(resp.Data) != len(texts) {
		return nil, "", fmt.Errorf("embeddings: %d vectors for %d inputs", len(resp.Data), len(texts))
	}
	answered := resp.Model
	if answered == "" {
		answered = e.Model
	}
	out := make([][]float32, len(texts))
	for _, d := range resp.Data {
		// The API numbers results by index; honour it rather than trusting
		// the order of the array.
		if d.Index < 0 || d.Index >= len(out) || out[d.Index] != nil {
			return nil, "", fmt.Errorf("embeddings: bad or repeated index %d in reply", d.Index)
		}
		v := make([]float32, len(d.Embedding))
		for i, x := range d.Embedding {
			v[i] = float32(x)
		}
		out[d.Index] = v
	}
	return out, answered, nil
}

// Query embeds one search text.
func Query(ctx context.Context, emb Embedder, text string) ([]float32, error) {
	v, _, err := QueryAs(ctx, emb, "", text)
	return v, err
}

// QueryAs embeds one search text and names the model that answered
// (asked when emb cannot tell).
func QueryAs(ctx context.Context, emb Embedder, asked, text string) ([]float32, string, error) {
	vs, answered, err := embedAs(ctx, emb, asked, []string{text})
	if err != nil {
		return nil, "", err
	}
	if len(vs) != 1 {
		return nil, "", fmt.Errorf("embeddings: %d vectors for 1 input", len(vs))
	}
	return vs[0], answered, nil
}

// CheckQueryModel refuses a query embedded by another model than the
// index's vectors: similarities across models are meaningless numbers.
func (ix *Index) CheckQueryModel(asked, answeredBy string) error {
	if asked != "" && asked != ix.Model {
		return fmt.Errorf("the index was built with embedding model %s, not %s: a query must be embedded by the same model "+
			"(leave --embed-model out, or build another --index)", ix.Model, asked)
	}
	if ix.AnsweredBy != "" && answeredBy != "" && answeredBy != ix.AnsweredBy {
		return fmt.Errorf("the index holds vectors of model %s, but %s is now answered by %s: similarities across models "+
			"mean nothing; rebuild the index (glm rag index) against this server", ix.AnsweredBy, ix.Model, answeredBy)
	}
	return nil
}
