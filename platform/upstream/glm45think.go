package upstream

import "strings"

// GLM-4.5 and GLM-4.6 open their reasoning with "<think>" and close it with
// "</think>"; an engine started without a reasoning parser (vLLM without
// --reasoning-parser glm45) hands both back inside the content. For the
// models whose tool calls glm45tools.go parses, a reply whose content
// starts with "<think>" has that part moved to reasoning_content, sync and
// stream (docs/v4.md §11). Content that does not start with the tag is
// left alone.

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
)

// thinkSplit moves a leading <think>…</think> of streamed content into
// reasoning. Before the first non-blank bytes show whether the content
// starts with the tag, at most len("<think>") bytes are held.
type thinkSplit struct {
	state int // thinkSniff, thinkIn or thinkOut
	buf   []byte
	// trim drops the blank line the model writes after </think>, up to
	// the first content that is not blank.
	trim bool
}

const (
	thinkSniff = iota
	thinkIn
	thinkOut
)

// feed takes a content piece and returns what is reasoning and what is
// content of it, now.
func (s *thinkSplit) feed(piece string) (reasoning, content string) {
	switch s.state {
	case thinkOut:
		if s.trim {
			piece = trimLeftSpace(piece)
			s.trim = piece == ""
		}
		return "", piece
	case thinkSniff:
		s.buf = append(s.buf, piece...)
		t := trimLeftSpace(string(s.buf))
		switch {
		case strings.HasPrefix(t, thinkOpen):
			s.state = thinkIn
			s.buf = append(s.buf[:0], t[len(thinkOpen):]...)
			return s.feed("")
		case strings.HasPrefix(thinkOpen, t):
			return "", "" // blank, or a prefix of the tag: wait
		}
		s.state = thinkOut
		out := string(s.buf)
		s.buf = s.buf[:0]
		return "", out
	}
	s.buf = append(s.buf, piece...)
	b := string(s.buf)
	if i := strings.Index(b, thinkClose); i >= 0 {
		s.state = thinkOut
		s.buf = s.buf[:0]
		rest := trimLeftSpace(b[i+len(thinkClose):])
		s.trim = rest == ""
		return b[:i], rest
	}
	// Keep back a tail that may start "</think>".
	keep := 0
	for n := min(len(b), len(thinkClose)-1); n > 0; n-- {
		if strings.HasPrefix(thinkClose, b[len(b)-n:]) {
			keep = n
			break
		}
	}
	s.buf = append(s.buf[:0], b[len(b)-keep:]...)
	return b[:len(b)-keep], ""
}

// finish returns what is still held: reasoning when the tag was never
// closed (a reply cut by max_tokens while thinking), else content.
func (s *thinkSplit) finish() (reasoning, content string) {
	b := string(s.buf)
	s.buf = s.buf[:0]
	if s.state == thinkIn {
		return b, ""
	}
	return "", b
}

// splitThink is the sync form: a content starting with <think> is split at
// </think> (or is all reasoning when the tag is not closed).
func splitThink(content string) (reasoning, rest string, ok bool) {
	t := trimLeftSpace(content)
	if !strings.HasPrefix(t, thinkOpen) {
		return "", content, false
	}
	t = t[len(thinkOpen):]
	if i := strings.Index(t, thinkClose); i >= 0 {
		return t[:i], trimLeftSpace(t[i+len(thinkClose):]), true
	}
	return t, "", true
}

// thinkInText reports whether a backend with tool_parser mode parses
// <think> in the content of model's replies: the same models as the
// GLM-4.5+ markup (auto by name, or glm45 for every model).
func thinkInText(mode, model string) bool {
	switch mode {
	case ToolParserNone, ToolParserGLM4:
		return false
	case ToolParserGLM45:
		return true
	}
	return GLM45ToolModel(model)
}

// splitThinkReply moves a leading <think>…</think> of an engine's sync
// reply into its reasoning, for choices that carry no reasoning of their own.
func splitThinkReply(in *oaChatCompletion) {
	for i := range in.Choices {
		m := &in.Choices[i].Message
		if m.Content == nil || reasoningOf(m.ReasoningContent, m.Reasoning) != "" {
			continue
		}
		if r, rest, ok := splitThink(*m.Content); ok {
			m.ReasoningContent, m.Content = &r, &rest
		}
	}
}
