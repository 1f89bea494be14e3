package zhipuai

import "strings"

// ChatCompletionAccumulator folds the chunks of a stream into the
// ChatCompletion a synchronous call would have returned, in the style of
// openai-go's accumulator:
//
//	var acc zhipuai.ChatCompletionAccumulator
//	for stream.Next() {
//		acc.AddChunk(stream.Current())
//		if text, ok := acc.JustFinishedContent(); ok { … }
//		for _, call := range acc.JustFinishedToolCalls() { … }
//	}
//	full := acc.ChatCompletion // content, tool calls, finish_reason, usage
//
// Tool calls are merged by index: a call may arrive whole in one delta (as
// the platform sends it, docs/v4.md §4) or in pieces (id and name first, then
// argument fragments, as OpenAI-shaped engines send it).
type ChatCompletionAccumulator struct {
	ChatCompletion

	started      bool
	state        accState // what choice 0 is producing now
	justFinished []accState
	reported     []bool // tool calls of choice 0 already reported finished
	// text holds the growing content of each choice. strings.Builder hands
	// out its bytes without copying, so folding n chunks costs O(total)
	// rather than the O(n²) of repeated string concatenation.
	text []*choiceText
}

type choiceText struct {
	content, reasoning strings.Builder
}

// FinishedToolCall is a tool call whose arguments are complete.
type FinishedToolCall struct {
	Index     int
	ID        string
	Name      string
	Arguments string
}

type accKind uint8

const (
	accNone accKind = iota
	accReasoning
	accContent
	accTool
	accDone
)

type accState struct {
	kind  accKind
	index int // tool call index for accTool
}

// maxToolCalls bounds the index a delta may name, so a hostile stream
// cannot make the accumulator allocate without end.
const maxToolCalls = 128

// AddChunk folds one chunk in. It returns false, and changes nothing, when
// the chunk does not belong to this completion (another id), carries an
// in-band error, or names an impossible choice or tool call index.
func (a *ChatCompletionAccumulator) AddChunk(chunk ChatCompletionChunk) bool {
	a.justFinished = a.justFinished[:0]
	if chunk.Error != nil {
		return false
	}
	if a.started && chunk.ID != "" && a.ID != "" && chunk.ID != a.ID {
		return false
	}
	for _, ch := range chunk.Choices {
		if ch.Index < 0 || ch.Index >= maxToolCalls {
			return false
		}
		for _, tc := range ch.Delta.ToolCalls {
			if tc.Index != nil && (*tc.Index < 0 || *tc.Index >= maxToolCalls) {
				return false
			}
		}
	}
	if !a.started {
		a.started = true
		a.ID, a.Created, a.Model, a.RequestID = chunk.ID, chunk.Created, chunk.Model, chunk.RequestID
	}
	if a.ID == "" {
		a.ID = chunk.ID
	}
	if a.Model == "" {
		a.Model = chunk.Model
	}
	if a.RequestID == "" {
		a.RequestID = chunk.RequestID
	}
	for _, ch := range chunk.Choices {
		for len(a.Choices) <= ch.Index {
			a.Choices = append(a.Choices, Choice{Index: len(a.Choices), Message: CompletionMessage{Role: RoleAssistant}})
		}
		for len(a.text) <= ch.Index {
			a.text = append(a.text, &choiceText{})
		}
		c, txt := &a.Choices[ch.Index], a.text[ch.Index]
		d := ch.Delta
		if d.Role != "" {
			c.Message.Role = d.Role
		}
		if d.ReasoningContent != "" {
			txt.reasoning.WriteString(d.ReasoningContent)
			c.Message.ReasoningContent = txt.reasoning.String()
			a.move(ch.Index, accState{kind: accReasoning})
		}
		if d.Content != "" {
			txt.content.WriteString(d.Content)
			c.Message.Content = txt.content.String()
			a.move(ch.Index, accState{kind: accContent})
		}
		for _, tc := range d.ToolCalls {
			idx := mergeToolCall(&c.Message.ToolCalls, tc)
			a.move(ch.Index, accState{kind: accTool, index: idx})
		}
		if ch.FinishReason != "" {
			c.FinishReason = ch.FinishReason
			a.move(ch.Index, accState{kind: accDone})
		}
	}
	if chunk.Usage != nil {
		a.Usage = *chunk.Usage
	}
	if len(chunk.WebSearch) > 0 {
		a.WebSearch = append(a.WebSearch[:0], chunk.WebSearch...)
	}
	a.ContentFilter = append(a.ContentFilter, chunk.ContentFilter...)
	return true
}

// move records choice 0 switching to s; what it produced before is then
// finished. Other choices are folded but not tracked (the platform returns
// one choice).
func (a *ChatCompletionAccumulator) move(choice int, s accState) {
	if choice != 0 || s == a.state {
		return
	}
	switch a.state.kind {
	case accNone, accDone:
	case accTool:
		// Report each call once, even if a chunk repeats it whole.
		for len(a.reported) <= a.state.index {
			a.reported = append(a.reported, false)
		}
		if !a.reported[a.state.index] {
			a.reported[a.state.index] = true
			a.justFinished = append(a.justFinished, a.state)
		}
	default:
		a.justFinished = append(a.justFinished, a.state)
	}
	a.state = s
}

// mergeToolCall folds a tool call delta into calls and returns its index.
func mergeToolCall(calls *[]ToolCall, tc ToolCall) int {
	idx := -1
	switch {
	case tc.Index != nil:
		idx = *tc.Index
	case tc.ID != "":
		for i, c := range *calls {
			if c.ID == tc.ID {
				idx = i
				break
			}
		}
		if idx < 0 {
			idx = len(*calls)
		}
	case len(*calls) > 0:
		idx = len(*calls) - 1 // a piece without index or id continues the last call
	default:
		idx = 0
	}
	for len(*calls) <= idx {
		n := len(*calls)
		*calls = append(*calls, ToolCall{Type: ToolTypeFunction, Index: Ptr(n)})
	}
	c := &(*calls)[idx]
	duplicate := tc.ID != "" && tc.ID == c.ID && tc.Function.Arguments == c.Function.Arguments
	if tc.ID != "" {
		c.ID = tc.ID
	}
	if tc.Type != "" {
		c.Type = tc.Type
	}
	switch {
	case tc.Function.Name == "" || tc.Function.Name == c.Function.Name:
	case c.Function.Name == "":
		c.Function.Name = tc.Function.Name
	default:
		c.Function.Name += tc.Function.Name // a name sent in pieces
	}
	if !duplicate {
		// A whole call repeated (same id, same arguments) is not appended
		// twice; anything else is a fragment.
		c.Function.Arguments += tc.Function.Arguments
	}
	return idx
}

// JustFinishedContent returns the full content of choice 0 when the chunk
// just added ended it (a tool call or the finish reason followed).
func (a *ChatCompletionAccumulator) JustFinishedContent() (string, bool) {
	for _, s := range a.justFinished {
		if s.kind == accContent && len(a.Choices) > 0 {
			return a.Choices[0].Message.Content, true
		}
	}
	return "", false
}

// JustFinishedReasoning returns the full reasoning_content of choice 0 when
// the chunk just added ended it.
func (a *ChatCompletionAccumulator) JustFinishedReasoning() (string, bool) {
	for _, s := range a.justFinished {
		if s.kind == accReasoning && len(a.Choices) > 0 {
			return a.Choices[0].Message.ReasoningContent, true
		}
	}
	return "", false
}

// JustFinishedToolCall returns the first tool call the chunk just added
// completed (see JustFinishedToolCalls for all of them).
func (a *ChatCompletionAccumulator) JustFinishedToolCall() (FinishedToolCall, bool) {
	calls := a.JustFinishedToolCalls()
	if len(calls) == 0 {
		return FinishedToolCall{}, false
	}
	return calls[0], true
}

// JustFinishedToolCalls returns the tool calls the chunk just added
// completed, in order. Several can finish at once when a chunk carries
// whole calls together with the finish reason.
func (a *ChatCompletionAccumulator) JustFinishedToolCalls() []FinishedToolCall {
	var out []FinishedToolCall
	for _, s := range a.justFinished {
		if s.kind != accTool || len(a.Choices) == 0 || s.index >= len(a.Choices[0].Message.ToolCalls) {
			continue
		}
		c := a.Choices[0].Message.ToolCalls[s.index]
		out = append(out, FinishedToolCall{Index: s.index, ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
	}
	return out
}
