package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// The SDK's golden thinking stream through the zhipu pass-through: the
// reasoning chunks pass as they came, and the final chunk keeps both usage
// details (docs/v4.md §11), in its bytes and in Chunk.Usage for settle.
func TestV4StreamKeepsThinkingAndUsageDetails(t *testing.T) {
	f, err := os.Open("../../zhipuai/testdata/stream_thinking.sse")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req := &zhipuai.ChatCompletionRequest{Model: "glm-4.7", Messages: []zhipuai.Message{zhipuai.UserMessage("6*7?")}}
	s := newV4Stream(ctx, cancel, "cloud", &http.Response{Body: io.NopCloser(f)}, platform.ChatRequest{Req: req})
	var datas [][]byte
	var usage *zhipuai.Usage
	for {
		ch, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		datas = append(datas, bytes.Clone(ch.Data))
		if ch.Usage != nil {
			usage = ch.Usage
		}
	}
	_ = s.Close()
	if len(datas) != 4 || !bytes.Contains(datas[0], []byte(`"reasoning_content":"用户问"`)) {
		t.Fatalf("got chunks %q, want 4 with the reasoning first", datas)
	}
	last := datas[3]
	for _, want := range []string{`"cached_tokens":1024`, `"reasoning_tokens":7`, `"finish_reason":"stop"`} {
		if !bytes.Contains(last, []byte(want)) {
			t.Errorf("got final chunk %s, want it to keep %s", last, want)
		}
	}
	if usage == nil || usage.CachedTokens() != 1024 || usage.ReasoningTokens() != 7 {
		t.Errorf("got Chunk.Usage %+v, want both details", usage)
	}
}

// thinking and an assistant turn's reasoning reach only the engines whose
// templates read them (docs/v4.md §11).
func TestThinkingToEngines(t *testing.T) {
	req := &zhipuai.ChatCompletionRequest{Model: "glm-4.7", Thinking: &zhipuai.Thinking{Type: zhipuai.ThinkingDisabled},
		Messages: []zhipuai.Message{zhipuai.UserMessage("a"), {Role: zhipuai.RoleAssistant, Content: zhipuai.Content{Text: "b"}, ReasoningContent: "r"},
			zhipuai.UserMessage("c")}}
	for flavor, want := range map[string]bool{FlavorVLLM: true, FlavorSGLang: true, FlavorLlamaCpp: true, FlavorOllama: false, "": false} {
		out, err := ToOpenAIChat(req, false, flavor)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(out)
		kw := bytes.Contains(b, []byte(`"chat_template_kwargs":{"enable_thinking":false}`))
		rc := bytes.Contains(b, []byte(`"reasoning_content":"r"`))
		if kw != want || rc != want {
			t.Errorf("flavor %q: got kwargs %v reasoning %v in %s, want %v", flavor, kw, rc, b, want)
		}
	}
}

// <think> in the content: split wherever the tags fall between pieces;
// content that does not open with the tag passes (held at most the tag's
// length); an unclosed think is all reasoning; the sync form the same.
func TestThinkSplit(t *testing.T) {
	for _, tc := range []struct {
		pieces             []string
		reasoning, content string
	}{
		{[]string{"<think>", "a", "</think>", "\n\n", "b"}, "a", "b"},
		{[]string{" <", "thi", "nk>a</", "think>b"}, "a", "b"},
		{[]string{"<thinking is fun"}, "", "<thinking is fun"},
		{[]string{"plain", " text"}, "", "plain text"},
		{[]string{"<think>", "never closed </thi"}, "never closed </thi", ""},
		{[]string{"\n"}, "", "\n"},
	} {
		var s thinkSplit
		var r, c strings.Builder
		for _, p := range tc.pieces {
			a, b := s.feed(p)
			r.WriteString(a)
			c.WriteString(b)
		}
		a, b := s.finish()
		r.WriteString(a)
		c.WriteString(b)
		if r.String() != tc.reasoning || c.String() != tc.content {
			t.Errorf("%q: got reasoning %q content %q, want %q and %q", tc.pieces, r.String(), c.String(), tc.reasoning, tc.content)
		}
	}
	in := oaChatCompletion{Choices: []oaChoice{{Message: oaReplyMsg{Content: zhipuai.Ptr("<think>r</think>\nok")}},
		{Message: oaReplyMsg{Content: zhipuai.Ptr("<think>x</think>y"), Reasoning: zhipuai.Ptr("engine's")}}}}
	splitThinkReply(&in)
	if m := in.Choices[0].Message; *m.ReasoningContent != "r" || *m.Content != "ok" {
		t.Errorf("sync: got %q / %q, want r / ok", *m.ReasoningContent, *m.Content)
	}
	if m := in.Choices[1].Message; *m.Content != "<think>x</think>y" {
		t.Errorf("sync with the engine's own reasoning: got %q, want the content untouched", *m.Content)
	}
}
