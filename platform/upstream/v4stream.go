package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// v4Stream reads a V4 stream from the cloud and hands chunks on as they came
// (Data = the upstream's bytes) whenever they already have the shape every
// client needs (docs/v4.md §8.5–8.7). It rewrites only:
//   - a chunk that carries finish_reason without usage (real 2025 traffic
//     sends the tool-call chunk with finish_reason:"tool_calls" and usage in
//     a later chunk, docs/v4.md §4): its finish_reason is held back and put on the
//     chunk that brings usage, because LangChain stops at the first
//     finish_reason and reads usage from it;
//   - a usage chunk without choices (it gets the held finish_reason);
//   - a chunk whose model is the engine name behind an alias;
//   - a delta without role.
//
// If [DONE] arrives and no chunk carried usage, a final chunk with an
// estimated usage is made up so the stream still ends V4-shaped.
type v4Stream struct {
	ctx     context.Context
	cancel  context.CancelFunc
	backend string
	body    io.ReadCloser
	r       *sse.Reader
	// prompt is the prompt's estimate for a made-up final chunk, and
	// reqModel its model when the client's is not set; req is kept only
	// when the caller gave no estimate (platform.ChatRequest.PromptTokens):
	// a held stream does not keep the decoded request (docs/design.md §6).
	prompt   int
	reqModel string
	req      *zhipuai.ChatCompletionRequest
	model    string // client-facing model ("" = keep the upstream's)
	// modelJSON is model as a JSON string, made on the first splice.
	modelJSON []byte

	id         string
	created    int64
	heldFinish string
	finalSent  bool
	done       bool
	err        error
	completion int    // estimated completion tokens so far
	buf        []byte // Data of spliced chunks, reused (valid until the next Next)
	ahead      readAhead
}

// readAhead keeps a stream's More promise (platform.Chunk.More): a chunk
// said More because the next event was buffered; if that event is then
// dropped and the buffer is empty, the relay must flush before the stream
// waits for the upstream.
type readAhead struct{ owed bool }

// more is the More of a chunk about to be returned.
func (a *readAhead) more(r *sse.Reader) bool {
	a.owed = r.Ready()
	return a.owed
}

// due reports, before a read, whether a flush-only chunk must go first.
func (a *readAhead) due(r *sse.Reader) bool {
	if a.owed && !r.Ready() {
		a.owed = false
		return true
	}
	return false
}

func newV4Stream(ctx context.Context, cancel context.CancelFunc, backend string, resp *http.Response, req platform.ChatRequest) *v4Stream {
	s := &v4Stream{
		ctx: ctx, cancel: cancel, backend: backend,
		body: resp.Body, r: sse.NewReader(resp.Body),
		prompt: req.PromptTokens, model: req.ClientModel,
	}
	if req.Req != nil {
		s.reqModel = req.Req.Model
	}
	if s.prompt <= 0 {
		s.req = req.Req
	}
	return s
}

// Next implements platform.Stream.
func (s *v4Stream) Next() (platform.Chunk, error) {
	for {
		if s.err != nil {
			return platform.Chunk{}, s.err
		}
		if s.done {
			return platform.Chunk{}, io.EOF
		}
		if s.ahead.due(s.r) {
			return platform.Chunk{}, nil
		}
		ev, err := s.r.Next()
		if err != nil {
			s.err = s.readError(err)
			return platform.Chunk{}, s.err
		}
		if ev.IsDone() {
			s.done = true
			if !s.finalSent {
				return s.synthFinal()
			}
			return platform.Chunk{}, io.EOF
		}
		// Chunks of the usual shapes — nearly all of a stream, the first
		// and the last included — pass without a decode. Not decoding
		// them also keeps the stream shallow: a full decode took the
		// handler goroutine's stack past 8 KB, and a stack that grew
		// stays grown while the stream is held (docs/design.md §6).
		if ch, ok := s.scanned(ev.Data); ok {
			return ch, nil
		}
		if ch, keep := s.decoded(ev.Data); keep || s.err != nil {
			return ch, s.err
		}
	}
}

// scanned returns a chunk read by scanContentChunk, when the full path
// (decoded) would return the same: a text chunk as it came or with a
// missing role or another model name spliced into the bytes, a final
// chunk as it came. ok=false leaves the chunk to decoded.
func (s *v4Stream) scanned(data []byte) (platform.Chunk, bool) {
	cc, ok := scanContentChunk(data)
	if !ok || (s.id == "" && !s.head(&cc)) {
		return platform.Chunk{}, false
	}
	if cc.hasUsage {
		return s.passFinal(data, &cc)
	}
	out, ok := s.splice(data, &cc)
	if !ok {
		return platform.Chunk{}, false
	}
	s.completion += cc.tokens
	return platform.Chunk{Data: out, Tokens: cc.tokens, More: s.ahead.more(s.r)}, true
}

// decoded is the full path: the chunk decoded and put in shape (keep=false
// for one that carries nothing; s.err set when it failed or was an
// in-band error).
func (s *v4Stream) decoded(data []byte) (platform.Chunk, bool) {
	c := new(zhipuai.ChatCompletionChunk)
	if err := json.Unmarshal(data, c); err != nil {
		s.err = platform.Wrap(platform.CodeInternal, "upstream sent an invalid chunk",
			fmt.Errorf("backend %s: %w", s.backend, err))
		return platform.Chunk{}, false
	}
	if c.Error != nil {
		// In-band failure (docs/v4.md §4): the stream ends with this error.
		s.err = mapZhipuError(s.backend, http.StatusOK, string(c.Error.Code), c.Error.Message)
		return platform.Chunk{}, false
	}
	if s.id == "" {
		s.id, s.created = c.ID, c.Created
	}
	out, keep, tokens, err := s.shape(data, c)
	if err != nil {
		s.err = err
		return platform.Chunk{}, false
	}
	if !keep {
		return platform.Chunk{}, false
	}
	return platform.Chunk{Data: out, Usage: c.Usage, Tokens: tokens, More: s.ahead.more(s.r)}, true
}

// passFinal returns a scanned chunk with usage as it came, when shape
// would not change it: every choice has a delta with a role, the model is
// the client's, and the first usage of the stream comes with the first
// choice's finish_reason (shape gives it the held one otherwise). The
// usage is the scanned one, which is what the decode reads.
func (s *v4Stream) passFinal(data []byte, cc *contentChunk) (platform.Chunk, bool) {
	if cc.choices == 0 || cc.noDelta || cc.noRoles > 0 ||
		(s.model != "" && string(cc.model) != s.model) ||
		(!s.finalSent && len(cc.finish) == 0) {
		return platform.Chunk{}, false
	}
	s.finalSent = true
	s.completion += cc.tokens
	u := cc.usage
	return platform.Chunk{Data: data, Usage: &u, Tokens: cc.tokens, More: s.ahead.more(s.r)}, true
}

// head takes id and created from a scanned chunk while the stream has no
// id yet (the first chunk, as a rule), as the full decode would read
// them; false leaves the chunk to the full decode (an escaped or
// non-string id, a created that is not an int64).
func (s *v4Stream) head(cc *contentChunk) bool {
	if cc.oddHead || !utf8.Valid(cc.id) {
		return false // the decode unescapes, or replaces bytes that are not UTF-8
	}
	var created int64
	if cc.created != nil && string(cc.created) != "null" {
		n, err := strconv.ParseInt(string(cc.created), 10, 64)
		if err != nil {
			return false
		}
		created = n
	}
	s.id, s.created = string(cc.id), created
	return true
}

// splice returns a scanned text chunk in the V4 shape without decoding
// it: as it came when it needs none of the rewrites of shape, else with a
// role put into each delta that lacks one and the client's model name put
// in place of the upstream's. ok=false leaves the chunk to shape: no
// choices, a choice without a delta, or a rewrite of a chunk with no text
// (shape drops or keeps those by rules the bytes do not show), and the
// chunks that end a stream (usage, finish_reason: passFinal, shape).
func (s *v4Stream) splice(data []byte, cc *contentChunk) ([]byte, bool) {
	if cc.choices == 0 || cc.noDelta || cc.hasUsage || cc.finished {
		return nil, false
	}
	model := s.model != "" && string(cc.model) != s.model
	if !model && cc.noRoles == 0 {
		return data, true
	}
	if !cc.text {
		return nil, false
	}
	if model && s.modelJSON == nil {
		s.modelJSON, _ = json.Marshal(s.model)
	}
	const role = `"role":"assistant",`
	out := s.buf[:0]
	at := 0 // bytes of data copied so far
	r := 0  // next role splice
	put := func(to int) {
		for ; r < cc.noRoles && cc.roleAt[r] <= to; r++ {
			out = append(out, data[at:cc.roleAt[r]]...)
			out = append(out, role...)
			at = cc.roleAt[r]
		}
		out = append(out, data[at:to]...)
		at = to
	}
	switch {
	case model && cc.model == nil:
		put(cc.bodyAt)
		out = append(out, `"model":`...)
		out = append(out, s.modelJSON...)
		out = append(out, ',')
	case model:
		put(cc.modelAt)
		out = append(out, s.modelJSON...)
		at += len(cc.model) + 2
	}
	put(len(data))
	s.buf = out
	return out, true
}

// shape applies the rewrites listed on v4Stream. It returns keep=false for a
// chunk that carries nothing once its finish_reason is held back, and the
// estimated completion tokens of the chunk's text.
func (s *v4Stream) shape(raw []byte, c *zhipuai.ChatCompletionChunk) (data []byte, keep bool, tokens int, err error) {
	changed := false
	if s.model != "" && c.Model != s.model {
		c.Model = s.model
		changed = true
	}
	empty := true
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Delta.Role == "" {
			ch.Delta.Role = zhipuai.RoleAssistant
			changed = true
		}
		tokens += deltaTokens(&ch.Delta)
		if ch.Delta.Content != "" || ch.Delta.ReasoningContent != "" || len(ch.Delta.ToolCalls) > 0 {
			empty = false
		}
		if ch.FinishReason != "" && c.Usage == nil {
			s.heldFinish = ch.FinishReason
			ch.FinishReason = ""
			changed = true
		}
	}
	if c.Usage != nil && !s.finalSent {
		s.finalSent = true
		if len(c.Choices) == 0 {
			c.Choices = []zhipuai.ChunkChoice{{Delta: zhipuai.Delta{Role: zhipuai.RoleAssistant}}}
			changed = true
		}
		if c.Choices[0].FinishReason == "" {
			c.Choices[0].FinishReason = s.finishReason()
			changed = true
		}
		empty = false
	} else if len(c.Choices) == 0 {
		return nil, false, 0, nil // nothing a V4 client can use (docs/v4.md §10: no choices:[] chunks)
	}
	s.completion += tokens
	if changed && empty && c.Usage == nil && len(c.ContentFilter) == 0 && len(c.WebSearch) == 0 {
		return nil, false, 0, nil
	}
	if !changed {
		s.buf = append(s.buf[:0], raw...)
		return s.buf, true, tokens, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, false, 0, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	return b, true, tokens, nil
}

// deltaTokens estimates the completion tokens of one delta's text.
func deltaTokens(d *zhipuai.Delta) int {
	n := platform.EstimateTokens(d.Content) + platform.EstimateTokens(d.ReasoningContent)
	for _, tc := range d.ToolCalls {
		n += platform.EstimateTokens(tc.Function.Name) + platform.EstimateTokens(tc.Function.Arguments)
	}
	return n
}

func (s *v4Stream) finishReason() string {
	if s.heldFinish != "" {
		return s.heldFinish
	}
	return zhipuai.FinishStop
}

// synthFinal makes the final chunk of a stream that reached [DONE] without
// usage: the held finish_reason and a stated estimate (docs/peers.md §2.1).
func (s *v4Stream) synthFinal() (platform.Chunk, error) {
	s.finalSent = true
	p := s.prompt
	if s.req != nil {
		p = platform.EstimateChatPromptTokens(s.req)
	}
	c := &zhipuai.ChatCompletionChunk{
		ID: s.id, Created: s.created, Model: s.model,
		Choices: []zhipuai.ChunkChoice{{FinishReason: s.finishReason(), Delta: zhipuai.Delta{Role: zhipuai.RoleAssistant}}},
		Usage:   &zhipuai.Usage{PromptTokens: p, CompletionTokens: s.completion, TotalTokens: p + s.completion},
	}
	if c.Model == "" {
		c.Model = s.reqModel
	}
	if c.Created == 0 {
		c.Created = time.Now().Unix()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return platform.Chunk{}, platform.Wrap(platform.CodeInternal, "internal error", err)
	}
	return platform.Chunk{Data: b, Usage: c.Usage}, nil
}

// readError turns a read failure into the stream's error: a cut connection
// (EOF before [DONE]) is an error, never a clean end (platform.Stream).
func (s *v4Stream) readError(err error) error {
	if s.ctx.Err() != nil {
		if err := idleError(s.body, s.backend); err != nil {
			return err
		}
		return platform.Wrap(platform.CodeNetwork, "request cancelled", s.ctx.Err())
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return streamCut(s.backend, err)
}

// Close implements platform.Stream.
func (s *v4Stream) Close() error {
	err := closeStream(s.body, s.cancel, s.done && s.err == nil)
	s.r.Release()
	return err
}
