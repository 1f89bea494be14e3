package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/zhipuai"
)

func newTokenizeCmd() *cobra.Command {
	var (
		conn   cliClientFlags
		model  string
		system string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize TEXT...",
		Short: "Count the prompt tokens of a message",
		Long: `glm tokenize prints how many prompt tokens TEXT (the arguments joined by
spaces, or stdin when there are none) costs as a user message to --model,
counted by the platform's POST /tokenizer. glm serve counts exactly where the
model's backend can and otherwise prints its estimate, marked "(estimate)";
--json prints the whole API reply.`,
		Example: `  glm tokenize "北京天气怎么样？"
  glm tokenize --model glm-4.7 --system "你是助手" < prompt.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			text, err := cliArgsOrStdin(cmd, args)
			if err != nil {
				return err
			}
			if text == "" {
				return errors.New("no text to count: give it as arguments or on stdin")
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			req := &zhipuai.TokenizerRequest{Model: model}
			if system != "" {
				req.Messages = append(req.Messages, zhipuai.SystemMessage(system))
			}
			req.Messages = append(req.Messages, zhipuai.UserMessage(text))
			resp, err := client.Tokenizer.Create(cmd.Context(), req)
			if err != nil {
				return conn.explain(err)
			}
			if asJSON {
				return cliWriteJSON(cmd.OutOrStdout(), resp)
			}
			note := ""
			if resp.Estimated {
				note = " (estimate)"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%d%s\n", resp.Usage.PromptTokens, note)
			return err
		},
	}
	conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&model, "model", "glm-4-plus", "chat model whose tokenizer counts")
	f.StringVar(&system, "system", "", "a system message counted before the text")
	f.BoolVar(&asJSON, "json", false, "print the full API reply as JSON")
	return cmd
}

func newRerankCmd() *cobra.Command {
	var (
		conn   cliClientFlags
		model  string
		query  string
		topN   int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "rerank --query QUERY DOCUMENT...",
		Short: "Order documents by relevance to a query",
		Long: `glm rerank scores each DOCUMENT (or each non-empty line of stdin when there
are no arguments) against --query with a rerank model and prints them best
first, one per line: score, the document's position (from 0) and its text.`,
		Example: `  glm rerank --query "北京天气" "上海今天下雨" "北京天气晴朗"
  glm rerank --query "how to save" --top-n 3 < paragraphs.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			docs := args
			if len(docs) == 0 {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				if err != nil {
					return err
				}
				for _, line := range strings.Split(string(b), "\n") {
					if strings.TrimSpace(line) != "" {
						docs = append(docs, line)
					}
				}
			}
			switch {
			case strings.TrimSpace(query) == "":
				return errors.New("--query is required")
			case len(docs) == 0:
				return errors.New("no documents: give them as arguments or as lines on stdin")
			case topN < 0:
				return errors.New("--top-n must not be negative")
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			req := &zhipuai.RerankRequest{Model: model, Query: query, Documents: docs}
			if topN > 0 {
				req.TopN = zhipuai.Ptr(topN)
			}
			resp, err := client.Rerank.Create(cmd.Context(), req)
			if err != nil {
				return conn.explain(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return cliWriteJSON(out, resp)
			}
			for _, r := range resp.Results {
				if r.Index < 0 || r.Index >= len(docs) {
					return fmt.Errorf("the reply names document %d of %d", r.Index, len(docs))
				}
				if _, err := fmt.Fprintf(out, "%.4f\t%d\t%s\n", r.RelevanceScore, r.Index, docs[r.Index]); err != nil {
					return err
				}
			}
			return nil
		},
	}
	conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&model, "model", "rerank", "rerank model (rerank, or one glm serve offers)")
	f.StringVar(&query, "query", "", "the query the documents are scored against")
	f.IntVar(&topN, "top-n", 0, "print only the N best documents (0: all)")
	f.BoolVar(&asJSON, "json", false, "print the full API reply as JSON")
	return cmd
}

// cliArgsOrStdin is the arguments joined by spaces, or stdin (at most 1 MiB,
// trimmed) when there are none.
func cliArgsOrStdin(cmd *cobra.Command, args []string) (string, error) {
	if len(args) > 0 {
		return strings.TrimSpace(strings.Join(args, " ")), nil
	}
	b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
