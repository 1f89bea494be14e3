package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/zhipuai"
)

type cliChatOptions struct {
	conn        cliClientFlags
	model       string
	system      string
	image       string
	stream      bool
	json        bool
	interactive bool
	temperature float64
	topP        float64
	maxTokens   int
}

func newChatCmd() *cobra.Command {
	o := &cliChatOptions{}
	cmd := &cobra.Command{
		Use:   "chat [PROMPT...]",
		Short: "Chat with GLM-4: one-shot, or an interactive conversation",
		Long: `glm chat sends one prompt and prints the answer. Without a prompt on a terminal
(or with -i) it starts a conversation: type a message and press Enter; end a line
with \ to continue it on the next. Commands:
  /system TEXT   set the system prompt (kept across /reset)
  /image FILE    attach a jpg/png to your next message (GLM-4V)
  /reset         forget the conversation
  /exit          quit (also Ctrl-D)
Without a prompt and with stdin not a terminal, the prompt is read from stdin.`,
		Example: `  glm chat "tell me a joke"
  glm chat --stream --system "You are a poet" "写一首关于春天的诗"
  glm chat --image examples/images/house.png "what is in this picture?"
  glm chat            # interactive`,
		RunE: func(cmd *cobra.Command, args []string) error { return runChat(cmd, o, args) },
	}
	o.conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "glm-4", "model (glm-4v is used when --image is given and --model is not)")
	f.StringVar(&o.system, "system", "", "system prompt")
	f.StringVar(&o.image, "image", "", "local jpg/png to ask GLM-4V about (sent as bare base64)")
	f.BoolVar(&o.stream, "stream", false, "print the answer as tokens arrive")
	f.BoolVar(&o.json, "json", false, "print the full API reply as JSON (with --stream: one chunk per line)")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "start a conversation even when stdin is not a terminal")
	f.Float64Var(&o.temperature, "temperature", 0, "sampling temperature (0,1); unset: the model's default")
	f.Float64Var(&o.topP, "top-p", 0, "nucleus sampling top_p (0,1); unset: the model's default")
	f.IntVar(&o.maxTokens, "max-tokens", 0, "cap on generated tokens; unset: the model's default")
	return cmd
}

// request builds a chat request from the flags and a conversation.
func (o *cliChatOptions) request(cmd *cobra.Command, model string, messages []zhipuai.Message) *zhipuai.ChatCompletionRequest {
	req := &zhipuai.ChatCompletionRequest{Model: model, Messages: messages}
	// Only flags the user set are sent, so the model's defaults apply otherwise.
	if cmd.Flags().Changed("temperature") {
		req.Temperature = zhipuai.Ptr(o.temperature)
	}
	if cmd.Flags().Changed("top-p") {
		req.TopP = zhipuai.Ptr(o.topP)
	}
	if cmd.Flags().Changed("max-tokens") {
		req.MaxTokens = zhipuai.Ptr(o.maxTokens)
	}
	return req
}

func (o *cliChatOptions) modelFor(cmd *cobra.Command, withImage bool) string {
	if withImage && !cmd.Flags().Changed("model") {
		return "glm-4v"
	}
	return o.model
}

// userMessage builds the user turn, with an image part when image is set.
func cliUserMessage(text, image string) (zhipuai.Message, error) {
	if image == "" {
		return zhipuai.UserMessage(text), nil
	}
	part, err := zhipuai.ImageFilePart(image)
	if err != nil {
		return zhipuai.Message{}, cliStripPrefix(err)
	}
	return zhipuai.UserParts(zhipuai.TextPart(text), part), nil
}

func runChat(cmd *cobra.Command, o *cliChatOptions, args []string) error {
	prompt := strings.TrimSpace(strings.Join(args, " "))
	in := cmd.InOrStdin()
	if prompt == "" && (o.interactive || cliIsTerminal(in)) {
		client, err := o.conn.client()
		if err != nil {
			return err
		}
		return o.repl(cmd, client, in)
	}
	if prompt == "" {
		b, err := io.ReadAll(io.LimitReader(in, 4<<20))
		if err != nil {
			return err
		}
		if prompt = strings.TrimSpace(string(b)); prompt == "" {
			return errors.New("no prompt: give it as an argument, on stdin, or run `glm chat` on a terminal for a conversation")
		}
	}
	client, err := o.conn.client()
	if err != nil {
		return err
	}
	user, err := cliUserMessage(prompt, o.image)
	if err != nil {
		return err
	}
	var msgs []zhipuai.Message
	if o.system != "" {
		msgs = append(msgs, zhipuai.SystemMessage(o.system))
	}
	msgs = append(msgs, user)
	req := o.request(cmd, o.modelFor(cmd, o.image != ""), msgs)
	out := cmd.OutOrStdout()
	ctx := cmd.Context()
	if o.stream {
		_, err := cliStreamReply(ctx, client, req, out, o.json)
		return o.conn.explain(err)
	}
	resp, err := client.Chat.Completions.Create(ctx, req)
	if err != nil {
		return o.conn.explain(err)
	}
	if o.json {
		return cliWriteJSON(out, resp)
	}
	if len(resp.Choices) == 0 {
		return errors.New("the model returned no choices")
	}
	_, err = fmt.Fprintln(out, resp.Choices[0].Message.Content)
	return err
}

// cliStreamReply streams a reply to out as it arrives and returns the
// folded completion. With asJSON each chunk is printed as a JSON line
// instead of the text.
func cliStreamReply(ctx context.Context, client *zhipuai.Client, req *zhipuai.ChatCompletionRequest, out io.Writer, asJSON bool) (*zhipuai.ChatCompletion, error) {
	stream, err := client.Chat.Completions.Stream(ctx, req)
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	var acc zhipuai.ChatCompletionAccumulator
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		if asJSON {
			if err := cliWriteJSONLine(out, chunk); err != nil {
				return nil, err
			}
			continue
		}
		for _, c := range chunk.Choices {
			if _, err := io.WriteString(out, c.Delta.Content); err != nil {
				return nil, err
			}
		}
	}
	if !asJSON {
		fmt.Fprintln(out)
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return &acc.ChatCompletion, nil
}

// repl is the interactive conversation. History is the message list sent
// with every turn; a failed turn is taken back out so that a retry does not
// send the question twice.
func (o *cliChatOptions) repl(cmd *cobra.Command, client *zhipuai.Client, in io.Reader) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	ctx := cmd.Context()
	system := o.system
	var history []zhipuai.Message
	pendingImage := o.image
	fmt.Fprintf(errOut, "glm chat · %s · /system TEXT, /image FILE, /reset, /exit\n", o.model)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for {
		fmt.Fprint(errOut, "> ")
		line, ok := cliReadLogicalLine(sc, errOut)
		if !ok {
			fmt.Fprintln(errOut)
			return sc.Err()
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
			continue
		case line == "/exit" || line == "/quit":
			return nil
		case line == "/reset":
			history = nil
			pendingImage = ""
			fmt.Fprintln(errOut, "(conversation cleared)")
			continue
		case line == "/system" || strings.HasPrefix(line, "/system "):
			system = strings.TrimSpace(strings.TrimPrefix(line, "/system"))
			if system == "" {
				fmt.Fprintln(errOut, "(system prompt removed)")
			} else {
				fmt.Fprintln(errOut, "(system prompt set)")
			}
			continue
		case line == "/image" || strings.HasPrefix(line, "/image "):
			path := strings.TrimSpace(strings.TrimPrefix(line, "/image"))
			if path == "" {
				fmt.Fprintln(errOut, "usage: /image FILE")
				continue
			}
			if _, err := zhipuai.ImageFilePart(path); err != nil {
				fmt.Fprintln(errOut, "error:", cliStripPrefix(err))
				continue
			}
			pendingImage = path
			fmt.Fprintf(errOut, "(image %s will be sent with your next message)\n", path)
			continue
		case strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//"):
			fmt.Fprintln(errOut, "unknown command; try /system TEXT, /image FILE, /reset, /exit (start a message with // to send a slash)")
			continue
		}
		line = strings.TrimPrefix(line, "/") // "//text" sends "/text"
		user, err := cliUserMessage(line, pendingImage)
		if err != nil {
			fmt.Fprintln(errOut, "error:", err)
			continue
		}
		history = append(history, user)
		var msgs []zhipuai.Message
		if system != "" {
			msgs = append(msgs, zhipuai.SystemMessage(system))
		}
		msgs = append(msgs, history...)
		model := o.model
		if cliHasImage(msgs) && !cmd.Flags().Changed("model") {
			model = "glm-4v"
		}
		reply, err := cliStreamReply(ctx, client, o.request(cmd, model, msgs), out, false)
		if err != nil {
			history = history[:len(history)-1]
			if ctx.Err() != nil {
				return o.conn.explain(err)
			}
			fmt.Fprintln(errOut, "error:", o.conn.explain(err))
			continue
		}
		pendingImage = ""
		if len(reply.Choices) > 0 {
			history = append(history, reply.Choices[0].Message.ToParam())
		}
	}
}

// cliReadLogicalLine reads one input line, joining lines that end in a
// backslash (multi-line messages without a line-editing library).
func cliReadLogicalLine(sc *bufio.Scanner, prompt io.Writer) (string, bool) {
	var parts []string
	for sc.Scan() {
		l := sc.Text()
		if strings.HasSuffix(l, `\`) {
			parts = append(parts, strings.TrimSuffix(l, `\`))
			fmt.Fprint(prompt, "… ")
			continue
		}
		parts = append(parts, l)
		return strings.Join(parts, "\n"), true
	}
	if len(parts) > 0 {
		return strings.Join(parts, "\n"), true
	}
	return "", false
}

func cliHasImage(msgs []zhipuai.Message) bool {
	for _, m := range msgs {
		for _, p := range m.Content.Parts {
			if p.Type == zhipuai.PartImageURL {
				return true
			}
		}
	}
	return false
}
