package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// oaChunk is one engine stream event. Error shapes seen in-band: OpenAI's
// {"error":{…}} and vLLM's flat {"object":"error","message":…,"code":400}.
type oaChunk struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []oaChunkChoice `json:"choices"`
	Usage   *oaUsage        `json:"usage"`
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
}

type oaChunkChoice struct {
	Index        int     `json:"index"`
	Delta        oaDelta `json:"delta"`
	FinishReason *string `json:"finish_reason"`
}

type oaDelta struct {
	Role             string       `json:"role"`
	Content          *string      `json:"content"`
	ReasoningContent *string      `json:"reasoning_content"`
	Reasoning        *string      `json:"reasoning"` // newer vLLM, Ollama
	ToolCalls        []oaToolCall `json:"tool_calls"`
}

// chunkTranslator turns engine chunks into V4 chunks (docs/peers.md §4.4,
// docs/v4.md §4, §10):
//   - every delta gets role "assistant"; empty deltas (vLLM's opening
//     role-only chunk) are dropped;
//   - tool calls that arrive in pieces (name first, arguments in fragments,
//     keyed by index) are assembled and emitted whole in one chunk, since
//     LangChain and Vercel need each call complete in one delta;
//   - finish_reason is held until usage is known, and the engine's
//     usage-only chunk (choices: []) is folded into ONE final V4 chunk that
//     carries finish_reason and usage — no choices:[] chunk reaches a V4
//     client;
//   - an engine that sent no usage gets a stated estimate at [DONE].
type chunkTranslator struct {
	model string // client-facing name
	// prompt is the caller's prompt estimate for an engine that sends no
	// usage; req is kept for it only when the caller gave none (see
	// v4Stream.prompt).
	prompt int
	req    *zhipuai.ChatCompletionRequest

	id      string
	created int64
	calls   []zhipuai.ToolCall
	args    [][]byte // arguments of calls, appended fragment by fragment
	finish  string
	usage   *zhipuai.Usage
	final   bool
	// completion estimates the completion tokens, for engines without usage;
	// reasoning the part of it that was reasoning (oaUsage.v4).
	completion, reasoning int
	// glm holds content that may be a tool call written as text
	// (glm4tools.go, glm45tools.go); nil when the backend or request does
	// not ask for that parsing.
	glm toolText
	// think moves a leading <think>…</think> of the content into the
	// reasoning (glm45think.go); nil when not asked for.
	think *thinkSplit

	out []*zhipuai.ChatCompletionChunk
}

func newChunkTranslator(req *zhipuai.ChatCompletionRequest, model string) *chunkTranslator {
	if model == "" {
		model = req.Model
	}
	return &chunkTranslator{model: model, req: req}
}

// push takes one engine chunk and returns the V4 chunks it yields (valid
// until the next call).
func (t *chunkTranslator) push(c *oaChunk) []*zhipuai.ChatCompletionChunk {
	t.out = t.out[:0]
	if t.id == "" {
		t.id, t.created = c.ID, c.Created
		if t.id == "" {
			t.id = platform.NewID(time.Now())
		}
		if t.created == 0 {
			t.created = time.Now().Unix()
		}
	}
	for i := range c.Choices {
		ch := &c.Choices[i]
		d := &ch.Delta
		var content string
		if d.Content != nil {
			content = *d.Content
		}
		reasoning := reasoningOf(d.ReasoningContent, d.Reasoning)
		if t.think != nil && ch.Index == 0 && content != "" {
			var r string
			r, content = t.think.feed(content)
			reasoning += r
		}
		if content != "" || reasoning != "" {
			r := platform.EstimateTokens(reasoning)
			t.completion += platform.EstimateTokens(content) + r
			t.reasoning += r
			if t.glm != nil && ch.Index == 0 && content != "" {
				content = t.glm.feed(content) // "" while it may be a call
			}
			if content != "" || reasoning != "" {
				t.out = append(t.out, t.chunk(ch.Index, zhipuai.Delta{Role: zhipuai.RoleAssistant, Content: content, ReasoningContent: reasoning}))
			}
		}
		for _, tc := range d.ToolCalls {
			t.addCall(tc)
		}
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			t.finish = v4Finish(*ch.FinishReason)
		}
	}
	if c.Usage != nil {
		u := c.Usage.v4(t.reasoning)
		t.usage = &u
	}
	if t.finish != "" && t.usage != nil && !t.final {
		t.emitFinal()
	}
	return t.out
}

// done is called at [DONE]: the final chunk if it was not sent yet.
func (t *chunkTranslator) done() []*zhipuai.ChatCompletionChunk {
	t.out = t.out[:0]
	if !t.final {
		if t.id == "" {
			t.id, t.created = platform.NewID(time.Now()), time.Now().Unix()
		}
		t.emitFinal()
	}
	return t.out
}

// addCall merges one tool-call fragment. Fragments are keyed by index
// (OpenAI/vLLM); engines that send whole calls without index are keyed by
// id.
func (t *chunkTranslator) addCall(tc oaToolCall) {
	k := -1
	switch {
	case tc.Index != nil:
		for i := range t.calls {
			if *t.calls[i].Index == *tc.Index {
				k = i
			}
		}
	case tc.ID == "" && len(t.calls) > 0:
		k = len(t.calls) - 1
	case tc.ID != "":
		for i := range t.calls {
			if t.calls[i].ID == tc.ID {
				k = i
			}
		}
	}
	if k < 0 {
		idx := len(t.calls)
		if tc.Index != nil {
			idx = *tc.Index
		}
		t.calls = append(t.calls, zhipuai.ToolCall{Type: zhipuai.ToolTypeFunction, Index: zhipuai.Ptr(idx)})
		t.args = append(t.args, nil)
		k = len(t.calls) - 1
	}
	c := &t.calls[k]
	if tc.ID != "" && c.ID == "" {
		c.ID = tc.ID
	}
	c.Function.Name += tc.Function.Name
	t.args[k] = append(t.args[k], tc.Function.Arguments...)
	t.completion += platform.EstimateTokens(tc.Function.Name) + platform.EstimateTokens(tc.Function.Arguments)
}

// emitFinal sends the assembled tool calls (in a chunk without
// finish_reason, docs/v4.md §4 "safer for all clients") and then the one final
// chunk with finish_reason and usage.
func (t *chunkTranslator) emitFinal() {
	t.final = true
	if t.think != nil {
		// What the splitter held: unclosed reasoning, or content that goes
		// on to the tool-call parser like any other.
		r, c := t.think.finish()
		rt := platform.EstimateTokens(r)
		t.completion += rt + platform.EstimateTokens(c)
		t.reasoning += rt
		if r != "" {
			t.out = append(t.out, t.chunk(0, zhipuai.Delta{Role: zhipuai.RoleAssistant, ReasoningContent: r}))
		}
		if c != "" && t.glm != nil {
			c = t.glm.feed(c)
		}
		if c != "" {
			t.out = append(t.out, t.chunk(0, zhipuai.Delta{Role: zhipuai.RoleAssistant, Content: c}))
		}
	}
	if t.glm != nil {
		// Held content is now either GLM-4 native calls (only when the
		// engine sent no calls of its own) or text to send before the end.
		text, calls := t.glm.finish(len(t.calls) == 0)
		if text != "" {
			t.out = append(t.out, t.chunk(0, zhipuai.Delta{Role: zhipuai.RoleAssistant, Content: text}))
		}
		for i, c := range calls {
			t.calls = append(t.calls, zhipuai.ToolCall{Type: zhipuai.ToolTypeFunction, Index: zhipuai.Ptr(i),
				Function: zhipuai.FunctionCall{Name: c.Name}})
			t.args = append(t.args, []byte(c.Arguments))
		}
	}
	if len(t.calls) > 0 {
		calls := make([]zhipuai.ToolCall, len(t.calls))
		for i, c := range t.calls {
			if c.ID == "" {
				c.ID = fmt.Sprintf("call_%s_%d", t.id, *c.Index)
			}
			c.Function.Arguments = string(t.args[i])
			if c.Function.Arguments == "" {
				c.Function.Arguments = "{}"
			}
			calls[i] = c
		}
		t.out = append(t.out, t.chunk(0, zhipuai.Delta{Role: zhipuai.RoleAssistant, ToolCalls: calls}))
		if t.finish == "" || t.finish == zhipuai.FinishStop {
			t.finish = zhipuai.FinishToolCalls
		}
	}
	if t.finish == "" {
		t.finish = zhipuai.FinishStop
	}
	u := t.usage
	if u == nil {
		p := t.prompt
		if t.req != nil {
			p = platform.EstimateChatPromptTokens(t.req)
		}
		u = &zhipuai.Usage{PromptTokens: p, CompletionTokens: t.completion, TotalTokens: p + t.completion}
		if t.reasoning > 0 {
			u.CompletionTokensDetails = &zhipuai.CompletionTokensDetails{ReasoningTokens: t.reasoning}
		}
	}
	c := t.chunk(0, zhipuai.Delta{Role: zhipuai.RoleAssistant})
	c.Choices[0].FinishReason = t.finish
	c.Usage = u
	t.out = append(t.out, c)
}

func (t *chunkTranslator) chunk(index int, d zhipuai.Delta) *zhipuai.ChatCompletionChunk {
	return &zhipuai.ChatCompletionChunk{
		ID: t.id, Created: t.created, Model: t.model,
		Choices: []zhipuai.ChunkChoice{{Index: index, Delta: d}},
	}
}

// oaStream reads an engine's SSE stream and yields V4 chunks.
type oaStream struct {
	ctx     context.Context
	cancel  context.CancelFunc
	backend string
	upModel string
	body    io.ReadCloser
	r       *sse.Reader
	tr      *chunkTranslator

	queue []*zhipuai.ChatCompletionChunk
	done  bool
	err   error
	ahead readAhead
}

// Next implements platform.Stream. Engine chunks are always decoded: they are
// translated, never passed through.
func (s *oaStream) Next() (platform.Chunk, error) {
	for {
		if len(s.queue) > 0 {
			c := s.queue[0]
			s.queue = s.queue[1:]
			b, err := json.Marshal(c)
			if err != nil {
				s.err = platform.Wrap(platform.CodeInternal, "internal error", err)
				return platform.Chunk{}, s.err
			}
			n := 0
			for i := range c.Choices {
				n += deltaTokens(&c.Choices[i].Delta)
			}
			more := s.ahead.more(s.r) || len(s.queue) > 0
			return platform.Chunk{Data: b, Usage: c.Usage, Tokens: n, More: more}, nil
		}
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
			if s.ctx.Err() != nil {
				s.err = idleError(s.body, s.backend)
				if s.err == nil {
					s.err = platform.Wrap(platform.CodeNetwork, "request cancelled", s.ctx.Err())
				}
			} else {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				s.err = streamCut(s.backend, err)
			}
			return platform.Chunk{}, s.err
		}
		if ev.IsDone() {
			s.done = true
			s.queue = append(s.queue[:0], s.tr.done()...)
			continue
		}
		var c oaChunk
		if err := json.Unmarshal(ev.Data, &c); err != nil {
			s.err = platform.Wrap(platform.CodeInternal, "upstream sent an invalid chunk",
				fmt.Errorf("backend %s: %w", s.backend, err))
			return platform.Chunk{}, s.err
		}
		if len(c.Error) > 0 && string(c.Error) != "null" || c.Object == "error" {
			s.err = engineError(s.backend, http.StatusOK, ev.Data, s.upModel, s.tr.model)
			return platform.Chunk{}, s.err
		}
		s.queue = append(s.queue[:0], s.tr.push(&c)...)
	}
}

// Close implements platform.Stream (see closeStream for why the order matters).
func (s *oaStream) Close() error {
	err := closeStream(s.body, s.cancel, s.done && s.err == nil)
	s.r.Release()
	return err
}
