package zhipuai

import (
	"context"
	"net/http"
)

// TokenizerService calls POST /tokenizer.
type TokenizerService struct {
	client *Client
}

// Create counts the prompt tokens of messages (and tools) for a model; the
// count is Usage.PromptTokens. Against glm serve, Estimated says the count
// is the server's estimate rather than the model tokenizer's.
func (s *TokenizerService) Create(ctx context.Context, req *TokenizerRequest, opts ...RequestOption) (*TokenizerResponse, error) {
	if err := ValidateTokenizerRequest(req); err != nil {
		return nil, err
	}
	cl, err := newCall(http.MethodPost, "/tokenizer", req)
	if err != nil {
		return nil, err
	}
	var out TokenizerResponse
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// RerankService calls POST /rerank.
type RerankService struct {
	client *Client
}

// Create scores documents against a query; the results come best first.
func (s *RerankService) Create(ctx context.Context, req *RerankRequest, opts ...RequestOption) (*RerankResponse, error) {
	if err := ValidateRerankRequest(req); err != nil {
		return nil, err
	}
	cl, err := newCall(http.MethodPost, "/rerank", req)
	if err != nil {
		return nil, err
	}
	var out RerankResponse
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}
