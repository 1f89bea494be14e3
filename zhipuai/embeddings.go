package zhipuai

import (
	"context"
	"net/http"
)

// EmbeddingsService calls POST /embeddings.
type EmbeddingsService struct {
	client *Client
}

// Create embeds one text or a list (at most 64). Whether the platform
// answers floats or base64 (encoding_format), the vectors come back as
// []float64 (Vector decodes both).
func (s *EmbeddingsService) Create(ctx context.Context, req *EmbeddingRequest, opts ...RequestOption) (*EmbeddingResponse, error) {
	if err := ValidateEmbeddingRequest(req); err != nil {
		return nil, err
	}
	cl, err := newCall(http.MethodPost, "/embeddings", req)
	if err != nil {
		return nil, err
	}
	var out EmbeddingResponse
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ImagesService calls POST /images/generations (CogView).
type ImagesService struct {
	client *Client
}

// Generations asks a CogView model (cogview-3 …) for an image; the reply
// holds absolute URLs.
func (s *ImagesService) Generations(ctx context.Context, req *ImageRequest, opts ...RequestOption) (*ImagesResponse, error) {
	if err := ValidateImageRequest(req); err != nil {
		return nil, err
	}
	cl, err := newCall(http.MethodPost, "/images/generations", req)
	if err != nil {
		return nil, err
	}
	var out ImagesResponse
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ModelsService calls GET /models (served by glm serve and OpenAI-shaped
// engines; the Zhipu cloud does not document it).
type ModelsService struct {
	client *Client
}

// List returns the models the server offers.
func (s *ModelsService) List(ctx context.Context, opts ...RequestOption) (*ModelList, error) {
	cl, err := newCall(http.MethodGet, "/models", nil)
	if err != nil {
		return nil, err
	}
	var out ModelList
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
