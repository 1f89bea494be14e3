package metered

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// meter records every reservation and how often each was settled.
type meter struct {
	mu       sync.Mutex
	reserved []platform.ReserveRequest
	settled  []platform.Settlement // one per Settle call, in order
	refuse   error
	settleOK bool // true: Settle saw a live (not cancelled) context
}

type reservation struct {
	m *meter
}

func (m *meter) Reserve(_ context.Context, req platform.ReserveRequest) (platform.Reservation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.refuse != nil {
		return nil, m.refuse
	}
	m.reserved = append(m.reserved, req)
	return reservation{m}, nil
}

func (r reservation) Settle(ctx context.Context, s platform.Settlement) (platform.Charge, error) {
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	r.m.settled = append(r.m.settled, s)
	r.m.settleOK = ctx.Err() == nil
	return platform.Charge{Amount: 42}, nil
}

// limiter counts permits and releases.
type limiter struct {
	acquired, released int
	refuse             error
	stages             []platform.LimitStage
}

func (l *limiter) Acquire(_ context.Context, req platform.LimitRequest) (platform.Permit, error) {
	l.stages = append(l.stages, req.Stage)
	if l.refuse != nil {
		return nil, l.refuse
	}
	l.acquired++
	return permit{l}, nil
}

type permit struct{ l *limiter }

func (p permit) Release(platform.Usage) { p.l.released++ }

type rows struct{ rows []platform.RequestLog }

func (r *rows) Record(row platform.RequestLog) { r.rows = append(r.rows, row) }

type counts struct {
	tokens    int
	upstreamE []string
}

func (c *counts) Tokens(_ string, u platform.Usage) { c.tokens += u.PromptTokens + u.CompletionTokens }
func (c *counts) UpstreamError(code string)         { c.upstreamE = append(c.upstreamE, code) }

// backend is a scripted model: a chat reply or error, a stream of chunks
// ending in end (io.EOF or an error), embeddings and images.
type backend struct {
	reply   *zhipuai.ChatCompletion
	err     error
	block   bool // Chat waits for ctx to end
	chunks  []platform.Chunk
	end     error
	streams []*stream
}

func (b *backend) Name() string { return "scripted" }

func (b *backend) Chat(ctx context.Context, _ platform.ChatRequest) (*zhipuai.ChatCompletion, []byte, error) {
	if b.block {
		<-ctx.Done()
		return nil, nil, platform.Wrap(platform.CodeNetwork, "request cancelled", ctx.Err())
	}
	return b.reply, nil, b.err
}

func (b *backend) ChatStream(ctx context.Context, _ platform.ChatRequest) (platform.Stream, error) {
	if b.err != nil {
		return nil, b.err
	}
	s := &stream{ctx: ctx, chunks: b.chunks, end: b.end}
	b.streams = append(b.streams, s)
	return s, nil
}

func (b *backend) Embeddings(_ context.Context, req *zhipuai.EmbeddingRequest) (*zhipuai.EmbeddingResponse, error) {
	return &zhipuai.EmbeddingResponse{Model: req.Model, Data: []zhipuai.Embedding{{Embedding: zhipuai.Vector{1}}},
		Usage: zhipuai.Usage{PromptTokens: 7, CompletionTokens: 3}}, nil
}

func (b *backend) Images(_ context.Context, req *zhipuai.ImageRequest) (*zhipuai.ImagesResponse, error) {
	return &zhipuai.ImagesResponse{Data: []zhipuai.Image{{URL: "u1"}, {URL: "u2"}}}, nil
}

func (b *backend) Model(name string) (platform.ModelInfo, bool) {
	return platform.LookupZhipuModel(name)
}
func (b *backend) Models() []platform.ModelInfo { return platform.ZhipuModels() }

type stream struct {
	ctx    context.Context
	chunks []platform.Chunk
	end    error
	closed int
}

func (s *stream) Next() (platform.Chunk, error) {
	if len(s.chunks) == 0 {
		if s.end == nil {
			<-s.ctx.Done()
			return platform.Chunk{}, platform.Wrap(platform.CodeNetwork, "request cancelled", s.ctx.Err())
		}
		return platform.Chunk{}, s.end
	}
	ch := s.chunks[0]
	s.chunks = s.chunks[1:]
	return ch, nil
}

func (s *stream) Close() error { s.closed++; return nil }

// presence is a caller that leaves when told.
type presence struct{ left bool }

func (p *presence) Left() bool { return p.left }

type fixture struct {
	be      *backend
	meter   *meter
	limiter *limiter
	log     *rows
	metrics *counts
	svc     *Service
}

func newFixture(be *backend) *fixture {
	f := &fixture{be: be, meter: &meter{}, limiter: &limiter{}, log: &rows{}, metrics: &counts{}}
	f.svc = New(Options{Backend: be, Catalogue: be, Meter: f.meter, Limiter: f.limiter, Log: f.log, Metrics: f.metrics,
		Trace: func(ctx context.Context) (context.Context, func() string) {
			return ctx, func() string { return "traced" }
		}})
	return f
}

func (f *fixture) begin(c *Call) {
	f.svc.Begin(c, "req-1", platform.EndpointChat, time.Now())
	c.SetCaller(platform.Principal{AccountID: "acct", KeyID: "key"})
}

// exactlyOnce checks the call's bookkeeping after End: one settlement with
// want's outcome (when a reservation was made), every permit released,
// one row.
func (f *fixture) exactlyOnce(t *testing.T, want platform.Outcome) platform.Settlement {
	t.Helper()
	if got := len(f.meter.settled); got != len(f.meter.reserved) || got > 1 {
		t.Fatalf("settled %d times for %d reservations, want once each", got, len(f.meter.reserved))
	}
	if f.limiter.acquired != f.limiter.released {
		t.Fatalf("permits: %d acquired, %d released", f.limiter.acquired, f.limiter.released)
	}
	if len(f.log.rows) != 1 {
		t.Fatalf("%d rows, want 1", len(f.log.rows))
	}
	if len(f.meter.settled) == 0 {
		return platform.Settlement{}
	}
	s := f.meter.settled[0]
	if s.Outcome != want {
		t.Fatalf("outcome %q, want %q", s.Outcome, want)
	}
	if !f.meter.settleOK {
		t.Fatal("Settle ran on a cancelled context")
	}
	return s
}

func chatReq(maxTokens *int) platform.ChatRequest {
	return platform.ChatRequest{Req: &zhipuai.ChatCompletionRequest{Model: "glm-4", MaxTokens: maxTokens,
		Messages: []zhipuai.Message{{Role: "user", Content: zhipuai.Content{Text: "hi"}}}}}
}

func TestChatOK(t *testing.T) {
	f := newFixture(&backend{reply: &zhipuai.ChatCompletion{Usage: zhipuai.Usage{PromptTokens: 4, CompletionTokens: 6}}})
	var c Call
	f.begin(&c)
	if _, _, err := c.Chat(context.Background(), chatReq(nil), 9); err != nil {
		t.Fatal(err)
	}
	row := c.End(context.Background())
	s := f.exactlyOnce(t, platform.OutcomeOK)
	if s.Usage.TotalTokens != 10 || s.Estimated {
		t.Fatalf("settled %+v, want 10 reported tokens", s)
	}
	r := f.meter.reserved[0]
	if r.MaxTokens != 8192 || r.PromptTokens != 9 || r.AccountID != "acct" || r.KeyID != "key" || r.RequestLogID != "req-1" {
		t.Fatalf("reserved %+v, want glm-4's MaxOutput 8192 for the prompt of 9", r)
	}
	if row.Usage.TotalTokens != 10 || row.Charge.Amount != 42 || row.Backend != "traced" || row.ID != "req-1" {
		t.Fatalf("row %+v", row)
	}
	if f.metrics.tokens != 10 {
		t.Fatalf("metrics counted %d tokens, want 10", f.metrics.tokens)
	}
}

func TestReservationRule(t *testing.T) {
	f := newFixture(&backend{reply: &zhipuai.ChatCompletion{}})
	var c Call
	f.begin(&c)
	if _, _, err := c.Chat(context.Background(), chatReq(zhipuai.Ptr(33)), 1); err != nil {
		t.Fatal(err)
	}
	c.End(context.Background())
	if got := f.meter.reserved[0].MaxTokens; got != 33 {
		t.Fatalf("reserved %d output tokens, want max_tokens 33", got)
	}
	for _, tc := range []struct {
		info platform.ModelInfo
		max  *int
		want int
	}{
		{platform.ModelInfo{MaxOutput: 100}, nil, 100},
		{platform.ModelInfo{MaxOutput: 100}, zhipuai.Ptr(5), 5},
		{platform.ModelInfo{}, nil, platform.DefaultMaxTokens},
	} {
		if got := tc.info.ReserveOutput(tc.max); got != tc.want {
			t.Errorf("ReserveOutput(%+v, %v) = %d, want %d", tc.info, tc.max, got, tc.want)
		}
	}
}

func TestRefusals(t *testing.T) {
	refusal := platform.Errorf(platform.CodeRateLimit, "slow down")
	t.Run("limits", func(t *testing.T) {
		f := newFixture(&backend{reply: &zhipuai.ChatCompletion{}})
		f.limiter.refuse = refusal
		var c Call
		f.begin(&c)
		if _, _, err := c.Chat(context.Background(), chatReq(nil), 1); !errors.Is(err, refusal) {
			t.Fatalf("got %v, want the limiter's refusal", err)
		}
		c.End(context.Background())
		f.exactlyOnce(t, "")
		if len(f.meter.reserved) != 0 {
			t.Fatal("reserved after the limiter refused")
		}
	})
	t.Run("payment", func(t *testing.T) {
		f := newFixture(&backend{reply: &zhipuai.ChatCompletion{}})
		f.meter.refuse = platform.Errorf(platform.CodeArrears, "pay up")
		var c Call
		f.begin(&c)
		if _, _, err := c.Chat(context.Background(), chatReq(nil), 1); platform.AsError(err).Code != platform.CodeArrears {
			t.Fatalf("got %v, want 1113", err)
		}
		c.End(context.Background())
		f.exactlyOnce(t, "")
		if f.limiter.acquired != 1 {
			t.Fatalf("%d permits, want 1 (released at End)", f.limiter.acquired)
		}
	})
	t.Run("unknown model", func(t *testing.T) {
		f := newFixture(&backend{})
		var c Call
		f.begin(&c)
		req := chatReq(nil)
		req.Req.Model = "nope"
		if _, _, err := c.Chat(context.Background(), req, 1); platform.AsError(err).Code != platform.CodeUnknownModel {
			t.Fatalf("got %v, want 1211", err)
		}
		c.End(context.Background())
		f.exactlyOnce(t, "")
	})
	t.Run("no request", func(t *testing.T) {
		f := newFixture(&backend{})
		var c Call
		f.begin(&c)
		if _, err := c.ChatStream(context.Background(), platform.ChatRequest{}, 1); platform.AsError(err).Code != platform.CodeMissingField {
			t.Fatalf("got %v, want 1213", err)
		}
		c.End(context.Background())
		f.exactlyOnce(t, "")
	})
}

func TestBackendFailureAndCallerLeft(t *testing.T) {
	t.Run("failure", func(t *testing.T) {
		f := newFixture(&backend{err: platform.Errorf(platform.CodeNetwork, "down")})
		var c Call
		f.begin(&c)
		if _, _, err := c.Chat(context.Background(), chatReq(nil), 5); err == nil {
			t.Fatal("no error")
		}
		if c.CallerLeft() {
			t.Fatal("CallerLeft after a backend failure")
		}
		c.End(context.Background())
		s := f.exactlyOnce(t, platform.OutcomeUpstreamError)
		if s.Usage != (platform.Usage{}) || len(f.metrics.upstreamE) != 1 || f.metrics.upstreamE[0] != platform.CodeNetwork {
			t.Fatalf("settled %+v, metrics %v", s, f.metrics.upstreamE)
		}
	})
	t.Run("caller left", func(t *testing.T) {
		f := newFixture(&backend{block: true})
		var c Call
		f.begin(&c)
		p := &presence{}
		c.Presence = p
		ctx, cancel := context.WithCancel(context.Background())
		go func() { p.left = true; cancel() }()
		if _, _, err := c.Chat(ctx, chatReq(nil), 5); err == nil || !c.CallerLeft() {
			t.Fatalf("err %v, CallerLeft %v; want an error and the caller gone", err, c.CallerLeft())
		}
		c.End(ctx)
		s := f.exactlyOnce(t, platform.OutcomeClientGone)
		if s.Usage.PromptTokens != 5 || s.Usage.TotalTokens != 5 || !s.Estimated || len(f.metrics.upstreamE) != 0 {
			t.Fatalf("settled %+v, upstream errors %v; want the prompt estimate and no backend failure", s, f.metrics.upstreamE)
		}
	})
}

func TestStreamOutcomes(t *testing.T) {
	usage := &zhipuai.Usage{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7}
	text := platform.Chunk{Data: []byte(`{}`), Tokens: 2}
	final := platform.Chunk{Data: []byte(`{}`), Usage: usage}
	cut := platform.Errorf(platform.CodeNetwork, "cut")
	cases := []struct {
		name    string
		chunks  []platform.Chunk
		end     error
		read    int  // chunks the caller reads before it stops (-1: to the end)
		abandon bool // the caller's client went away while writing
		left    bool // the caller left (the backend then fails)
		close   bool // the caller closes the stream (else End does)
		want    platform.Outcome
		tokens  int // settled total tokens
		est     bool
		upErrs  int
	}{
		{"whole", []platform.Chunk{text, final}, io.EOF, -1, false, false, true, platform.OutcomeOK, 7, false, 0},
		{"empty", nil, io.EOF, -1, false, false, true, platform.OutcomeUpstreamError, 0, false, 0},
		{"cut after output", []platform.Chunk{text, text}, cut, -1, false, false, true, platform.OutcomeCut, 10 + 4, true, 1},
		{"cut before output", nil, cut, -1, false, false, true, platform.OutcomeUpstreamError, 0, false, 1},
		{"client gone on write", []platform.Chunk{text, text, final}, io.EOF, 1, true, false, true, platform.OutcomeClientGone, 10 + 2, true, 0},
		{"caller left mid-stream", []platform.Chunk{text}, nil, -1, false, true, true, platform.OutcomeClientGone, 10 + 2, true, 0},
		{"never closed", []platform.Chunk{text, final}, io.EOF, 1, false, false, false, platform.OutcomeClientGone, 10 + 2, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := &backend{chunks: tc.chunks, end: tc.end}
			f := newFixture(be)
			var c Call
			f.begin(&c)
			p := &presence{}
			c.Presence = p
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st, err := c.ChatStream(ctx, chatReq(nil), 10)
			if err != nil {
				t.Fatal(err)
			}
			if tc.left {
				// The caller hangs up while the backend still streams.
				p.left = true
				go cancel()
			}
			for n := 0; tc.read < 0 || n < tc.read; n++ {
				if _, err := st.Next(); err != nil {
					break
				}
			}
			if tc.abandon {
				st.Abandon()
			}
			if tc.close {
				st.Close()
				st.Close() // a second Close does nothing
			}
			c.End(ctx)
			s := f.exactlyOnce(t, tc.want)
			if s.Usage.TotalTokens != tc.tokens || s.Estimated != tc.est || len(f.metrics.upstreamE) != tc.upErrs {
				t.Fatalf("settled %+v, %d backend errors; want %d tokens (estimated %v), %d backend errors",
					s, len(f.metrics.upstreamE), tc.tokens, tc.est, tc.upErrs)
			}
			if got := be.streams[0].closed; got != 1 {
				t.Fatalf("backend stream closed %d times, want 1", got)
			}
			if c.CallerLeft() != (tc.want == platform.OutcomeClientGone) {
				t.Fatalf("CallerLeft %v for outcome %s", c.CallerLeft(), tc.want)
			}
		})
	}
}

func TestEndIsOnceAndSurvivesCancellation(t *testing.T) {
	f := newFixture(&backend{reply: &zhipuai.ChatCompletion{Usage: zhipuai.Usage{PromptTokens: 1}}})
	var c Call
	f.begin(&c)
	ctx, cancel := context.WithCancel(context.Background())
	if _, _, err := c.Chat(ctx, chatReq(nil), 1); err != nil {
		t.Fatal(err)
	}
	cancel() // the process shuts down before the call ends
	c.End(ctx)
	c.End(ctx)
	f.exactlyOnce(t, platform.OutcomeOK)
}

func TestAdmittedCallAndSubmission(t *testing.T) {
	// A submission applies its stage of the limits and holds nothing:
	// nothing reserved, one row.
	f := newFixture(&backend{})
	var c Call
	f.begin(&c)
	if err := c.Admit(context.Background(), "glm-4", 3); err != nil {
		t.Fatal(err)
	}
	c.End(context.Background())
	f.exactlyOnce(t, "")
	if f.limiter.acquired != 1 || f.limiter.released != 1 || len(f.meter.reserved) != 0 {
		t.Fatalf("permits %d acquired %d released, reservations %d; want 1, 1 (at once) and 0",
			f.limiter.acquired, f.limiter.released, len(f.meter.reserved))
	}
	if got := f.limiter.stages; len(got) != 1 || got[0] != platform.LimitSubmit {
		t.Fatalf("stages %v, want [LimitSubmit]", got)
	}
	// Its run takes the run stage's permit, held until End.
	f = newFixture(&backend{reply: &zhipuai.ChatCompletion{}})
	f.begin(&c)
	c.Admitted = true
	if _, _, err := c.Chat(context.Background(), chatReq(nil), 1); err != nil {
		t.Fatal(err)
	}
	if f.limiter.released != 0 {
		t.Fatalf("permit released before End")
	}
	c.End(context.Background())
	if got := f.limiter.stages; len(got) != 1 || got[0] != platform.LimitRun || f.limiter.released != 1 {
		t.Fatalf("stages %v, released %d; want [LimitRun] released once", got, f.limiter.released)
	}
	// A sync call takes both stages at once.
	f = newFixture(&backend{reply: &zhipuai.ChatCompletion{}})
	f.begin(&c)
	if _, _, err := c.Chat(context.Background(), chatReq(nil), 1); err != nil {
		t.Fatal(err)
	}
	c.End(context.Background())
	if got := f.limiter.stages; len(got) != 1 || got[0] != platform.LimitNow {
		t.Fatalf("stages %v, want [LimitNow]", got)
	}
}

func TestEmbeddingsAndImages(t *testing.T) {
	f := newFixture(&backend{})
	var c Call
	f.begin(&c)
	resp, err := c.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "embedding-3", Input: zhipuai.EmbeddingInput{"x"}}, 7)
	if err != nil {
		t.Fatal(err)
	}
	c.End(context.Background())
	s := f.exactlyOnce(t, platform.OutcomeOK)
	if resp.Usage.CompletionTokens != 0 || resp.Usage.TotalTokens != 7 || s.Usage.TotalTokens != 7 || f.meter.reserved[0].MaxTokens != 0 {
		t.Fatalf("usage %+v, settled %+v, reserved %+v; want input only", resp.Usage, s, f.meter.reserved[0])
	}
	f = newFixture(&backend{})
	f.begin(&c)
	if _, err := c.Images(context.Background(), &zhipuai.ImageRequest{Model: "cogview-3", Prompt: "cat", N: zhipuai.Ptr(3)}); err != nil {
		t.Fatal(err)
	}
	c.End(context.Background())
	s = f.exactlyOnce(t, platform.OutcomeOK)
	if f.meter.reserved[0].Images != 3 || s.Usage.Images != 2 {
		t.Fatalf("reserved %d images, settled %d; want 3 asked and 2 returned", f.meter.reserved[0].Images, s.Usage.Images)
	}
}

// Abandon stops the backend at once (a client that left must not keep a
// generation running until the stream's Close), and Close then does not
// close it again.
func TestAbandonClosesTheBackendAtOnce(t *testing.T) {
	text := platform.Chunk{Data: []byte(`{}`), Tokens: 2}
	be := &backend{chunks: []platform.Chunk{text, text, text}, end: io.EOF}
	f := newFixture(be)
	var c Call
	f.begin(&c)
	st, err := c.ChatStream(context.Background(), chatReq(nil), 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	st.Abandon()
	if got := be.streams[0].closed; got != 1 {
		t.Fatalf("after Abandon the backend stream was closed %d times, want 1", got)
	}
	st.Close()
	c.End(context.Background())
	if got := be.streams[0].closed; got != 1 {
		t.Fatalf("after Close the backend stream was closed %d times, want 1", got)
	}
	f.exactlyOnce(t, platform.OutcomeClientGone)
}
