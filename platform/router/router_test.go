package router

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// cloud starts a fake Zhipu cloud for one backend of a router.
func cloud(t *testing.T) *zhipuaitest.Server {
	t.Helper()
	s := zhipuaitest.NewServer()
	t.Cleanup(s.Close)
	return s
}

func zb(name string, s *zhipuaitest.Server, prio, weight int, models ...ModelConfig) BackendConfig {
	if len(models) == 0 {
		models = []ModelConfig{{Name: "glm-4"}}
	}
	return BackendConfig{Name: name, Type: TypeZhipu, BaseURL: s.URL(), APIKey: s.APIKey, Priority: prio, Weight: weight, Models: models}
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newRouter(t *testing.T, cfg Config, opts ...Option) *Router {
	t.Helper()
	opts = append([]Option{WithRand(rand.New(rand.NewPCG(1, 2)))}, opts...)
	r, err := New(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func chatReq(model, text string) platform.ChatRequest {
	return platform.ChatRequest{Req: &zhipuai.ChatCompletionRequest{Model: model,
		Messages: []zhipuai.Message{{Role: "user", Content: zhipuai.Content{Text: text}}}}}
}

func code(err error) string {
	var pe *platform.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "not a platform error: " + err.Error()
}

func TestPriorityThenFailoverOnEveryPreByteFailure(t *testing.T) {
	failures := map[string]zhipuaitest.Reply{
		"5xx": zhipuaitest.Error(500, "500", "boom"),
		"429": zhipuaitest.Error(429, "1305", "busy"),
		"cut": zhipuaitest.Text("x").CutAfter(0),
	}
	for name, fail := range failures {
		t.Run(name, func(t *testing.T) {
			a, b := cloud(t), cloud(t)
			r := newRouter(t, Config{Backends: []BackendConfig{zb("b", b, 0, 1), zb("a", a, 10, 1)}})
			a.Enqueue(zhipuaitest.Text("from a"), fail, fail)
			b.Enqueue(zhipuaitest.Text("from b").Times(2))

			resp, _, err := r.Chat(context.Background(), chatReq("glm-4", "1"))
			if err != nil || resp.Choices[0].Message.Content != "from a" {
				t.Fatalf("higher priority not first: %v %v", resp, err)
			}
			ctx, tr := WithTrace(context.Background())
			resp, _, err = r.Chat(ctx, chatReq("glm-4", "2"))
			if err != nil || resp.Choices[0].Message.Content != "from b" {
				t.Fatalf("no failover: %v", err)
			}
			if tr.Backend != "b" || tr.Attempts != 2 {
				t.Fatalf("trace %+v", tr)
			}
			ctx, tr = WithTrace(context.Background())
			s, err := r.ChatStream(ctx, chatReq("glm-4", "3"))
			if err != nil {
				t.Fatalf("stream failover: %v", err)
			}
			ch, err := s.Next()
			c := chunkOf(t, ch, err)
			s.Close()
			if err != nil || c.Choices[0].Delta.Content == "" || tr.Backend != "b" || tr.Attempts != 2 {
				t.Fatalf("stream from %+v: %v", tr, err)
			}
		})
	}
}

func TestFailoverOnConnectError(t *testing.T) {
	dead := zhipuaitest.NewServer()
	dead.Close()
	b := cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("dead", dead, 10, 1), zb("b", b, 0, 1)}})
	ctx, tr := WithTrace(context.Background())
	resp, _, err := r.Chat(ctx, chatReq("glm-4", "hi"))
	if err != nil || !strings.Contains(resp.Choices[0].Message.Content, "hi") || tr.Backend != "b" || tr.Attempts != 2 {
		t.Fatalf("resp %v err %v trace %+v", resp, err, tr)
	}
}

func TestNoFailoverOnClientError(t *testing.T) {
	a, b := cloud(t), cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 10, 1), zb("b", b, 0, 1)}})
	a.Enqueue(zhipuaitest.Error(400, "1261", "Prompt 超长"))
	_, _, err := r.Chat(context.Background(), chatReq("glm-4", "x"))
	if code(err) != "1261" || len(b.Requests()) != 0 {
		t.Fatalf("err %v, b got %d requests", err, len(b.Requests()))
	}
}

func TestNoFailoverAfterFirstByte(t *testing.T) {
	a, b := cloud(t), cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 10, 1), zb("b", b, 0, 1)}})
	a.Enqueue(zhipuaitest.Text("abcdef").WithChunks("ab", "cd", "ef").CutAfter(1))
	s, err := r.ChatStream(context.Background(), chatReq("glm-4", "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Next()
	c := chunkOf(t, ch, err)
	if err != nil || c.Choices[0].Delta.Content != "ab" {
		t.Fatalf("first chunk %v %v", c, err)
	}
	_, err = s.Next()
	if err == nil || errors.Is(err, io.EOF) || code(err) != "1234" {
		t.Fatalf("a cut after the first byte must surface as an error, got %v", err)
	}
	if len(b.Requests()) != 0 {
		t.Fatal("retried on another backend after the first byte")
	}
}

// An in-band error as the very first event is still before the first byte.
func TestFailoverOnInBandErrorBeforeFirstChunk(t *testing.T) {
	a, b := cloud(t), cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 10, 1), zb("b", b, 0, 1)}})
	a.Enqueue(zhipuaitest.InBandError("1305", "busy").WithChunks())
	ctx, tr := WithTrace(context.Background())
	s, err := r.ChatStream(ctx, chatReq("glm-4", "x"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if tr.Backend != "b" {
		t.Fatalf("trace %+v", tr)
	}
}

func TestWeightedSplitWithinPriority(t *testing.T) {
	a, b, c := cloud(t), cloud(t), cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 5, 3), zb("b", b, 5, 1), zb("c", c, 0, 100)}})
	// The planner's first pick over many draws follows the weights 3:1,
	// and the lower priority is never first.
	rt := r.routes["glm-4"]
	counts := map[string]int{}
	const n = 20000
	for range n {
		p := r.plan(rt, 0, nil)
		counts[p[0].m.name]++
		if len(p) != 3 || p[2].m.name != "c" {
			t.Fatalf("plan %v", p)
		}
	}
	share := float64(counts["a"]) / n
	if share < 0.73 || share > 0.77 || counts["c"] != 0 {
		t.Fatalf("split %v (a share %.3f, want 0.75)", counts, share)
	}
	// And over real HTTP calls.
	for range 200 {
		if _, _, err := r.Chat(context.Background(), chatReq("glm-4", "x")); err != nil {
			t.Fatal(err)
		}
	}
	na, nb := len(a.Requests()), len(b.Requests())
	if na+nb != 200 || na < 130 || na > 170 || len(c.Requests()) != 0 {
		t.Fatalf("HTTP split a=%d b=%d c=%d", na, nb, len(c.Requests()))
	}
}

func TestCircuitOpensAndRecovers(t *testing.T) {
	a, b := cloud(t), cloud(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	cfg := Config{Backends: []BackendConfig{zb("a", a, 10, 1), zb("b", b, 0, 1)},
		CircuitBreaker: BreakerConfig{Failures: 2, Cooldown: Duration(30 * time.Second)}}
	r := newRouter(t, cfg, WithClock(clk.now))
	a.Enqueue(zhipuaitest.Error(503, "500", "down").Times(2))
	for i := range 2 {
		if _, _, err := r.Chat(context.Background(), chatReq("glm-4", "x")); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if st := state(r, "a"); st != "open" {
		t.Fatalf("after 2 failures a is %s", st)
	}
	// Open: a is skipped without a request.
	ctx, tr := WithTrace(context.Background())
	if _, _, err := r.Chat(ctx, chatReq("glm-4", "x")); err != nil || tr.Attempts != 1 || tr.Backend != "b" {
		t.Fatalf("open circuit not skipped: %+v %v", tr, err)
	}
	if len(a.Requests()) != 2 {
		t.Fatalf("a got %d requests while open", len(a.Requests()))
	}
	// After the cool-down one probe goes to a; it fails → open again.
	clk.add(31 * time.Second)
	if st := state(r, "a"); st != "half-open" {
		t.Fatalf("after cool-down a is %s", st)
	}
	a.Enqueue(zhipuaitest.Error(503, "500", "still down"))
	if _, _, err := r.Chat(context.Background(), chatReq("glm-4", "x")); err != nil {
		t.Fatal(err)
	}
	if len(a.Requests()) != 3 || state(r, "a") != "open" {
		t.Fatalf("probe: a got %d requests, state %s", len(a.Requests()), state(r, "a"))
	}
	// Next cool-down: the probe succeeds and the circuit closes.
	clk.add(31 * time.Second)
	ctx, tr = WithTrace(context.Background())
	resp, _, err := r.Chat(ctx, chatReq("glm-4", "back"))
	if err != nil || tr.Backend != "a" || state(r, "a") != "closed" || !strings.Contains(resp.Choices[0].Message.Content, "back") {
		t.Fatalf("recovery: %+v %v state %s", tr, err, state(r, "a"))
	}
}

func state(r *Router, name string) string {
	for _, b := range r.Backends() {
		if b.Name == name {
			return b.Circuit
		}
	}
	return "missing"
}

// With every backend open the router answers at once, retryably.
func TestAllCircuitsOpen(t *testing.T) {
	a := cloud(t)
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 0, 1)},
		CircuitBreaker: BreakerConfig{Failures: 1, Cooldown: Duration(time.Minute)}}, WithClock(clk.now))
	a.Enqueue(zhipuaitest.Error(500, "500", "x"))
	_, _, err := r.Chat(context.Background(), chatReq("glm-4", "x"))
	if code(err) != "500" {
		t.Fatalf("first: %v", err)
	}
	_, _, err = r.Chat(context.Background(), chatReq("glm-4", "x"))
	var pe *platform.Error
	if !errors.As(err, &pe) || pe.Code != "1234" || pe.Status() != 503 || len(a.Requests()) != 1 {
		t.Fatalf("all open: %v", err)
	}
}

func TestAliasResolution(t *testing.T) {
	a := cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 0, 1, ModelConfig{Name: "house-glm", Upstream: "glm-4-plus", Kind: platform.KindChat, ContextTokens: 1000})}})
	info, ok := r.Model("house-glm")
	if !ok || info.ContextTokens != 1000 || info.Kind != platform.KindChat {
		t.Fatalf("Model = %+v %v", info, ok)
	}
	if _, ok := r.Model("glm-4-plus"); ok {
		t.Fatal("the engine name must not be served under its own name")
	}
	ctx, tr := WithTrace(context.Background())
	req := chatReq("house-glm", "x")
	req.Raw = []byte(`{"model":"house-glm","messages":[{"role":"user","content":"x"}]}`)
	resp, body, err := r.Chat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != "house-glm" || !strings.Contains(string(body), `"model":"house-glm"`) || tr.UpstreamModel != "glm-4-plus" {
		t.Fatalf("reply model %q, trace %+v", resp.Model, tr)
	}
	if got := a.Requests()[0].Chat.Model; got != "glm-4-plus" {
		t.Fatalf("upstream got model %q", got)
	}
	if req.Req.Model != "house-glm" {
		t.Fatal("the caller's request was modified")
	}
	s, err := r.ChatStream(context.Background(), chatReq("house-glm", "y"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for {
		ch, err := s.Next()
		d := ch.Data
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || !strings.Contains(string(d), `"model":"house-glm"`) {
			t.Fatalf("chunk %s %v", d, err)
		}
	}
}

func TestUnknownModelAndWrongKind(t *testing.T) {
	r := newRouter(t, Config{})
	_, _, err := r.Chat(context.Background(), chatReq("glm-4", "x"))
	if code(err) != "1211" {
		t.Fatalf("unknown model: %v", err)
	}
	_, _, err = r.Chat(context.Background(), chatReq(platform.BuiltinEmbedModel, "x"))
	if code(err) != "1212" {
		t.Fatalf("chat on an embedding model: %v", err)
	}
	_, err = r.Images(context.Background(), &zhipuai.ImageRequest{Model: platform.BuiltinEmbedModel, Prompt: "x"})
	if code(err) != "1212" {
		t.Fatalf("images on an embedding model: %v", err)
	}
}

// The builtin model answers under its own name; embedding-2 is an alias
// only when the operator asks for it, and then the reply and /models say
// which model made the vectors.
func TestBuiltinAlwaysPresentAndEmbedding2Alias(t *testing.T) {
	r := newRouter(t, Config{})
	if _, ok := r.Model(platform.BuiltinEmbedModel); !ok {
		t.Fatal("builtin model missing")
	}
	if m, ok := r.Model("embedding-2"); ok {
		t.Fatalf("embedding-2 without an alias: got %+v, want it not served", m)
	}
	resp, err := r.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: platform.BuiltinEmbedModel, Input: zhipuai.EmbeddingInput{"x"}})
	if err != nil || resp.Model != platform.BuiltinEmbedModel {
		t.Fatalf("builtin by its name: got %+v %v, want model %s", resp, err, platform.BuiltinEmbedModel)
	}
	r = newRouter(t, Config{Builtin: BuiltinConfig{Aliases: &[]string{"embedding-2"}}})
	e2, ok := r.Model("embedding-2")
	if !ok || e2.OwnedBy != AliasOwner(platform.BuiltinEmbedModel) || e2.DefaultDimensions() != 1024 {
		t.Fatalf("embedding-2 alias: got %+v, want owned by %q with 1024 dims", e2, AliasOwner(platform.BuiltinEmbedModel))
	}
	resp, err = r.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"你好", "hello"}})
	if err != nil || resp.Model != platform.BuiltinEmbedModel || len(resp.Data) != 2 || len(resp.Data[0].Embedding) != 1024 || resp.Usage.PromptTokens == 0 {
		t.Fatalf("builtin embeddings under the alias: got %+v %v, want 2×1024 vectors from model %s", resp, err, platform.BuiltinEmbedModel)
	}
	_, err = r.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"x"}, Dimensions: zhipuai.Ptr(256)})
	if code(err) != "1214" {
		t.Fatalf("embedding-2 with 256 dims: %v", err)
	}
	// A configured embedding-2 wins; the builtin never shadows it.
	a := cloud(t)
	r = newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 0, 1, ModelConfig{Name: "embedding-2"})},
		Builtin: BuiltinConfig{Aliases: &[]string{"embedding-2"}}})
	if _, err := r.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"x"}}); err != nil || len(a.Requests()) != 1 {
		t.Fatalf("configured embedding-2 not used: %v", err)
	}
	if m, _ := r.Model("embedding-2"); m.OwnedBy != platform.OwnerZhipu {
		t.Fatalf("owner %q", m.OwnedBy)
	}
}

func TestConcurrencyCapSkipsFullBackend(t *testing.T) {
	a, b := cloud(t), cloud(t)
	ca := zb("a", a, 10, 1)
	ca.MaxConcurrency = 1
	r := newRouter(t, Config{Backends: []BackendConfig{ca, zb("b", b, 0, 1)}})
	held, err := r.ChatStream(context.Background(), chatReq("glm-4", "long"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, tr := WithTrace(context.Background())
	if _, _, err := r.Chat(ctx, chatReq("glm-4", "x")); err != nil || tr.Backend != "b" {
		t.Fatalf("full backend not skipped: %+v %v", tr, err)
	}
	held.Close()
	ctx, tr = WithTrace(context.Background())
	if _, _, err := r.Chat(ctx, chatReq("glm-4", "x")); err != nil || tr.Backend != "a" {
		t.Fatalf("slot not freed by Close: %+v %v", tr, err)
	}
	// Only one backend, and it is full: 1305.
	r = newRouter(t, Config{Backends: []BackendConfig{ca}})
	held, err = r.ChatStream(context.Background(), chatReq("glm-4", "long"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, _, err := r.Chat(context.Background(), chatReq("glm-4", "x")); code(err) != "1305" {
		t.Fatalf("full: %v", err)
	}
}

func TestTimeoutBeforeFirstByteFailsOver(t *testing.T) {
	a, b := cloud(t), cloud(t)
	ca := zb("a", a, 10, 1)
	ca.Timeout = Duration(50 * time.Millisecond)
	r := newRouter(t, Config{Backends: []BackendConfig{ca, zb("b", b, 0, 1)}})
	a.Enqueue(zhipuaitest.Text("slow").WithDelay(time.Minute).Times(2))
	ctx, tr := WithTrace(context.Background())
	if _, _, err := r.Chat(ctx, chatReq("glm-4", "x")); err != nil || tr.Backend != "b" || tr.Attempts != 2 {
		t.Fatalf("sync timeout: %+v %v", tr, err)
	}
	ctx, tr = WithTrace(context.Background())
	s, err := r.ChatStream(ctx, chatReq("glm-4", "x"))
	if err != nil || tr.Backend != "b" {
		t.Fatalf("stream timeout: %+v %v", tr, err)
	}
	s.Close()
}

func TestContextSizeSkipsSmallBackend(t *testing.T) {
	a, b := cloud(t), cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{
		zb("small", a, 10, 1, ModelConfig{Name: "glm-4", ContextTokens: 50}),
		zb("big", b, 0, 1, ModelConfig{Name: "glm-4", ContextTokens: 128000}),
	}})
	if m, _ := r.Model("glm-4"); m.ContextTokens != 128000 {
		t.Fatalf("catalogue context %d", m.ContextTokens)
	}
	ctx, tr := WithTrace(context.Background())
	if _, _, err := r.Chat(ctx, chatReq("glm-4", strings.Repeat("很长的提示", 40))); err != nil || tr.Backend != "big" {
		t.Fatalf("long prompt: %+v %v", tr, err)
	}
	ctx, tr = WithTrace(context.Background())
	if _, _, err := r.Chat(ctx, chatReq("glm-4", "short")); err != nil || tr.Backend != "small" {
		t.Fatalf("short prompt: %+v %v", tr, err)
	}
}

func TestImagesViaZhipuOnly(t *testing.T) {
	a := cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{{Name: "cloud", Type: TypeZhipu, BaseURL: a.URL(), APIKey: a.APIKey}}})
	img, err := r.Images(context.Background(), &zhipuai.ImageRequest{Model: "cogview-3", Prompt: "猫"})
	if err != nil || len(img.Data) == 0 {
		t.Fatalf("images %v %v", img, err)
	}
	// The zhipu backend with no model list serves the whole catalogue.
	if len(r.Models()) < len(platform.ZhipuModels()) {
		t.Fatalf("models %d", len(r.Models()))
	}
}

// chunkOf decodes the chunk a stream's Next returned (nil after an error).
func chunkOf(t *testing.T, ch platform.Chunk, err error) *zhipuai.ChatCompletionChunk {
	t.Helper()
	if err != nil {
		return nil
	}
	c := new(zhipuai.ChatCompletionChunk)
	if err := json.Unmarshal(ch.Data, c); err != nil {
		t.Fatalf("chunk %s: %v", ch.Data, err)
	}
	return c
}

// A backend's vectors are counted whether it kept them as the upstream's
// bytes or decoded them: a size other than the model's is refused (1214),
// the right size relayed with its bytes.
func TestEmbeddingsDimensionsCheckedOnRelayedVectors(t *testing.T) {
	a := cloud(t)
	r := newRouter(t, Config{Backends: []BackendConfig{zb("a", a, 0, 1,
		ModelConfig{Name: "emb-512", Upstream: "embedding-2", Kind: platform.KindEmbedding, Dimensions: []int{512}},
		ModelConfig{Name: "embedding-2"})}})
	_, err := r.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "emb-512", Input: zhipuai.EmbeddingInput{"x"}})
	if code(err) != "1214" || !strings.Contains(err.Error(), "1024-dimensional vectors, not 512") {
		t.Fatalf("1024 dims from a 512-dim model: got %v, want 1214 naming both sizes", err)
	}
	resp, err := r.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"x", "y"}})
	if err != nil || len(resp.Data) != 2 {
		t.Fatalf("embedding-2: got %+v %v, want 2 vectors", resp, err)
	}
	for i := range resp.Data {
		d := &resp.Data[i]
		if d.Raw == nil || d.Dims() != 1024 {
			t.Fatalf("vector %d: got raw %t, %d dims; want the upstream's bytes, 1024 dims", i, d.Raw != nil, d.Dims())
		}
	}
}
