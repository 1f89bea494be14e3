package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// DefaultZhipuBaseURL is the Zhipu cloud's V4 base (docs/v4.md §0).
const DefaultZhipuBaseURL = "https://open.bigmodel.cn/api/paas/v4"

// ZhipuOptions configures a Zhipu cloud backend.
type ZhipuOptions struct {
	// Name identifies the backend in logs (default "zhipu").
	Name string
	// BaseURL defaults to DefaultZhipuBaseURL.
	BaseURL string
	// APIKey is the operator's upstream key "id.secret". It is sent raw as
	// "Bearer id.secret", what current SDKs and the docs do (docs/v4.md §2).
	APIKey string
	// HTTPClient defaults to NewHTTPClient().
	HTTPClient *http.Client
	// StreamClient opens streams; it defaults to HTTPClient when that is
	// set, else to NewStreamHTTPClient().
	StreamClient *http.Client
	// StreamIdle cuts a stream that sends no byte for this long after its
	// first (default DefaultStreamIdle; negative: never).
	StreamIdle time.Duration
}

// Zhipu forwards V4 calls to the Zhipu cloud (or any V4 server, such as
// another glm serve). Bodies pass through untouched where no change is
// needed; replies are only re-encoded to fix their shape (docs/v4.md §4, §8).
type Zhipu struct {
	name    string
	base    string
	auth    []string // the Authorization value (bearer)
	chatURL string
	client  *http.Client
	stream  *http.Client // opens streams (ZhipuOptions.StreamClient)
	idle    time.Duration
	// embedSize is the size of the last embeddings reply (readBodySized).
	embedSize atomic.Int64
}

// NewZhipu returns a Zhipu cloud backend.
func NewZhipu(o ZhipuOptions) (*Zhipu, error) {
	if o.APIKey == "" {
		return nil, errors.New("zhipu backend: an API key is required")
	}
	z := &Zhipu{name: o.Name, base: o.BaseURL, auth: bearer(o.APIKey), client: o.HTTPClient,
		idle: streamIdle(o.StreamIdle), chatURL: joinURL(o.BaseURL, "/chat/completions")}
	if z.name == "" {
		z.name = "zhipu"
	}
	if z.base == "" {
		z.base = DefaultZhipuBaseURL
	}
	z.client, z.stream = clients(o.HTTPClient, o.StreamClient)
	return z, nil
}

// Name implements platform.Backend.
func (z *Zhipu) Name() string { return z.name }

// chatBody returns the bytes to send. The client's raw body is reused when
// it already says what the cloud must hear; otherwise the decoded request is
// encoded again, which drops stream_options (Z.ai closes the connection when
// it is present, docs/peers.md §1.3) and other keys the cloud does not know.
func (z *Zhipu) chatBody(req platform.ChatRequest, stream bool) ([]byte, error) {
	if req.Req == nil {
		return nil, platform.Errorf(platform.CodeMissingField, "missing request")
	}
	clamped, changed := clampSampling(req.Req)
	if req.Raw != nil && !changed && req.Req.Stream == stream && !bytes.Contains(req.Raw, []byte(`"stream_options"`)) {
		return req.Raw, nil
	}
	c := *clamped
	c.Stream = stream
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, platform.Wrap(platform.CodeInternal, "internal error", fmt.Errorf("encode chat request: %w", err))
	}
	return b, nil
}

// clampSampling keeps temperature and top_p inside the ranges older GLM
// models accept (docs/v4.md §3: temperature (0,1], top_p (0,1) open;
// docs/peers.md §4.3 and one-api #952): it does what the official Python SDK does before
// sending, so OpenAI-shaped clients that send temperature 0 get greedy
// decoding instead of a 1214 from the cloud.
func clampSampling(r *zhipuai.ChatCompletionRequest) (*zhipuai.ChatCompletionRequest, bool) {
	t, p := r.Temperature, r.TopP
	if (t == nil || (*t > 0 && *t <= 1)) && (p == nil || (*p > 0 && *p < 1)) {
		return r, false
	}
	c := *r
	if t != nil {
		switch {
		case *t <= 0:
			c.Temperature = zhipuai.Ptr(0.01)
			c.DoSample = zhipuai.Ptr(false)
		case *t > 1:
			c.Temperature = zhipuai.Ptr(1.0)
		}
	}
	if p != nil {
		switch {
		case *p <= 0:
			c.TopP = zhipuai.Ptr(0.01)
		case *p >= 1:
			c.TopP = zhipuai.Ptr(0.99)
		}
	}
	return &c, true
}

// Chat implements platform.ChatBackend.
func (z *Zhipu) Chat(ctx context.Context, req platform.ChatRequest) (*zhipuai.ChatCompletion, []byte, error) {
	body, err := z.chatBody(req, false)
	if err != nil {
		return nil, nil, err
	}
	resp, err := postJSON(ctx, z.client, z.chatURL, z.auth, body, false)
	if err != nil {
		return nil, nil, transportError(ctx, z.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, z.statusError(resp)
	}
	raw, err := readBody(resp, maxReplyBytes)
	if err != nil {
		return nil, nil, transportError(ctx, z.name, err)
	}
	var out zhipuai.ChatCompletion
	if err := decodeChatReply(raw, &out); err != nil {
		return nil, nil, badReply(z.name, err)
	}
	if out.Choices == nil {
		// Some failures come back as 200 with an error envelope.
		var env zhipuai.ErrorEnvelope
		if json.Unmarshal(raw, &env) == nil && env.Error.Code != "" {
			return nil, nil, mapZhipuError(z.name, http.StatusOK, string(env.Error.Code), env.Error.Message)
		}
		return nil, nil, badReply(z.name, errors.New("reply has no choices"))
	}
	changed := false
	if req.ClientModel != "" && out.Model != req.ClientModel {
		out.Model = req.ClientModel
		changed = true
	}
	if !bytes.Contains(raw, []byte(`"usage"`)) {
		// Every reply must carry usage (docs/v4.md §8.4); bill a conservative
		// estimate rather than nothing.
		out.Usage = estimateUsage(req.Req, replyText(&out))
		changed = true
	}
	if changed {
		if raw, err = json.Marshal(&out); err != nil {
			return nil, nil, platform.Wrap(platform.CodeInternal, "internal error", err)
		}
	}
	return &out, raw, nil
}

// ChatStream implements platform.ChatBackend.
func (z *Zhipu) ChatStream(ctx context.Context, req platform.ChatRequest) (platform.Stream, error) {
	body, err := z.chatBody(req, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := streamContext(ctx)
	resp, err := postJSON(ctx, z.stream, z.chatURL, z.auth, body, true)
	if err != nil {
		cancel()
		return nil, transportError(ctx, z.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		return nil, z.statusError(resp)
	}
	if !isEventStream(resp.Header) {
		// A 200 with a JSON body is an error envelope sent instead of a stream.
		e := z.statusError(resp)
		cancel()
		return nil, e
	}
	resp.Body = newIdleBody(resp.Body, z.idle, cancel)
	s := newV4Stream(ctx, cancel, z.name, resp, req)
	return s, nil
}

// Embeddings implements platform.EmbeddingBackend.
func (z *Zhipu) Embeddings(ctx context.Context, req *zhipuai.EmbeddingRequest) (*zhipuai.EmbeddingResponse, error) {
	c := *req
	// The HTTP layer encodes base64 itself; ask the cloud for floats, whose
	// base64 support is unverified (docs/v4.md §5).
	c.EncodingFormat = ""
	// A caller that gives the reply's buffer back (platform.ReplyLease)
	// gets it read into a buffer given back before.
	lease := platform.ReplyLeaseFrom(ctx)
	var bp *[]byte
	if lease != nil {
		bp = replyBufs.Get().(*[]byte)
	}
	body, err := encodeEmbeddingRequest(&c)
	if err != nil {
		return nil, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	raw, err := z.postBody(ctx, "/embeddings", body, &z.embedSize, bp)
	if err != nil {
		return nil, err
	}
	var out zhipuai.EmbeddingResponse
	if err := decodeEmbeddings(raw, &out); err != nil {
		return nil, badReply(z.name, err)
	}
	if lease != nil {
		*bp = raw[:0]
		lease.Lend(bp, giveBackReply)
	}
	return &out, nil
}

// replyBufs holds the buffers of replies whose callers gave them back
// (platform.ReplyLease).
var replyBufs = sync.Pool{New: func() any { return new([]byte) }}

// giveBackReply keeps a buffer for the next reply, unless one large batch
// made it bigger than any guess (maxGuessBytes).
func giveBackReply(bp *[]byte) {
	if cap(*bp) <= maxGuessBytes {
		replyBufs.Put(bp)
	}
}

// Images implements platform.ImageBackend.
func (z *Zhipu) Images(ctx context.Context, req *zhipuai.ImageRequest) (*zhipuai.ImagesResponse, error) {
	var out zhipuai.ImagesResponse
	if err := z.postDecode(ctx, "/images/generations", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func (z *Zhipu) postDecode(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	raw, err := z.postBody(ctx, path, body, nil, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return badReply(z.name, err)
	}
	return nil
}

// postBody sends body and returns the body of a 200 reply; last is the
// size of the previous reply on path, or nil, and dst a buffer to read it
// into, or nil (readBodySized).
func (z *Zhipu) postBody(ctx context.Context, path string, body []byte, last *atomic.Int64, dst *[]byte) ([]byte, error) {
	resp, err := postJSON(ctx, z.client, joinURL(z.base, path), z.auth, body, false)
	if err != nil {
		return nil, transportError(ctx, z.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, z.statusError(resp)
	}
	var buf []byte
	if dst != nil {
		buf = *dst
	}
	raw, err := readBodySized(resp, maxReplyBytes, last, buf)
	if err != nil {
		return nil, transportError(ctx, z.name, err)
	}
	return raw, nil
}

// statusError reads and closes an error reply.
func (z *Zhipu) statusError(resp *http.Response) *platform.Error {
	raw, err := readBody(resp, maxErrorBytes)
	if err != nil {
		return retryable(platform.CodeInternal, "upstream error",
			fmt.Errorf("backend %s: HTTP %d, body unreadable: %w", z.name, resp.StatusCode, err))
	}
	var env zhipuai.ErrorEnvelope
	_ = json.Unmarshal(raw, &env)
	msg := env.Error.Message
	if env.Error.Code == "" && msg == "" {
		msg = clip(string(raw), 200)
	}
	return mapZhipuError(z.name, resp.StatusCode, string(env.Error.Code), msg)
}

// mapZhipuError turns a V4 error from the cloud into the error glm serve
// gives its own client (docs/v4.md §6). Codes that describe the client's request
// (12xx, 1261, 1301) pass through with the cloud's message. Codes about
// the operator's upstream account — its key (1000–1004), its balance or
// state (11xx), its rate limits (1302–1305) — are not the client's fault:
// the client's key was fine, so they become a 500 or 1305 ("platform
// busy") and let the router try another backend.
func mapZhipuError(backend string, status int, code, msg string) *platform.Error {
	cause := fmt.Errorf("backend %s: HTTP %d code %q: %s", backend, status, code, clip(msg, 300))
	n, _ := strconv.Atoi(code)
	switch {
	case n >= 1000 && n <= 1004, status == http.StatusUnauthorized, status == http.StatusForbidden && code == "":
		return retryable(platform.CodeInternal, "upstream authentication failed", cause)
	case n >= 1100 && n < 1200:
		return retryable(platform.CodeInternal, "upstream account unavailable", cause)
	case n >= 1302 && n <= 1309, status == http.StatusTooManyRequests:
		return retryable(platform.CodeOverloaded, "upstream is busy, please retry later", cause)
	case code == platform.CodeUnknownModel:
		// The operator listed a model this upstream does not have; another
		// backend may.
		return retryable(platform.CodeUnknownModel, "model is not available upstream", cause)
	case status >= 500 || code == platform.CodeInternal:
		return retryable(platform.CodeInternal, "upstream error", cause)
	case n >= 1200 && n < 1400:
		if msg == "" {
			msg = "upstream rejected the request"
		}
		return &platform.Error{Code: code, Message: msg, Err: cause}
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return &platform.Error{Code: platform.CodeBadParams, Message: "upstream rejected the request", Err: cause}
	}
	return retryable(platform.CodeInternal, "unexpected upstream reply", cause)
}

// badReply is an upstream answer that is not the V4 shape.
func badReply(backend string, err error) *platform.Error {
	return retryable(platform.CodeInternal, "upstream sent an invalid reply", fmt.Errorf("backend %s: %w", backend, err))
}

// replyText is the text of a sync reply, for usage estimates.
func replyText(c *zhipuai.ChatCompletion) string {
	var s string
	for _, ch := range c.Choices {
		// Reasoning is output too (docs/design.md §3 "Money").
		s += ch.Message.ReasoningContent + ch.Message.Content
		for _, tc := range ch.Message.ToolCalls {
			s += tc.Function.Name + tc.Function.Arguments
		}
	}
	return s
}

// estimateUsage is the stated conservative estimate used when an upstream
// reports no usage (docs/design.md §3 "Client disconnect"; docs/peers.md §2.1).
func estimateUsage(req *zhipuai.ChatCompletionRequest, completion string) zhipuai.Usage {
	p := platform.EstimateChatPromptTokens(req)
	c := platform.EstimateTokens(completion)
	return zhipuai.Usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c}
}
