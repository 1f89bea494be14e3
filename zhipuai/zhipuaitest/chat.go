package zhipuaitest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/zhipuai"
)

// runesPerChunk is how many runes a default stream chunk carries: the
// tutorial's stream shows pieces of one to three characters (docs/v4.md §4).
const runesPerChunk = 3

// The encoding-only shapes below exist for one quirk: the platform writes
// "content": null in a tool-call reply (docs/v4.md §4, and the tutorial's
// CompletionMessage(content=None)), while zhipuai.CompletionMessage always
// writes a string. Decoding them with the zhipuai types gives the same
// values; the tests check that.
type wireMessage struct {
	Role             string             `json:"role"`
	Content          *string            `json:"content"`
	ReasoningContent string             `json:"reasoning_content,omitempty"`
	ToolCalls        []zhipuai.ToolCall `json:"tool_calls,omitempty"`
}

type wireChoice struct {
	Index        int         `json:"index"`
	FinishReason string      `json:"finish_reason"`
	Message      wireMessage `json:"message"`
}

type wireCompletion struct {
	ID        string                    `json:"id"`
	RequestID string                    `json:"request_id"`
	Created   int64                     `json:"created"`
	Model     string                    `json:"model"`
	Choices   []wireChoice              `json:"choices"`
	Usage     zhipuai.Usage             `json:"usage"`
	WebSearch []zhipuai.WebSearchResult `json:"web_search,omitempty"`
}

type wireAsyncResult struct {
	ID         string             `json:"id"`
	RequestID  string             `json:"request_id"`
	Created    int64              `json:"created,omitempty"`
	Model      string             `json:"model"`
	TaskStatus string             `json:"task_status"`
	Choices    []wireChoice       `json:"choices,omitempty"`
	Usage      *zhipuai.Usage     `json:"usage,omitempty"`
	Error      *zhipuai.ErrorBody `json:"error,omitempty"`
}

// answer is a reply resolved against one request.
type answer struct {
	content   string
	reasoning []string
	pieces    []string
	calls     []zhipuai.ToolCall
	finish    string
	usage     zhipuai.Usage
}

// tokens estimates a token count: one per 4 bytes of UTF-8, rounded up,
// which is close to GLM-4's rate for Chinese and generous for English.
func tokens(s string) int { return (len(s) + 3) / 4 }

// promptTokens estimates the prompt of a chat request (at least 1, so
// usage never reads as "nothing billed").
func promptTokens(cr *zhipuai.ChatCompletionRequest) int {
	n := 0
	for _, m := range cr.Messages {
		n += tokens(m.Content.String())
		for _, tc := range m.ToolCalls {
			n += tokens(tc.Function.Name) + tokens(tc.Function.Arguments)
		}
	}
	return max(n, 1)
}

// echo is the default answer: the last user message, prefixed.
func echo(cr *zhipuai.ChatCompletionRequest) string {
	for i := len(cr.Messages) - 1; i >= 0; i-- {
		if cr.Messages[i].Role == zhipuai.RoleUser {
			return "Echo: " + cr.Messages[i].Content.String()
		}
	}
	return "Echo: "
}

// split cuts s into pieces of n runes.
func split(s string, n int) []string {
	var out []string
	for s != "" {
		i, count := 0, 0
		for i < len(s) && count < n {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
			count++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
	return out
}

// resolve turns rep into the answer for cr, filling defaults: echo text,
// tool call ids/types/indexes, finish_reason and estimated usage.
func (s *Server) resolve(cr *zhipuai.ChatCompletionRequest, rep Reply) answer {
	a := answer{content: rep.content, finish: zhipuai.FinishStop}
	switch rep.kind {
	case kindDefault:
		a.content = echo(cr)
	case kindInBand:
		if rep.chunks == nil {
			a.content = echo(cr)
		}
	case kindToolCalls:
		a.finish = zhipuai.FinishToolCalls
		a.calls = make([]zhipuai.ToolCall, len(rep.calls))
		for i, tc := range rep.calls {
			if tc.ID == "" {
				tc.ID = "call_" + s.newID()
			}
			if tc.Type == "" {
				tc.Type = zhipuai.ToolTypeFunction
			}
			tc.Index = zhipuai.Ptr(i)
			a.calls[i] = tc
		}
	}
	a.pieces = rep.chunks
	if a.pieces == nil {
		a.pieces = split(a.content, runesPerChunk)
	}
	if rep.finish != "" {
		a.finish = rep.finish
	}
	a.reasoning = rep.reasoning
	thought := tokens(strings.Join(a.reasoning, ""))
	if rep.usage != nil {
		a.usage = *rep.usage
	} else {
		c := tokens(a.content) + thought
		for _, tc := range a.calls {
			c += tokens(tc.Function.Name) + tokens(tc.Function.Arguments)
		}
		p := promptTokens(cr)
		a.usage = zhipuai.Usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c}
		if len(a.reasoning) > 0 {
			a.usage.CompletionTokensDetails = &zhipuai.CompletionTokensDetails{ReasoningTokens: thought}
		}
	}
	if rep.hasDetails {
		a.usage.PromptTokensDetails, a.usage.CompletionTokensDetails = nil, nil
		if rep.details[0] >= 0 {
			a.usage.PromptTokensDetails = &zhipuai.PromptTokensDetails{CachedTokens: rep.details[0]}
		}
		if rep.details[1] >= 0 {
			a.usage.CompletionTokensDetails = &zhipuai.CompletionTokensDetails{ReasoningTokens: rep.details[1]}
		}
	}
	return a
}

// choice is the sync/async form of an answer.
func (a answer) choice() wireChoice {
	m := wireMessage{Role: zhipuai.RoleAssistant, ToolCalls: a.calls, ReasoningContent: strings.Join(a.reasoning, "")}
	if a.content != "" || len(a.calls) == 0 {
		m.Content = &a.content
	}
	return wireChoice{Index: 0, FinishReason: a.finish, Message: m}
}

// decodeChat decodes and validates a chat body, records the request and
// answers 1210/1213 itself when the body is unusable.
func (s *Server) decodeChat(w http.ResponseWriter, req *Request) (*zhipuai.ChatCompletionRequest, bool) {
	var cr zhipuai.ChatCompletionRequest
	if err := unmarshal(req.Body, &cr); err != nil {
		s.record(req)
		writeError(w, http.StatusBadRequest, "1210", "API 调用参数有误，请检查文档。"+err.Error())
		return nil, false
	}
	req.Chat = &cr
	s.record(req)
	switch {
	case cr.Model == "":
		writeError(w, http.StatusBadRequest, "1213", "未正常接收到model参数。")
		return nil, false
	case len(cr.Messages) == 0:
		writeError(w, http.StatusBadRequest, "1213", "未正常接收到messages参数。")
		return nil, false
	}
	return &cr, true
}

// preamble runs what every non-stream answer does first: the delay, the
// cut, the extra headers and the error replies. It reports whether the
// caller should go on writing a success body.
func (s *Server) preamble(w http.ResponseWriter, r *http.Request, rep Reply, mismatch bool) bool {
	if !s.wait(r.Context(), rep.delay) {
		return false
	}
	if rep.cut {
		abort()
	}
	if rep.stall {
		s.wait(r.Context(), stallFor)
		return false
	}
	rep.applyHeaders(w.Header())
	switch {
	case rep.kind == kindError:
		writeError(w, rep.status, rep.code, rep.message)
		return false
	case mismatch:
		writeError(w, http.StatusInternalServerError, "500", "zhipuaitest: the scripted reply does not fit "+r.URL.Path)
		return false
	}
	return true
}

// stallFor bounds a StallAfter hang: long past any timeout under test,
// short enough that a forgotten connection cannot outlive a test run.
const stallFor = 10 * time.Minute

// chat serves POST /chat/completions, sync and stream.
func (s *Server) chat(w http.ResponseWriter, r *http.Request, req *Request) {
	cr, ok := s.decodeChat(w, req)
	if !ok {
		return
	}
	rep := s.take(req, Reply.forChat)
	if cr.Stream && rep.kind != kindError && rep.kind != kindEmbeddings {
		s.stream(w, r, cr, rep)
		return
	}
	if !s.preamble(w, r, rep, rep.kind == kindEmbeddings) {
		return
	}
	if rep.kind == kindInBand {
		writeError(w, http.StatusOK, rep.code, rep.message)
		return
	}
	a := s.resolve(cr, rep)
	id := s.newID()
	reqID := cr.RequestID
	if reqID == "" {
		reqID = id // docs/v4.md §4: request_id = client value or = id
	}
	writeJSON(w, http.StatusOK, wireCompletion{
		ID: id, RequestID: reqID, Created: s.now().Unix(), Model: cr.Model,
		Choices: []wireChoice{a.choice()}, Usage: a.usage, WebSearch: rep.search,
	})
}

// stream writes the SSE form of docs/v4.md §4: data-only events, the same id,
// created and model on every chunk, role "assistant" on every delta, tool
// calls whole in one chunk without finish_reason, exactly one final chunk
// with finish_reason and usage, then [DONE]; each event is flushed.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, cr *zhipuai.ChatCompletionRequest, rep Reply) {
	a := s.resolve(cr, rep)
	id := s.newID()
	created := s.now().Unix()
	chunk := func(delta zhipuai.Delta, finish string, usage *zhipuai.Usage) []byte {
		delta.Role = zhipuai.RoleAssistant
		return marshal(zhipuai.ChatCompletionChunk{
			ID: id, Created: created, Model: cr.Model,
			Choices: []zhipuai.ChunkChoice{{Index: 0, FinishReason: finish, Delta: delta}},
			Usage:   usage,
		})
	}
	var events [][]byte
	if len(rep.search) > 0 {
		events = append(events, marshal(zhipuai.ChatCompletionChunk{
			ID: id, Created: created, Model: cr.Model, WebSearch: rep.search,
			Choices: []zhipuai.ChunkChoice{{Index: 0, Delta: zhipuai.Delta{Role: zhipuai.RoleAssistant}}},
		}))
	}
	for _, p := range a.reasoning {
		events = append(events, chunk(zhipuai.Delta{ReasoningContent: p}, "", nil))
	}
	for _, p := range a.pieces {
		events = append(events, chunk(zhipuai.Delta{Content: p}, "", nil))
	}
	if len(a.calls) > 0 {
		events = append(events, chunk(zhipuai.Delta{ToolCalls: a.calls}, "", nil))
	}
	inBand := rep.kind == kindInBand
	if inBand {
		events = append(events, marshal(zhipuai.ErrorEnvelope{Error: zhipuai.ErrorBody{
			Code: zhipuai.ErrorCode(rep.code), Message: rep.message}}))
	} else {
		events = append(events, chunk(zhipuai.Delta{}, a.finish, &a.usage))
	}

	h := w.Header()
	rep.applyHeaders(h)
	h.Set("Content-Type", "text/event-stream;charset=UTF-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// Send the status line now, so a CutAfter(0) client sees a 200 whose
	// body breaks rather than a failed request.
	_ = http.NewResponseController(w).Flush()

	sw := sse.NewWriter(w)
	for i, ev := range events {
		if rep.cut && i == rep.cutAfter {
			abort()
		}
		if rep.stall && i == rep.stallAt {
			s.wait(r.Context(), stallFor)
			return
		}
		if !s.wait(r.Context(), rep.delay) {
			return
		}
		if err := sw.WriteData(ev); err != nil {
			return // the client went away
		}
	}
	if rep.cut {
		abort()
	}
	if !inBand {
		_ = sw.WriteDone()
	}
}

// task is one async chat task.
type task struct {
	result    wireAsyncResult // the final state
	pollsLeft int
}

// asyncSubmit serves POST /async/chat/completions: the reply is taken from
// the queue now, the task answers PROCESSING to the first SetAsyncPolls
// polls.
func (s *Server) asyncSubmit(w http.ResponseWriter, r *http.Request, req *Request) {
	cr, ok := s.decodeChat(w, req)
	if !ok {
		return
	}
	rep := s.take(req, Reply.forChat)
	if !s.preamble(w, r, rep, rep.kind == kindEmbeddings) {
		return
	}
	id := s.newID()
	reqID := cr.RequestID
	if reqID == "" {
		reqID = id
	}
	res := wireAsyncResult{ID: id, RequestID: reqID, Model: cr.Model, Created: s.now().Unix()}
	switch {
	case rep.fail:
		res.TaskStatus = zhipuai.TaskFail
		res.Error = &zhipuai.ErrorBody{Code: zhipuai.ErrorCode(rep.failCode), Message: rep.failMsg}
	case rep.kind == kindInBand:
		res.TaskStatus = zhipuai.TaskFail
		res.Error = &zhipuai.ErrorBody{Code: zhipuai.ErrorCode(rep.code), Message: rep.message}
	default:
		a := s.resolve(cr, rep)
		res.TaskStatus = zhipuai.TaskSuccess
		res.Choices = []wireChoice{a.choice()}
		res.Usage = &a.usage
	}
	s.mu.Lock()
	s.tasks[id] = &task{result: res, pollsLeft: s.asyncPolls}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, zhipuai.AsyncTaskStatus{
		ID: id, RequestID: reqID, Model: cr.Model, TaskStatus: zhipuai.TaskProcessing,
	})
}

// asyncResult serves GET /async-result/{id}. An unknown id is 404 with
// 1214, as glm serve answers (the cloud's answer is unverified, docs/v4.md §9).
func (s *Server) asyncResult(w http.ResponseWriter, r *http.Request, req *Request) {
	s.record(req)
	id := strings.TrimPrefix(req.Path, "/async-result/")
	s.mu.Lock()
	t, ok := s.tasks[id]
	var out wireAsyncResult
	if ok {
		if t.pollsLeft > 0 {
			t.pollsLeft--
			out = wireAsyncResult{ID: t.result.ID, RequestID: t.result.RequestID, Model: t.result.Model,
				TaskStatus: zhipuai.TaskProcessing}
		} else {
			out = t.result
		}
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "1214", "任务不存在: "+strconv.Quote(id))
		return
	}
	writeJSON(w, http.StatusOK, out)
}
