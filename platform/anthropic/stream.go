package anthropic

import (
	"github.com/glmkit/glmkit/zhipuai"
)

// Stream event names (docs/anthropic.md §5).
const (
	EventMessageStart = "message_start"
	EventBlockStart   = "content_block_start"
	EventBlockDelta   = "content_block_delta"
	EventBlockStop    = "content_block_stop"
	EventMessageDelta = "message_delta"
	EventMessageStop  = "message_stop"
	EventPing         = "ping"
	EventError        = "error"
)

// StreamTranslator turns the chunks of a V4 chat stream into Messages
// stream events. It is pure: it holds the state of one stream (which
// content block is open, the finish reason and usage seen) and returns
// the events each chunk makes; the caller writes them. The V4 stream
// carries reasoning_content, content and tool_calls deltas; each run of
// one kind becomes one content block (thinking, text, tool_use per call).
type StreamTranslator struct {
	model    string
	prompt   int // the prompt estimate, for message_start
	started  bool
	ended    bool
	next     int    // index of the next content block
	open     string // type of the open block, "" when none
	toolKey  int    // V4 index of the open tool_use block's call
	toolID   string
	finish   string
	usage    *zhipuai.Usage
	callsIn  int // tool calls seen, for ids of calls without one
	chunkID  string
	hasUsage bool
}

// NewStreamTranslator starts the translation of a stream answered as
// model (the client's name); prompt is the prompt estimate message_start
// reports until the stream's usage, in message_delta, replaces it.
func NewStreamTranslator(model string, prompt int) *StreamTranslator {
	return &StreamTranslator{model: model, prompt: prompt, toolKey: -1}
}

// Started reports whether message_start went out.
func (t *StreamTranslator) Started() bool { return t.started }

// Chunk translates one V4 chunk. The first chunk also starts the message
// (message_start, then a ping as Anthropic's streams do).
func (t *StreamTranslator) Chunk(c *zhipuai.ChatCompletionChunk) []Event {
	var ev []Event
	if !t.started {
		t.started, t.chunkID = true, c.ID
		start := Message{ID: MessageID(c.ID), Type: "message", Role: "assistant", Model: t.model,
			Content: []Block{}, Usage: Usage{InputTokens: t.prompt}}
		ev = append(ev, Event{EventMessageStart, messageStartEvent{Type: EventMessageStart, Message: start}},
			Event{EventPing, typeOnlyEvent{Type: EventPing}})
	}
	if c.Usage != nil {
		u := *c.Usage
		t.usage, t.hasUsage = &u, true
	}
	if len(c.Choices) == 0 {
		return ev
	}
	ch := &c.Choices[0]
	d := &ch.Delta
	if d.ReasoningContent != "" {
		ev = t.ensure(ev, BlockThinking, Block{Type: BlockThinking})
		s := d.ReasoningContent
		ev = append(ev, t.delta(blockDelta{Type: "thinking_delta", Thinking: &s}))
	}
	if d.Content != "" {
		ev = t.ensure(ev, BlockText, Block{Type: BlockText})
		s := d.Content
		ev = append(ev, t.delta(blockDelta{Type: "text_delta", Text: &s}))
	}
	for i := range d.ToolCalls {
		ev = t.toolCall(ev, &d.ToolCalls[i], i)
	}
	if ch.FinishReason != "" {
		t.finish = ch.FinishReason
	}
	return ev
}

// toolCall opens a tool_use block for a new call (a new index, or a new
// id) and sends its arguments as input_json_delta. Backends that stream
// a call's arguments in pieces send the id and name once, then pieces
// under the same index (docs/v4.md §4).
func (t *StreamTranslator) toolCall(ev []Event, tc *zhipuai.ToolCall, pos int) []Event {
	key := pos
	if tc.Index != nil {
		key = *tc.Index
	}
	same := t.open == BlockToolUse && key == t.toolKey && (tc.ID == "" || tc.ID == t.toolID)
	if !same {
		id := ToolUseID(tc.ID, t.chunkID, t.callsIn)
		t.callsIn++
		ev = t.close(ev)
		ev = t.begin(ev, BlockToolUse, Block{Type: BlockToolUse, ID: id, Name: tc.Function.Name})
		t.toolKey, t.toolID = key, tc.ID
	}
	if args := tc.Function.Arguments; args != "" {
		ev = append(ev, t.delta(blockDelta{Type: "input_json_delta", PartialJSON: &args}))
	}
	return ev
}

// ensure opens a block of typ unless one is open.
func (t *StreamTranslator) ensure(ev []Event, typ string, b Block) []Event {
	if t.open == typ {
		return ev
	}
	return t.begin(t.close(ev), typ, b)
}

func (t *StreamTranslator) begin(ev []Event, typ string, b Block) []Event {
	t.open = typ
	return append(ev, Event{EventBlockStart, blockStartEvent{Type: EventBlockStart, Index: t.next, ContentBlock: b}})
}

func (t *StreamTranslator) delta(d blockDelta) Event {
	return Event{EventBlockDelta, blockDeltaEvent{Type: EventBlockDelta, Index: t.next, Delta: d}}
}

// close ends the open block, if any.
func (t *StreamTranslator) close(ev []Event) []Event {
	if t.open == "" {
		return ev
	}
	ev = append(ev, Event{EventBlockStop, blockStopEvent{Type: EventBlockStop, Index: t.next}})
	t.open, t.toolKey, t.toolID = "", -1, ""
	t.next++
	return ev
}

// End ends the message after the V4 stream's [DONE]: the open block
// stops, message_delta carries the stop reason and the usage, and
// message_stop follows. fallback is the usage billed when the stream
// reported none (the stated estimate, docs/design.md §3 "Client
// disconnect"), so what the client is told is what the bill says. End
// of a stream that never started, or a second End, makes no events.
func (t *StreamTranslator) End(fallback zhipuai.Usage) []Event {
	if !t.started || t.ended {
		return nil
	}
	t.ended = true
	ev := t.close(nil)
	u := t.usage
	if !t.hasUsage {
		u = &fallback
	}
	stop := StopReason(t.finish)
	ev = append(ev, Event{EventMessageDelta, messageDeltaEvent{Type: EventMessageDelta,
		Delta: messageDelta{StopReason: &stop}, Usage: UsageOf(u)}},
		Event{EventMessageStop, typeOnlyEvent{Type: EventMessageStop}})
	return ev
}

// Usage is the usage the stream reported, nil when none came.
func (t *StreamTranslator) Usage() *zhipuai.Usage { return t.usage }
