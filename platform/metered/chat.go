package metered

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Chat runs a non-streaming chat completion. prompt is the caller's
// prompt estimate (platform.EstimateChatPromptTokens; callers have it from
// their context-window check). It returns the reply and, where the backend
// passed it through, its bytes; an error is either a refusal (limits,
// payment) or the backend's failure, and CallerLeft tells a caller that
// went away from both.
func (c *Call) Chat(ctx context.Context, req platform.ChatRequest, prompt int) (*zhipuai.ChatCompletion, []byte, error) {
	req, err := c.admitChat(ctx, req, prompt)
	if err != nil {
		return nil, nil, err
	}
	model := req.Req.Model
	resp, body, err := c.s.chat.Chat(c.backendCtx(ctx), req)
	if err != nil {
		c.chatFailed(model, prompt, err)
		return nil, nil, err
	}
	u := usageOf(resp.Usage)
	if len(resp.WebSearch) > 0 {
		u.ToolCalls = 1 // one search per reply that carries its results (docs/v4.md §7)
	}
	c.reported(model, u, platform.OutcomeOK)
	return resp, body, nil
}

// admitChat reserves for a chat by the one rule every caller shares:
// the prompt estimate plus max_tokens, else the model's MaxOutput
// (platform.ModelInfo.ReserveOutput), admitted with less output when the
// balance pays for at least ModelInfo.AdmitOutput (docs/design.md §7). It
// returns the request to send upstream: the caller's, or a copy whose
// max_tokens is the output the balance pays for.
func (c *Call) admitChat(ctx context.Context, req platform.ChatRequest, prompt int) (platform.ChatRequest, error) {
	if req.Req == nil {
		return req, platform.Errorf(platform.CodeMissingField, "missing request")
	}
	info, err := c.model(req.Req.Model)
	if err != nil {
		return req, err
	}
	if c.s.chat == nil || !info.Chat() {
		return req, platform.Errorf(platform.CodeUnsupportedMode, "model %s does not answer chat completions", req.Req.Model)
	}
	c.calls = webSearches(req.Req)
	if err := c.admit(ctx, req.Req.Model, prompt, info.ReserveOutput(req.Req.MaxTokens), info.AdmitOutput(req.Req.MaxTokens), 0); err != nil {
		return req, err
	}
	return boundOutput(req, c.res), nil
}

// boundOutput returns req with max_tokens lowered to what the reservation
// pays for, when it pays for less than the request asked (docs/design.md
// §7). The caller's request is not changed (an async task keeps its stored
// body); the raw body is dropped so a pass-through backend encodes the
// bounded request instead of forwarding the original bytes.
func boundOutput(req platform.ChatRequest, res platform.Reservation) platform.ChatRequest {
	b, ok := res.(platform.OutputBound)
	if !ok {
		return req
	}
	n, bounded := b.OutputTokens()
	if !bounded {
		return req
	}
	// A copy of its own: taking n's address would move n to the heap on
	// every metered chat, bounded or not.
	m := n
	r := *req.Req
	r.MaxTokens = &m
	req.Req, req.Raw = &r, nil
	return req
}

// ChatStream starts a streaming chat completion (see Chat for prompt and
// errors). The caller relays the returned stream and closes it; the
// usage it reported, or when none came an estimate (the prompt plus the
// tokens of the text relayed), is what the call settles.
func (c *Call) ChatStream(ctx context.Context, req platform.ChatRequest, prompt int) (*Stream, error) {
	req, err := c.admitChat(ctx, req, prompt)
	if err != nil {
		return nil, err
	}
	model := req.Req.Model
	// The backend runs on the caller's context, not on one of its own:
	// Abandon closes the backend stream instead of cancelling a context.
	// A cancel context per stream is memory every held stream keeps (its
	// done channel and its entry in the parent's children: docs/design.md
	// §6), and the backend stream has its own already.
	st, err := c.s.chat.ChatStream(c.backendCtx(ctx), req)
	if err != nil {
		c.chatFailed(model, prompt, err)
		return nil, err
	}
	c.stream = Stream{c: c, st: st, ctx: ctx, model: model, prompt: prompt, open: true}
	return &c.stream, nil
}

// Stream is a metered chat stream. It keeps the usage and the token
// estimate of what passed through, and decides how the call ended; the
// bytes are the backend's, untouched.
type Stream struct {
	c      *Call
	st     platform.Stream
	ctx    context.Context // the caller's
	model  string
	prompt int
	ended  bool // st is closed (Abandon or Close)

	chunks   int
	relayed  int // estimated completion tokens of the text relayed
	usage    zhipuai.Usage
	hasUsage bool
	searched bool             // a chunk carried web_search results
	outcome  platform.Outcome // "" while the stream runs
	open     bool
}

// Next returns the backend's next chunk (see platform.Stream). After an
// error the stream has ended; CallerLeft on the call tells a caller that
// went away from a backend failure.
func (s *Stream) Next() (platform.Chunk, error) {
	ch, err := s.st.Next()
	if err == nil {
		s.chunks++
		if ch.Usage != nil {
			s.usage, s.hasUsage = *ch.Usage, true
		}
		s.relayed += ch.Tokens
		if !s.searched && bytes.Contains(ch.Data, webSearchKey) {
			s.searched = true
		}
		return ch, nil
	}
	switch {
	case errors.Is(err, io.EOF):
		if s.chunks == 0 {
			// A stream that ends without a single chunk answered nothing:
			// a failure before the first byte.
			s.outcome = platform.OutcomeUpstreamError
		} else {
			s.outcome = platform.OutcomeOK
		}
	case s.c.left():
		s.outcome = platform.OutcomeClientGone
	case s.chunks == 0:
		s.c.backendFailed(err)
		s.outcome = platform.OutcomeUpstreamError
	default:
		if s.ctx.Err() == nil && !s.ended {
			// Cut by the backend, not by this side's cancellation.
			s.c.backendFailed(err)
		}
		s.outcome = platform.OutcomeCut
	}
	return ch, err
}

// Chunks reports how many chunks have been relayed.
func (s *Stream) Chunks() int { return s.chunks }

// Abandon says the caller stopped relaying because its own client went
// away (a failed write): the backend is cancelled now, not at its end.
func (s *Stream) Abandon() {
	s.outcome = platform.OutcomeClientGone
	s.closeBackend()
}

// closeBackend closes the backend stream once. Closing a stream that has
// not ended cancels it (platform.Stream); one that reached its end is
// drained so its connection is reused.
func (s *Stream) closeBackend() {
	if !s.ended {
		s.ended = true
		_ = s.st.Close()
	}
}

// Close releases the backend stream and settles what the stream used on
// the call. Closing twice does nothing. A stream closed before it ended
// without Abandon counts as abandoned too.
func (s *Stream) Close() {
	if !s.open {
		return
	}
	s.open = false
	s.closeBackend()
	outcome := s.outcome
	if outcome == "" {
		outcome = platform.OutcomeClientGone
	}
	switch {
	case s.hasUsage:
		u := usageOf(s.usage)
		if s.searched {
			u.ToolCalls = 1
		}
		s.c.reported(s.model, u, outcome)
	case outcome == platform.OutcomeUpstreamError:
		s.c.used(s.model, platform.Usage{}, outcome, false)
	default:
		s.c.used(s.model, platform.Usage{PromptTokens: s.prompt, CompletionTokens: s.relayed,
			TotalTokens: s.prompt + s.relayed}, outcome, true)
	}
}

// webSearches is the billed searches a request may make: one when it
// names the web_search tool without turning it off (docs/v4.md §7).
func webSearches(r *zhipuai.ChatCompletionRequest) int {
	for _, t := range r.Tools {
		if t.Type == zhipuai.ToolTypeWebSearch && (t.WebSearch == nil || t.WebSearch.Enable == nil || *t.WebSearch.Enable) {
			return 1
		}
	}
	return 0
}

// webSearchKey starts a chunk's web_search results. Text inside a string
// is JSON-escaped (its quotes are \"), so only the key itself matches.
var webSearchKey = []byte(`"web_search":[{`)

// usageOf converts a wire usage.
func usageOf(u zhipuai.Usage) platform.Usage {
	total := u.TotalTokens
	if total == 0 {
		total = u.PromptTokens + u.CompletionTokens
	}
	// The details are parts of the counts (docs/v4.md §11); an upstream that
	// reports more than the whole is clamped so no tier is counted twice.
	return platform.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: total,
		CachedTokens:    min(max(u.CachedTokens(), 0), max(u.PromptTokens, 0)),
		ReasoningTokens: min(max(u.ReasoningTokens(), 0), max(u.CompletionTokens, 0))}
}
