package zhipuai

import (
	"context"
	"net/http"
)

// ChatService groups the chat calls: client.Chat.Completions and
// client.Chat.AsyncCompletions, as in the Python SDK.
type ChatService struct {
	Completions      *ChatCompletionsService
	AsyncCompletions *AsyncCompletionsService
}

// ChatCompletionsService calls POST /chat/completions.
type ChatCompletionsService struct {
	client *Client
}

// Create sends a chat request and waits for the whole reply. The request
// is validated first (see ValidateChatRequest); the caller's struct is not
// modified. req.Stream must be false: use Stream for streaming.
func (s *ChatCompletionsService) Create(ctx context.Context, req *ChatCompletionRequest, opts ...RequestOption) (*ChatCompletion, error) {
	if req != nil && req.Stream {
		return nil, invalid("stream", "Create waits for the whole reply; use Chat.Completions.Stream for stream:true")
	}
	body, err := prepareChat(req, false)
	if err != nil {
		return nil, err
	}
	cl, err := newCall(http.MethodPost, "/chat/completions", body)
	if err != nil {
		return nil, err
	}
	var out ChatCompletion
	if err := s.client.do(ctx, cl, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Stream sends the request with stream:true and returns the chunks as they
// arrive. Failures before the 200 response are retried like any call;
// nothing is retried once the stream has started. Close the stream when
// done.
func (s *ChatCompletionsService) Stream(ctx context.Context, req *ChatCompletionRequest, opts ...RequestOption) (*Stream[ChatCompletionChunk], error) {
	body, err := prepareChat(req, true)
	if err != nil {
		return nil, err
	}
	cl, err := newCall(http.MethodPost, "/chat/completions", body)
	if err != nil {
		return nil, err
	}
	cl.stream = true
	resp, release, err := s.client.send(ctx, cl, opts)
	if err != nil {
		return nil, err
	}
	return newStream[ChatCompletionChunk](ctx, resp, release), nil
}

// prepareChat validates req and returns the copy to encode, with stream
// set as asked and temperature/top_p normalised (see normalizeSampling).
func prepareChat(req *ChatCompletionRequest, stream bool) (*ChatCompletionRequest, error) {
	if req == nil {
		return nil, &ValidationError{Field: "request", Reason: "nil request"}
	}
	if err := ValidateChatRequest(req); err != nil {
		return nil, err
	}
	out := *req
	out.Stream = stream
	normalizeSampling(&out)
	out.Messages = stripImagePrefixes(out.Messages)
	return &out, nil
}

// AsyncCompletionsService calls the async chat endpoints (docs/v4.md §4 "Async").
type AsyncCompletionsService struct {
	client *Client
}

// errNoTaskID guards the path: an empty id would GET the collection.
var errNoTaskID = &ValidationError{Field: "id", Reason: "task id is required"}
