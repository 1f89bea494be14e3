// Package zhipuai is a Go client for the ZhipuAI GLM-4 "V4" open platform
// (open.bigmodel.cn, or any server speaking the same API such as glm serve).
//
// Calls are named after the Python zhipuai SDK:
//
//	client, err := zhipuai.NewClient() // reads ZHIPUAI_API_KEY, ZHIPUAI_BASE_URL
//	resp, err := client.Chat.Completions.Create(ctx, &zhipuai.ChatCompletionRequest{...})
//	stream, err := client.Chat.Completions.Stream(ctx, req)
//	task, err := client.Chat.AsyncCompletions.Create(ctx, req)
//	res, err := client.Chat.AsyncCompletions.RetrieveCompletionResult(ctx, task.ID)
//	emb, err := client.Embeddings.Create(ctx, &zhipuai.EmbeddingRequest{...})
//	img, err := client.Images.Generations(ctx, &zhipuai.ImageRequest{...})
//	n, err := client.Tokenizer.Create(ctx, &zhipuai.TokenizerRequest{...})
//	ranked, err := client.Rerank.Create(ctx, &zhipuai.RerankRequest{...})
//	token, err := zhipuai.GenerateToken(apiKey, time.Minute)
//
// Every HTTP failure is an *APIError, every rejected request a
// *ValidationError; calls are retried (2 times by default) on connection
// errors, 408, 409, 429 and 5xx. The API key never appears in errors, logs
// or formatted output.
package zhipuai

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/glmkit/glmkit/internal/v4auth"
)

// Defaults, chosen after the Python SDK (docs/v4.md §6) and openai-go.
const (
	// DefaultBaseURL is the V4 API of the ZhipuAI open platform.
	DefaultBaseURL = "https://open.bigmodel.cn/api/paas/v4"
	// DefaultTimeout bounds one attempt (Python SDK: 300 s).
	DefaultTimeout = 300 * time.Second
	// DefaultMaxRetries is the number of retries after the first attempt.
	DefaultMaxRetries = 2
	// DefaultTokenTTL is the JWT lifetime: the Python SDK signs exp =
	// now+210 s and reuses the token for 180 s (docs/v4.md §2).
	DefaultTokenTTL = 210 * time.Second
	// Version is sent in the User-Agent.
	Version = "0.1.0"
)

// Environment variables read by NewClient when no option is given.
const (
	EnvAPIKey  = "ZHIPUAI_API_KEY"
	EnvBaseURL = "ZHIPUAI_BASE_URL"
)

// Client calls the V4 API. It is safe for concurrent use; create one and
// share it.
type Client struct {
	Chat       *ChatService
	Embeddings *EmbeddingsService
	Images     *ImagesService
	Models     *ModelsService
	Tokenizer  *TokenizerService
	Rerank     *RerankService
	Files      *FilesService
	Batches    *BatchesService

	baseURL    string
	keyID      string
	secret     secret
	rawKey     bool
	httpClient *http.Client
	timeout    time.Duration
	maxRetries int
	header     http.Header
	tokens     *tokenCache
	now        func() time.Time
	sleep      sleepFunc
	logger     *slog.Logger
}

// secret holds the key's secret behind a pointer: fmt prints a nested
// pointer as an address and never calls methods on unexported fields, so a
// Client or tokenCache printed by accident (%+v, %#v, slog) shows no secret.
type secret struct{ p *string }

func newSecret(s string) secret { return secret{p: &s} }

// reveal returns the secret for signing and the raw Authorization header.
func (s secret) reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

func (secret) String() string   { return "[redacted]" }
func (secret) GoString() string { return `"[redacted]"` }

// NewClient builds a Client. Without WithAPIKey it reads ZHIPUAI_API_KEY and
// without WithBaseURL ZHIPUAI_BASE_URL (then DefaultBaseURL). A missing key
// or one not of the form id.secret is an error here, before any request.
func NewClient(opts ...Option) (*Client, error) {
	cfg := config{
		timeout:    DefaultTimeout,
		maxRetries: DefaultMaxRetries,
		header:     http.Header{},
		tokenTTL:   DefaultTokenTTL,
		now:        time.Now,
		sleep:      sleepCtx,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}

	key := os.Getenv(EnvAPIKey)
	if cfg.apiKey != nil {
		key = *cfg.apiKey
	}
	key = strings.TrimSpace(key)
	if key == "" {
		return nil, errors.New("zhipuai: no API key: pass WithAPIKey or set " + EnvAPIKey)
	}
	id, sec, err := v4auth.SplitKey(key)
	if err != nil {
		// SplitKey never echoes the key.
		return nil, fmt.Errorf("zhipuai: invalid API key: %w", err)
	}

	base := os.Getenv(EnvBaseURL)
	if cfg.baseURL != nil {
		base = *cfg.baseURL
	}
	if strings.TrimSpace(base) == "" {
		base = DefaultBaseURL
	}
	base, err = cleanBaseURL(base)
	if err != nil {
		return nil, err
	}

	hc := cfg.httpClient
	if hc == nil {
		hc = &http.Client{}
	}
	logger := cfg.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		baseURL:    base,
		keyID:      id,
		secret:     newSecret(sec),
		rawKey:     cfg.rawKey,
		httpClient: hc,
		timeout:    cfg.timeout,
		maxRetries: cfg.maxRetries,
		header:     cfg.header,
		now:        cfg.now,
		sleep:      cfg.sleep,
		logger:     logger,
	}
	c.tokens = newTokenCache(id, sec, cfg.tokenTTL, cfg.now)
	c.Chat = &ChatService{
		Completions:      &ChatCompletionsService{client: c},
		AsyncCompletions: &AsyncCompletionsService{client: c},
	}
	c.Embeddings = &EmbeddingsService{client: c}
	c.Images = &ImagesService{client: c}
	c.Models = &ModelsService{client: c}
	c.Tokenizer = &TokenizerService{client: c}
	c.Rerank = &RerankService{client: c}
	c.Files = &FilesService{client: c}
	c.Batches = &BatchesService{client: c}
	return c, nil
}

// cleanBaseURL checks the base URL and drops a trailing slash, so that
// joining "/chat/completions" gives one slash whatever the user wrote
// (docs/v4.md §1 "Relative-path joining").
func cleanBaseURL(base string) (string, error) {
	base = strings.TrimSpace(base)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("zhipuai: base URL must be an absolute http(s) URL")
	}
	if u.User != nil {
		return "", errors.New("zhipuai: base URL must not carry credentials")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("zhipuai: base URL must not have a query or fragment")
	}
	return strings.TrimRight(base, "/"), nil
}

// BaseURL returns the base the client calls, without a trailing slash.
func (c *Client) BaseURL() string { return c.baseURL }

// String describes the client without its key: only the first four
// characters of the key id are shown.
func (c *Client) String() string {
	if c == nil {
		return "zhipuai.Client(nil)"
	}
	mode := "jwt"
	if c.rawKey {
		mode = "raw"
	}
	return fmt.Sprintf("zhipuai.Client{BaseURL: %q, APIKey: %q, Auth: %s}", c.baseURL, maskID(c.keyID), mode)
}

// GoString is String, so %#v hides the key too.
func (c *Client) GoString() string { return c.String() }

// Format makes every verb (%v, %+v, %#v, %s, %q …) print String.
func (c *Client) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", c.String())
		return
	}
	_, _ = io.WriteString(f, c.String())
}

// maskID shows at most four characters of a key id.
func maskID(id string) string {
	if len(id) <= 4 {
		return "****"
	}
	return id[:4] + "...[redacted]"
}
