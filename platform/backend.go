package platform

import (
	"context"

	"github.com/glmkit/glmkit/zhipuai"
)

// The contracts between the server's core (the metered call, the router)
// and the adapters that run models (platform/upstream). They live here so
// the core never imports an adapter. A backend implements Backend plus the
// capability interfaces of the APIs it serves, found by type assertion: an
// embedding-only backend implements EmbeddingBackend and nothing else, and
// the router refuses at configuration time a model whose kind its backend
// cannot serve (Serves).

// ChatRequest is one chat call as the router hands it to a backend.
type ChatRequest struct {
	// Req is the decoded, validated V4 request. Req.Model is already the
	// backend's own model name (aliases resolved by the router).
	Req *zhipuai.ChatCompletionRequest
	// Raw is the client's body as received, for pass-through backends that
	// need no translation. It may be nil; then Req is encoded.
	Raw []byte
	// ClientModel is the model name the client asked for, when it differs
	// from Req.Model (an alias). Backends put it into the "model" field of
	// replies and chunks; empty means Req.Model.
	ClientModel string
	// PromptTokens is the caller's estimate of the prompt
	// (EstimateChatPromptTokens of Req), when it made one; 0 when not. A
	// stream backend that must estimate usage at the end keeps this number
	// instead of Req, which would stay in memory for the stream's life
	// (docs/design.md §6).
	PromptTokens int
}

// Backend is a named source of model calls. Errors of every capability are
// *Error values with V4 codes; an error returned before any byte of a
// reply (including from ChatStream itself) lets the router try another
// backend when the adapter marks it retryable.
type Backend interface {
	// Name identifies the backend in logs, metrics and the request log.
	Name() string
}

// ChatBackend serves chat completions (KindChat and KindVision models).
type ChatBackend interface {
	Backend
	// Chat runs a non-streaming chat. Body is the V4 JSON reply exactly as it
	// should reach the client (pass-through bytes where possible).
	Chat(ctx context.Context, req ChatRequest) (resp *zhipuai.ChatCompletion, body []byte, err error)
	// ChatStream starts a streaming chat; it returns once the upstream has
	// answered with a streaming status, so errors before the first byte come
	// back here.
	ChatStream(ctx context.Context, req ChatRequest) (Stream, error)
}

// EmbeddingBackend serves embeddings (KindEmbedding models). It returns
// float vectors; the HTTP layer encodes base64 when asked.
type EmbeddingBackend interface {
	Backend
	Embeddings(ctx context.Context, req *zhipuai.EmbeddingRequest) (*zhipuai.EmbeddingResponse, error)
}

// ImageBackend generates images (KindImage models, CogView).
type ImageBackend interface {
	Backend
	Images(ctx context.Context, req *zhipuai.ImageRequest) (*zhipuai.ImagesResponse, error)
}

// TokenizerBackend counts the prompt tokens of chat messages with the
// model's own tokenizer (docs/v4.md §11). A backend that cannot count for a
// model (an engine without a tokenize endpoint) returns ErrNotCounted, and
// the caller falls back to a labelled estimate.
type TokenizerBackend interface {
	Backend
	Tokenize(ctx context.Context, req *zhipuai.TokenizerRequest) (*zhipuai.TokenizerResponse, error)
}

// ErrNotCounted is TokenizerBackend's answer when it has no exact count.
var ErrNotCounted = &Error{Code: CodeUnsupportedMode, Message: "this backend cannot count tokens"}

// RerankBackend scores documents against a query (KindRerank models).
type RerankBackend interface {
	Backend
	Rerank(ctx context.Context, req *zhipuai.RerankRequest) (*zhipuai.RerankResponse, error)
}

// Serves reports whether b implements the capability a model of kind
// needs.
func Serves(b Backend, kind ModelKind) bool {
	switch kind {
	case KindChat, KindVision:
		_, ok := b.(ChatBackend)
		return ok
	case KindEmbedding:
		_, ok := b.(EmbeddingBackend)
		return ok
	case KindImage:
		_, ok := b.(ImageBackend)
		return ok
	case KindRerank:
		_, ok := b.(RerankBackend)
		return ok
	}
	return false
}

// Stream is a started chat stream in V4 form.
type Stream interface {
	// Next returns the next chunk. It returns io.EOF after the upstream's
	// [DONE]; any other error means the stream broke (a cut connection
	// without [DONE] is an error, not EOF). An in-band {"error":…} chunk is
	// returned as an error of type *Error.
	Next() (Chunk, error)
	// Close releases the upstream connection. After a stream that ended
	// with [DONE] it reads the body to its end first, so the connection can
	// be reused; it cancels a stream that has not ended.
	Close() error
}

// Chunk is one V4 chunk as the relay needs it. The chunk itself is only
// bytes: pass-through backends do not decode content chunks (docs/design.md §6:
// no decoding or re-encoding of bodies that only pass through), so the
// fields the relay needs for the request log and billing come alongside.
type Chunk struct {
	// Data is the chunk as a single line of JSON ready to write after
	// "data: " (the upstream's bytes where no change was needed). It is
	// valid until the next call to Next.
	Data []byte
	// Usage is the usage the chunk carries (only the final chunk does,
	// docs/v4.md §4), nil otherwise.
	Usage *zhipuai.Usage
	// Tokens estimates the completion tokens of the text in the chunk
	// (content, reasoning, tool-call names and arguments), for the stated
	// estimate billed when a stream ends without usage (docs/design.md §3
	// "Client disconnect").
	Tokens int
	// More says the next event is already in the backend's read buffer:
	// the next Next returns without waiting for the upstream, so the relay
	// may leave this chunk unflushed and flush once after the last event of
	// a read (docs/design.md §3 "flush every event"). A chunk without Data
	// writes nothing: it is how a backend that said More and then had
	// nothing to pass on asks for the flush before it waits.
	More bool
}

// Catalogue is the set of models a server serves (the router's view).
type Catalogue interface {
	// Model returns the catalogue entry of a client-facing model name.
	Model(name string) (ModelInfo, bool)
	// Models lists the served models, sorted by ID.
	Models() []ModelInfo
}

// Principal is who sent a request: the account and the key it used.
type Principal struct {
	AccountID string
	KeyID     string
}
