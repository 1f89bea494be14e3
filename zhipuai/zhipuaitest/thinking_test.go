package zhipuaitest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func thinkingClient(t *testing.T, srv *zhipuaitest.Server) *zhipuai.Client {
	t.Helper()
	c, err := zhipuai.NewClient(zhipuai.WithBaseURL(srv.URL()), zhipuai.WithAPIKey(srv.APIKey),
		zhipuai.WithSleep(func(ctx context.Context, d time.Duration) error { return ctx.Err() }))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A thinking model's reply (docs/v4.md §11): reasoning_content chunks first,
// then content, then one final chunk whose usage carries the cached and
// reasoning details; the SDK's accumulator folds reasoning_content, and the
// request's thinking, tool_stream and watermark fields reach the upstream.
func TestThinkingStreamThroughSDK(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.Text("").WithChunks("4", "2").WithReasoning("Six ", "times ", "seven.").
		WithUsage(1200, 9).WithUsageDetails(1000, 6))
	client := thinkingClient(t, srv)
	stream, err := client.Chat.Completions.Stream(context.Background(), &zhipuai.ChatCompletionRequest{
		Model:      "glm-4.7",
		Messages:   []zhipuai.Message{zhipuai.UserMessage("6*7?")},
		Thinking:   &zhipuai.Thinking{Type: zhipuai.ThinkingEnabled, ClearThinking: zhipuai.Ptr(false)},
		ToolStream: true, WatermarkEnabled: zhipuai.Ptr(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var acc zhipuai.ChatCompletionAccumulator
	var order []string
	for stream.Next() {
		c := stream.Current()
		acc.AddChunk(c)
		if len(c.Choices) == 0 {
			continue
		}
		switch d := c.Choices[0].Delta; {
		case d.ReasoningContent != "":
			order = append(order, "reasoning")
		case d.Content != "":
			order = append(order, "content")
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, ","), "reasoning,reasoning,reasoning,content,content"; got != want {
		t.Errorf("got delta order %s, want %s", got, want)
	}
	msg := acc.Choices[0].Message
	if msg.ReasoningContent != "Six times seven." || msg.Content != "42" {
		t.Errorf("got reasoning %q content %q, want %q and %q", msg.ReasoningContent, msg.Content, "Six times seven.", "42")
	}
	if got := acc.Usage; got.CachedTokens() != 1000 || got.ReasoningTokens() != 6 || got.PromptTokens != 1200 || got.CompletionTokens != 9 {
		t.Errorf("got usage %+v, want 1200/9 with 1000 cached and 6 reasoning", got)
	}
	reqs := srv.Requests()
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(reqs[len(reqs)-1].Body, &sent); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"thinking": `{"type":"enabled","clear_thinking":false}`, "tool_stream": "true", "watermark_enabled": "true"} {
		if got := string(sent[k]); got != want {
			t.Errorf("got %s %s on the wire, want %s", k, got, want)
		}
	}
}

// The sync form carries message.reasoning_content and the usage details;
// without WithUsage the estimate still reports the reasoning tokens.
func TestThinkingSync(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	srv.Enqueue(zhipuaitest.Text("42").WithReasoning("Six times seven."))
	client := thinkingClient(t, srv)
	resp, err := client.Chat.Completions.Create(context.Background(), &zhipuai.ChatCompletionRequest{
		Model: "glm-4.7", Messages: []zhipuai.Message{zhipuai.UserMessage("6*7?")},
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := resp.Choices[0].Message
	if msg.ReasoningContent != "Six times seven." || msg.Content != "42" {
		t.Errorf("got %+v, want reasoning and content", msg)
	}
	if got, want := resp.Usage.ReasoningTokens(), 4; got != want || resp.Usage.CompletionTokens != 5 {
		t.Errorf("got reasoning tokens %d of %d, want %d of 5", got, resp.Usage.CompletionTokens, want)
	}
}
