package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/cookbook/rag"
)

const cliDefaultIndex = ".glmkit/rag.idx"

func newRagCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rag",
		Short: "Index documents, search them by embedding similarity, answer with citations",
		Long: `glm rag is the tutorial's embedding search as a tool:
  index PATH...   split .txt/.md/.pdf files into overlapping chunks and embed them
  search QUERY    print the most similar chunks with their cosine similarity
  ask QUESTION    answer with GLM-4 from the retrieved chunks, citing them
The index is one file (default ` + cliDefaultIndex + `).`,
	}
	cmd.AddCommand(newRagIndexCmd(), newRagSearchCmd(), newRagAskCmd())
	return cmd
}

func newRagIndexCmd() *cobra.Command {
	var (
		conn  cliClientFlags
		opt   rag.IndexOptions
		dims  int
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "index PATH...",
		Short: "Index files and directories (.txt, .md, .pdf)",
		Long: `glm rag index brings the index up to date with PATHs: new and changed files are
chunked and embedded (at most 64 chunks per call), unchanged files are skipped by
content hash, deleted ones dropped. Progress is saved after every batch: an
interrupted run (Ctrl-C, network error) continues where it stopped when the same
command is run again.`,
		Example: `  glm rag index examples/docs
  glm rag index --embed-model embedding-3 --dimensions 1024 --chunk-size 300 notes/ paper.pdf`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := conn.client()
			if err != nil {
				return err
			}
			errOut := cmd.ErrOrStderr()
			tty := cliIsTerminal(errOut) && !quiet
			last := 0
			opt.Progress = func(done, total int) {
				last = done
				if tty {
					fmt.Fprintf(errOut, "\r%s", cliProgressBar(done, total, 30))
				}
			}
			opt.Warn = func(path string, err error) {
				if tty {
					fmt.Fprint(errOut, "\r\033[K")
				}
				fmt.Fprintf(errOut, "warning: skipped %s: %v\n", rag.DisplayPath(path), err)
			}
			// Ctrl-C stops between batches; the journal keeps what was done.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			emb := rag.ClientEmbedder{Client: client, Model: opt.Model, Dimensions: dims}
			rep, err := rag.BuildIndex(ctx, emb, args, opt)
			if tty && last > 0 {
				fmt.Fprintln(errOut)
			}
			if err != nil {
				if last > 0 || ctx.Err() != nil {
					return fmt.Errorf("%w\n%d chunks embedded before the stop are saved; run the same command again to continue", conn.explain(err), last)
				}
				return conn.explain(err)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(),
				"indexed %d files (%d new or changed, %d unchanged, %d removed, %d unreadable): %d chunks, %d embedded now, %d resumed → %s\n",
				rep.Files, rep.Indexed, rep.Unchanged, rep.Removed, rep.Failed, rep.Chunks, rep.Embedded, rep.Resumed, opt.Path)
			return err
		},
	}
	conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&opt.Path, "index", cliDefaultIndex, "index file")
	f.StringVar(&opt.Model, "embed-model", "embedding-2", "embedding model (embedding-2, embedding-3, or glm serve's built-in one)")
	f.IntVar(&dims, "dimensions", 0, "vector size for embedding-3 (256, 512, 1024, 2048)")
	f.IntVar(&opt.Chunk.Size, "chunk-size", rag.DefaultChunkOptions.Size, "chunk length in characters (runes)")
	f.IntVar(&opt.Chunk.Overlap, "chunk-overlap", rag.DefaultChunkOptions.Overlap, "characters shared by consecutive chunks")
	f.IntVar(&opt.BatchSize, "batch", rag.MaxBatch, "chunks per embeddings call (1-64)")
	f.IntVar(&opt.BatchRunes, "batch-chars", 8000, "most characters per embeddings call (embedding-2 takes ~8K tokens per call)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// cliProgressBar renders "[#####.....] 120/400 chunks".
func cliProgressBar(done, total, width int) string {
	if total <= 0 {
		total = 1
	}
	n := min(width, done*width/total)
	return fmt.Sprintf("embedding [%s%s] %d/%d chunks", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total)
}

// cliRagSearchFlags are shared by search and ask.
type cliRagSearchFlags struct {
	conn       cliClientFlags
	index      string
	embedModel string
	dims       int
	k          int
}

func (s *cliRagSearchFlags) register(cmd *cobra.Command, k int) {
	s.conn.register(cmd)
	f := cmd.Flags()
	f.StringVar(&s.index, "index", cliDefaultIndex, "index file")
	f.StringVar(&s.embedModel, "embed-model", "", "embedding model for the query: the one the index was built with (the default); another is refused")
	f.IntVar(&s.dims, "dimensions", 0, "vector size for embedding-3 queries (must match the index)")
	f.IntVarP(&s.k, "k", "k", k, "number of chunks to retrieve")
}

// search loads the index and returns the top hits for query.
func (s *cliRagSearchFlags) search(cmd *cobra.Command, query string) ([]rag.Hit, *rag.Index, error) {
	if strings.TrimSpace(query) == "" {
		return nil, nil, errors.New("the query is empty")
	}
	if s.k < 1 {
		return nil, nil, errors.New("-k must be at least 1")
	}
	ix, err := rag.LoadIndex(s.index)
	if err != nil {
		return nil, nil, err
	}
	if ix.Len() == 0 {
		return nil, nil, fmt.Errorf("the index %s holds no chunks yet: run `glm rag index PATH...`", s.index)
	}
	model := s.embedModel
	if model == "" {
		model = ix.Model
	}
	if err := ix.CheckQueryModel(model, ""); err != nil {
		return nil, nil, err
	}
	client, err := s.conn.client()
	if err != nil {
		return nil, nil, err
	}
	dims := s.dims
	if dims == 0 && model == ix.Model && strings.HasPrefix(model, "embedding-3") {
		dims = ix.Dims // the query must be embedded at the index's size
	}
	q, answered, err := rag.QueryAs(cmd.Context(), rag.ClientEmbedder{Client: client, Model: model, Dimensions: dims}, model, query)
	if err != nil {
		return nil, nil, s.conn.explain(err)
	}
	if err := ix.CheckQueryModel(model, answered); err != nil {
		return nil, nil, err
	}
	hits, err := ix.Search(q, s.k)
	return hits, ix, err
}

type cliHitJSON struct {
	Similarity float64 `json:"similarity"`
	File       string  `json:"file"`
	Chunk      int     `json:"chunk"`
	Text       string  `json:"text"`
}

func cliHitsJSON(hits []rag.Hit) []cliHitJSON {
	out := make([]cliHitJSON, len(hits))
	for i, h := range hits {
		out[i] = cliHitJSON{Similarity: float64(h.Score), File: rag.DisplayPath(h.Chunk.File), Chunk: h.Chunk.Seq + 1, Text: h.Chunk.Text}
	}
	return out
}

func newRagSearchCmd() *cobra.Command {
	var (
		s      cliRagSearchFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "search QUERY...",
		Short: "Print the chunks most similar to QUERY (like the tutorial's match_text)",
		Example: `  glm rag search -k 2 "VideoAnalytica dataset"
  similarity: 0.5244
  matching text:
  ...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			hits, _, err := s.search(cmd, strings.Join(args, " "))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return cliWriteJSON(out, cliHitsJSON(hits))
			}
			for _, h := range hits {
				if err := rag.FormatHit(out, h); err != nil {
					return err
				}
			}
			return nil
		},
	}
	s.register(cmd, 2)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the hits as JSON")
	return cmd
}

func newRagAskCmd() *cobra.Command {
	var (
		s      cliRagSearchFlags
		model  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ask QUESTION...",
		Short: "Answer QUESTION with GLM-4 from the retrieved chunks, citing them as [n]",
		Example: `  glm rag ask "澜港地铁有几条线路？"
  glm rag ask -k 6 --model glm-4-plus "How is the VideoAnalytica dataset scored?"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			question := strings.Join(args, " ")
			hits, _, err := s.search(cmd, question)
			if err != nil {
				return err
			}
			client, err := s.conn.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			w := out
			if asJSON {
				w = io.Discard
			}
			answer, cited, err := rag.Ask(cmd.Context(), client, model, question, hits, w)
			if err != nil {
				return s.conn.explain(err)
			}
			if asJSON {
				type source struct {
					N int `json:"n"`
					cliHitJSON
				}
				var srcs []source
				all := cliHitsJSON(hits)
				for _, n := range cited {
					srcs = append(srcs, source{n, all[n-1]})
				}
				return cliWriteJSON(out, map[string]any{"answer": answer, "sources": srcs, "retrieved": all})
			}
			fmt.Fprint(out, "\n\n")
			if len(cited) == 0 {
				fmt.Fprintln(out, "Sources: (the answer cites none of the retrieved chunks)")
				for i, h := range hits {
					fmt.Fprintf(out, "  retrieved [%d] %s (similarity %.4f)\n", i+1, rag.Source(h), h.Score)
				}
				return nil
			}
			fmt.Fprintln(out, "Sources:")
			for _, n := range cited {
				fmt.Fprintf(out, "[%d] %s (similarity %.4f)\n", n, rag.Source(hits[n-1]), hits[n-1].Score)
			}
			return nil
		},
	}
	s.register(cmd, 4)
	cmd.Flags().StringVar(&model, "model", "glm-4", "chat model that writes the answer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the answer and its sources as JSON (no streaming)")
	return cmd
}
