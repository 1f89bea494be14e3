// Command anthropic talks to glm serve with the Anthropic Go SDK
// (github.com/anthropics/anthropic-sdk-go), unchanged: only the base URL
// and the key point at glm serve, the way Claude Code is pointed there.
//
//	export ANTHROPIC_BASE_URL=http://127.0.0.1:8080/api/anthropic
//	export ANTHROPIC_API_KEY=<a glm serve key, id.secret>
//	go run . -model claude-sonnet-4-5 "北京今天天气怎么样？"
//
// It sends one message, then streams the same question and assembles the
// streamed events into the final message; both print their usage, which is
// what glm serve bills (glm usage lists the rows). This example is its own
// module so the main module does not depend on the SDK.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/anthropics/anthropic-sdk-go"
)

func main() {
	model := flag.String("model", "claude-sonnet-4-5", "model name; glm serve maps claude-* to a served GLM model")
	flag.Parse()
	question := strings.Join(flag.Args(), " ")
	if question == "" {
		question = "北京今天天气怎么样？"
	}
	// NewClient reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY.
	c := anthropic.NewClient()
	if err := run(context.Background(), c, *model, question, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "anthropic:", err)
		os.Exit(1)
	}
}

// run asks question once as a message and once as a stream.
func run(ctx context.Context, c anthropic.Client, model, question string, w io.Writer) error {
	params := anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(question))},
	}
	msg, err := c.Messages.New(ctx, params)
	if err != nil {
		return fmt.Errorf("message: %w", err)
	}
	fmt.Fprintf(w, "message: %s\n", text(msg))
	fmt.Fprintf(w, "usage: input %d, output %d, cache read %d; stop %s\n",
		msg.Usage.InputTokens, msg.Usage.OutputTokens, msg.Usage.CacheReadInputTokens, msg.StopReason)

	stream := c.Messages.NewStreaming(ctx, params)
	defer stream.Close()
	var final anthropic.Message
	fmt.Fprint(w, "stream: ")
	for stream.Next() {
		ev := stream.Current()
		if err := final.Accumulate(ev); err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			if t, ok := d.Delta.AsAny().(anthropic.TextDelta); ok {
				fmt.Fprint(w, t.Text)
			}
		}
	}
	if err := stream.Err(); err != nil {
		return fmt.Errorf("stream: %w", err)
	}
	fmt.Fprintf(w, "\nusage: input %d, output %d, cache read %d; stop %s\n",
		final.Usage.InputTokens, final.Usage.OutputTokens, final.Usage.CacheReadInputTokens, final.StopReason)
	return nil
}

// text joins the message's text blocks.
func text(m *anthropic.Message) string {
	var b strings.Builder
	for _, block := range m.Content {
		if t, ok := block.AsAny().(anthropic.TextBlock); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}
