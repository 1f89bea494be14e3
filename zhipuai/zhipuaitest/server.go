// Package zhipuaitest is a scriptable fake of the ZhipuAI V4 platform on
// net/http/httptest: the "zhipu cloud" for the tests of the SDK, of glm
// serve (which uses it as its upstream) and of the cookbook commands.
//
// It speaks the wire exactly as docs/v4.md describes it — the four
// Authorization forms checked through internal/v4auth, sync replies as
// application/json; charset=UTF-8, streams as data-only SSE with one final
// chunk carrying finish_reason and usage followed by [DONE], async tasks,
// embeddings (float and base64) and image URLs — so a client that passes
// against it meets the real platform's shapes.
//
//	srv := zhipuaitest.NewServer()
//	defer srv.Close()
//	srv.Enqueue(zhipuaitest.Text("你好"), zhipuaitest.Error(429, "1302", "并发过高"))
//	client, err := zhipuai.NewClient(zhipuai.WithBaseURL(srv.URL()), zhipuai.WithAPIKey(srv.APIKey))
//	...
//	reqs := srv.Requests() // what the client sent
//
// For glm serve the fake is the Zhipu cloud: configure the cloud backend
// with srv.URL() as its base URL and srv.APIKey as the operator's key.
//
// Replies come from a FIFO queue (Enqueue); when no queued reply fits the
// call, the Handle function answers (by default: the endpoint's default
// answer, for chat "Echo: <last user message>"). All methods are safe for
// concurrent use.
package zhipuaitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/glmkit/glmkit/internal/v4auth"
	"github.com/glmkit/glmkit/zhipuai"
)

// BasePath is the path under which the server speaks V4; URL() ends in it.
const BasePath = "/api/paas/v4"

// codingBasePath is the coding plan's base (docs/v4.md §1), same routes.
const codingBasePath = "/api/coding/paas/v4"

// maxBody bounds a request body; the platform's real limits are lower.
const maxBody = 64 << 20

// Request is one request the server received, as Requests returns it.
type Request struct {
	Method string
	// Path is relative to the V4 base, cleaned: "/chat/completions",
	// "/async-result/123". FullPath is the path as received.
	Path     string
	FullPath string
	Header   http.Header
	Body     []byte
	// Chat, Embedding and Image hold the decoded body of the matching
	// route (nil when the route differs or the JSON did not decode).
	Chat      *zhipuai.ChatCompletionRequest
	Embedding *zhipuai.EmbeddingRequest
	Image     *zhipuai.ImageRequest
	// Auth is "raw" or "jwt" for an accepted credential, "" otherwise.
	Auth string
	// KeyID is the id part of the accepted key.
	KeyID string
}

// clone returns a copy that shares nothing mutable with r. The decoded
// bodies are decoded again from Body (which decoded before, so it does
// again) rather than copied field by field, so nested slices are not shared.
func (r Request) clone() Request {
	r.Header = r.Header.Clone()
	r.Body = bytes.Clone(r.Body)
	if r.Chat != nil {
		r.Chat = redecode(r.Body, r.Chat)
	}
	if r.Embedding != nil {
		r.Embedding = redecode(r.Body, r.Embedding)
	}
	if r.Image != nil {
		r.Image = redecode(r.Body, r.Image)
	}
	return r
}

// redecode decodes body into a new T, falling back to a shallow copy of old.
func redecode[T any](body []byte, old *T) *T {
	v := new(T)
	if json.Unmarshal(body, v) != nil {
		*v = *old
	}
	return v
}

// Option configures NewServer.
type Option func(*Server)

// WithClock makes the server read the time from now: "created" fields and
// JWT expiry checks use it. With WithIDs it makes transcripts byte-exact.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// WithIDs makes the server take every id (completion ids, task ids, tool
// call ids after "call_", image names) from next. It is called with the
// server's lock held, so it needs no locking of its own.
func WithIDs(next func() string) Option {
	return func(s *Server) { s.nextID = next }
}

// WithAPIKey sets APIKey instead of a random one. It must have the form
// id.secret.
func WithAPIKey(key string) Option {
	return func(s *Server) { s.APIKey = key }
}

// Server is a running fake V4 platform. Create it with NewServer and Close
// it when done.
type Server struct {
	// APIKey is a valid key "id.secret" (32 hex chars, dot, 16
	// alphanumerics, like real keys). It is accepted raw or as the
	// tutorial's JWT, with or without "Bearer ".
	APIKey string

	ts        *httptest.Server
	done      chan struct{}
	closeOnce sync.Once
	now       func() time.Time
	nextID    func() string

	mu         sync.Mutex
	keys       map[string]string // key id → secret
	queue      []Reply
	handler    func(*Request) Reply
	requests   []Request
	tasks      map[string]*task
	asyncPolls int
	idSeq      uint64
}

// NewServer starts a fake platform on a loopback port.
func NewServer(opts ...Option) *Server {
	s := &Server{
		done:       make(chan struct{}),
		now:        time.Now,
		keys:       map[string]string{},
		tasks:      map[string]*task{},
		asyncPolls: 1,
	}
	// Default ids: 19-digit numbers like the 2024 platform's (docs/v4.md §4),
	// counting up from a random start so two fakes in one test differ.
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.idSeq = 7_000_000_000_000_000_000 + binary.LittleEndian.Uint64(b[:])%1_000_000_000_000_000_000
	s.nextID = func() string {
		s.idSeq++
		return strconv.FormatUint(s.idSeq, 10)
	}
	for _, o := range opts {
		o(s)
	}
	if s.APIKey == "" {
		s.APIKey = randomKey()
	}
	s.AddKey(s.APIKey)
	s.ts = httptest.NewServer(s)
	return s
}

// randomKey makes a key shaped like a real one: 32 hex, dot, 16 alphanumerics.
func randomKey() string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	var b [32]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%x", b[:16])
	sec := make([]byte, 16)
	for i := range sec {
		sec[i] = alnum[int(b[16+i])%len(alnum)]
	}
	return id + "." + string(sec)
}

// URL returns the V4 base URL, e.g. "http://127.0.0.1:PORT/api/paas/v4".
func (s *Server) URL() string { return s.ts.URL + BasePath }

// RootURL returns the server's root, without the V4 base path.
func (s *Server) RootURL() string { return s.ts.URL }

// Close ends waiting handlers (delays) and shuts the server down.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
	s.ts.Close()
}

// AddKey makes the server accept another key "id.secret". It panics on a
// malformed key: that is a bug in the test.
func (s *Server) AddKey(key string) {
	id, secret, err := v4auth.SplitKey(key)
	if err != nil {
		panic("zhipuaitest: AddKey: " + err.Error())
	}
	s.mu.Lock()
	s.keys[id] = secret
	s.mu.Unlock()
}

// Enqueue appends replies to the FIFO queue (a reply with Times(n) goes in
// n times). Chat calls (sync, stream, async submit) take the first queued
// reply that is not an Embeddings reply; embeddings calls take the first
// Embeddings or Error reply; images calls the first Error reply.
func (s *Server) Enqueue(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range replies {
		for range max(r.times, 1) {
			s.queue = append(s.queue, r)
		}
	}
}

// Pending returns how many replies are still queued.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Handle sets the fallback used when no queued reply fits a call. It
// receives a copy of the request and may be called concurrently. Returning
// the zero Reply gives the endpoint's default answer; an embeddings or
// images call given a chat reply (Text, ToolCalls, InBandError) also falls
// back to its default. nil restores the default.
func (s *Server) Handle(f func(req *Request) Reply) {
	s.mu.Lock()
	s.handler = f
	s.mu.Unlock()
}

// Requests returns a copy of every request received, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r.clone()
	}
	return out
}

// Reset clears the queue and the recorded requests (keys, handler, async
// tasks and settings stay).
func (s *Server) Reset() {
	s.mu.Lock()
	s.queue = nil
	s.requests = nil
	s.mu.Unlock()
}

// SetAsyncPolls makes async tasks submitted from now on answer PROCESSING
// to their first n polls, then SUCCESS or FAIL (default 1).
func (s *Server) SetAsyncPolls(n int) {
	s.mu.Lock()
	s.asyncPolls = max(n, 0)
	s.mu.Unlock()
}

// newID returns the next id; the lock must not be held.
func (s *Server) newID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextID()
}

// take returns the reply for a call: the first queued reply that fits, else
// the handler's answer. The handler runs without the lock so it may call
// Enqueue or Requests.
func (s *Server) take(req *Request, fits func(Reply) bool) Reply {
	s.mu.Lock()
	for i, r := range s.queue {
		if fits(r) {
			s.queue = slices.Delete(s.queue, i, i+1)
			s.mu.Unlock()
			return r
		}
	}
	h := s.handler
	s.mu.Unlock()
	if h == nil {
		return Reply{}
	}
	c := req.clone()
	return h(&c)
}

// record stores a received request.
func (s *Server) record(req *Request) {
	c := req.clone()
	s.mu.Lock()
	s.requests = append(s.requests, c)
	s.mu.Unlock()
}

// relPath strips the V4 base and cleans the rest so that a client's base
// URL with or without a trailing slash routes the same (docs/v4.md §8.2): runs of
// slashes collapse and a trailing slash is dropped. ok is false outside the
// base.
func relPath(p string) (string, bool) {
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	for _, base := range []string{BasePath, codingBasePath} {
		if rest, found := strings.CutPrefix(p, base); found && (rest == "" || rest[0] == '/') {
			rest = strings.TrimSuffix(rest, "/")
			if rest == "" {
				rest = "/"
			}
			return rest, true
		}
	}
	return p, false
}

// ServeHTTP routes a request. It is exported through httptest only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, imagePathPrefix) && r.Method == http.MethodGet {
		s.serveImageFile(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	req := &Request{
		Method:   r.Method,
		FullPath: r.URL.Path,
		Header:   r.Header.Clone(),
		Body:     body,
	}
	rel, inBase := relPath(r.URL.Path)
	req.Path = rel
	if err != nil {
		s.record(req)
		writeError(w, http.StatusBadRequest, "1210", "请求体读取失败: "+err.Error())
		return
	}

	var route func(http.ResponseWriter, *http.Request, *Request)
	method := http.MethodPost
	switch {
	case !inBase:
	case rel == "/chat/completions":
		route = s.chat
	case rel == "/async/chat/completions":
		route = s.asyncSubmit
	case strings.HasPrefix(rel, "/async-result/") && len(rel) > len("/async-result/"):
		route, method = s.asyncResult, http.MethodGet
	case rel == "/embeddings":
		route = s.embeddings
	case rel == "/images/generations":
		route = s.images
	case rel == "/models":
		route, method = s.models, http.MethodGet
	case rel == "/tokenizer":
		route = s.tokenizer
	case rel == "/rerank":
		route = s.rerank
	}
	if route == nil {
		s.record(req)
		writeError(w, http.StatusNotFound, "1222", "API不存在: "+r.URL.Path)
		return
	}
	if r.Method != method {
		s.record(req)
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, "1222", "请求方法不支持: "+r.Method)
		return
	}
	if aerr := s.authenticate(r.Header.Get("Authorization"), req); aerr != nil {
		s.record(req)
		writeError(w, http.StatusUnauthorized, v4auth.Code(aerr), authMessage(v4auth.Code(aerr)))
		return
	}
	route(w, r, req)
}

// authenticate checks the Authorization header exactly as the platform
// does, through v4auth (docs/v4.md §2): all four forms, HS256 only, exp in ms.
func (s *Server) authenticate(h string, req *Request) error {
	cred, err := v4auth.ParseAuthorization(h)
	if err != nil {
		return err
	}
	s.mu.Lock()
	secret, ok := s.keys[cred.ID]
	s.mu.Unlock()
	if !ok {
		return v4auth.ErrUnknownKey
	}
	if err := v4auth.Verify(cred, secret, s.now()); err != nil {
		return err
	}
	req.KeyID = cred.ID
	req.Auth = "raw"
	if cred.IsJWT() {
		req.Auth = "jwt"
	}
	return nil
}

// authMessage is the platform's Chinese text for an auth code.
func authMessage(code string) string {
	switch code {
	case "1001":
		return "Header中未收到Authorization参数，无法进行身份验证。"
	case "1002":
		return "Authorization Token非法，请确认Authorization Token正确传递。"
	case "1003":
		return "Authorization Token已过期。"
	case "1004":
		return "Authorization Token验证失败。"
	}
	return "身份验证失败。"
}

// marshal encodes v without HTML escaping, as the platform writes "<" and
// "&" literally, and without the encoder's trailing newline.
func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("zhipuaitest: encoding a reply: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// writeJSON writes a JSON reply with the platform's exact media type
// (docs/v4.md §8.3: the Python SDK checks it).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write(marshal(v))
}

// writeError writes the V4 envelope (docs/v4.md §6): code a string of digits.
func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, zhipuai.ErrorEnvelope{Error: zhipuai.ErrorBody{Code: zhipuai.ErrorCode(code), Message: message}})
}

// wait sleeps d unless the client leaves or the server closes first; it
// reports whether the full delay passed.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// abort ends the connection without a proper end of body, so the client
// sees a transport error (net/http recovers this panic silently).
func abort() { panic(http.ErrAbortHandler) }

// unmarshal decodes a request body (json.Unmarshal, named for the call
// sites: an error there is always a 1210 answer).
func unmarshal(body []byte, v any) error { return json.Unmarshal(body, v) }
