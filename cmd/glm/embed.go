package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/zhipuai"
)

func newEmbedCmd() *cobra.Command {
	var (
		conn       cliClientFlags
		model      string
		dimensions int
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "embed TEXT...",
		Short: "Print the embedding vector of a text",
		Long: `glm embed prints the embedding of TEXT (the arguments joined by spaces, or
stdin when there are none) as a JSON array of numbers; --json prints the whole
API reply (model, data, usage).`,
		Example: `  glm embed "hello world"                      # embedding-2: 1024 numbers
  glm embed --model embedding-3 --dimensions 256 "你好"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			text := strings.Join(args, " ")
			if len(args) == 0 {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				if err != nil {
					return err
				}
				text = strings.TrimSpace(string(b))
			}
			if strings.TrimSpace(text) == "" {
				return errors.New("no text to embed: give it as arguments or on stdin")
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			req := &zhipuai.EmbeddingRequest{Model: model, Input: zhipuai.EmbeddingInput{text}}
			if cmd.Flags().Changed("dimensions") {
				req.Dimensions = zhipuai.Ptr(dimensions)
			}
			resp, err := client.Embeddings.Create(cmd.Context(), req)
			if err != nil {
				return conn.explain(err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return cliWriteJSON(out, resp)
			}
			if len(resp.Data) == 0 {
				return errors.New("the reply holds no embedding")
			}
			return cliPrintVector(out, resp.Data[0].Embedding)
		},
	}
	conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&model, "model", "embedding-2", "embedding model (embedding-2, embedding-3, or one glm serve offers)")
	f.IntVar(&dimensions, "dimensions", 0, "vector size for embedding-3: 256, 512, 1024 or 2048")
	f.BoolVar(&asJSON, "json", false, "print the full API reply as JSON")
	return cmd
}

// cliPrintVector prints a vector as a JSON array on one line, each number in
// the shortest form that reads back exactly.
func cliPrintVector(w io.Writer, v []float64) error {
	var b strings.Builder
	b.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	}
	b.WriteString("]\n")
	_, err := fmt.Fprint(w, b.String())
	return err
}
