package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/zhipuai"
)

func newAsyncCmd() *cobra.Command {
	var (
		conn   cliClientFlags
		model  string
		system string
		taskID string
		noWait bool
		asJSON bool
		poll   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "async [PROMPT...]",
		Short: "Submit an asynchronous chat task and wait for its answer",
		Long: `glm async submits PROMPT to /async/chat/completions, then polls
/async-result/{id} (with backoff) until the task is SUCCESS or FAIL, showing
progress on stderr, and prints the answer. --no-wait prints the task id and
returns; --id TASK waits for a task submitted earlier.`,
		Example: `  glm async "Who won the 2022 World Cup?"
  id=$(glm async --no-wait "写一篇关于长江的短文") && glm async --id "$id"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			prompt := strings.TrimSpace(strings.Join(args, " "))
			if (prompt == "") == (taskID == "") {
				return errors.New("give either a PROMPT to submit or --id TASK to wait for")
			}
			if taskID != "" && noWait {
				return errors.New("--no-wait only applies when submitting a prompt")
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			ctx, out, errOut := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			if taskID == "" {
				var msgs []zhipuai.Message
				if system != "" {
					msgs = append(msgs, zhipuai.SystemMessage(system))
				}
				msgs = append(msgs, zhipuai.UserMessage(prompt))
				st, err := client.Chat.AsyncCompletions.Create(ctx, &zhipuai.ChatCompletionRequest{Model: model, Messages: msgs})
				if err != nil {
					return conn.explain(err)
				}
				if noWait {
					if asJSON {
						return cliWriteJSON(out, st)
					}
					_, err := fmt.Fprintln(out, st.ID)
					return err
				}
				taskID = st.ID
				fmt.Fprintf(errOut, "task %s submitted\n", taskID)
			}
			progress := cliAsyncProgress(errOut, cliIsTerminal(errOut))
			res, err := client.Chat.AsyncCompletions.Wait(ctx, taskID,
				zhipuai.WithPollInterval(poll, 5*time.Second), zhipuai.WithOnPoll(progress))
			progress(nil) // finish the progress line
			if err != nil {
				return conn.explain(err)
			}
			if asJSON {
				return cliWriteJSON(out, res)
			}
			if len(res.Choices) == 0 {
				return fmt.Errorf("task %s ended %s without an answer", taskID, res.TaskStatus)
			}
			_, err = fmt.Fprintln(out, res.Choices[0].Message.Content)
			return err
		},
	}
	conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&model, "model", "glm-4", "model")
	f.StringVar(&system, "system", "", "system prompt")
	f.StringVar(&taskID, "id", "", "wait for this earlier task instead of submitting")
	f.BoolVar(&noWait, "no-wait", false, "print the task id and return without waiting")
	f.BoolVar(&asJSON, "json", false, "print the full task reply as JSON")
	f.DurationVar(&poll, "poll", 500*time.Millisecond, "first wait between polls (doubles up to 5s)")
	return cmd
}

// cliAsyncProgress returns the WithOnPoll callback: on a terminal a spinner
// line rewritten in place, elsewhere one line per poll. Called with nil it
// ends the line.
func cliAsyncProgress(w io.Writer, tty bool) func(*zhipuai.AsyncCompletion) {
	start := time.Now()
	polls := 0
	spin := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	return func(c *zhipuai.AsyncCompletion) {
		if c == nil {
			if tty && polls > 0 {
				fmt.Fprintln(w)
			}
			return
		}
		polls++
		elapsed := time.Since(start).Round(100 * time.Millisecond)
		if tty {
			fmt.Fprintf(w, "\r%s %s · poll %d · %s ", spin[polls%len(spin)], c.TaskStatus, polls, elapsed)
			return
		}
		fmt.Fprintf(w, "poll %d: %s (%s)\n", polls, c.TaskStatus, elapsed)
	}
}
