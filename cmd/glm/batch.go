package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/zhipuai"
)

// glm batch: the Batch API from the command line (docs/v4.md §12). Every
// subcommand but `list --account` talks V4 through the SDK, so it works
// against the cloud and glm serve alike; `list --account` is the
// operator's view of the database.

func newBatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Run a JSONL file of requests as a batch (at the batch price) and fetch its results",
		Example: `  glm batch submit requests.jsonl --wait -o results.jsonl
  glm batch status batch_20260301120000a1b2c3d4e5f60718`,
	}
	cmd.AddCommand(newBatchSubmitCmd(), newBatchStatusCmd(), newBatchListCmd(), newBatchCancelCmd(), newBatchOutputCmd())
	return cmd
}

func newBatchSubmitCmd() *cobra.Command {
	var (
		conn     cliClientFlags
		endpoint string
		wait     bool
		output   string
		poll     time.Duration
		meta     []string
		keep     bool
	)
	cmd := &cobra.Command{
		Use:   "submit FILE.jsonl",
		Short: "Upload a JSONL file, create a batch from it, and with --wait write its results",
		Long: `glm batch submit uploads FILE.jsonl (purpose batch) and creates a batch over it.
Each line is {"custom_id", "method": "POST", "url", "body"}; one batch runs one
endpoint (--endpoint, default: the url of the first line). With --wait it shows
progress (a bar on a terminal, a line per change otherwise) and writes the
output file (-o, default FILE.output.jsonl) and, when lines failed, the error
file beside it (.errors.jsonl).`,
		Example: `  glm batch submit reviews.jsonl --wait
  glm batch submit vectors.jsonl --endpoint /v1/embeddings --metadata job=nightly`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			content, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("FILE.jsonl: %w", err)
			}
			if endpoint == "" {
				if endpoint, err = firstURL(content); err != nil {
					return err
				}
			}
			if platform.BatchOp(endpoint) == "" {
				return fmt.Errorf("--endpoint %q: use /v1/chat/completions or /v1/embeddings", endpoint)
			}
			md := map[string]string{}
			for _, kv := range meta {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--metadata %q: want KEY=VALUE", kv)
				}
				md[k] = v
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			ctx, out, errOut := cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr()
			f, err := client.Files.Create(ctx, zhipuai.FileCreateParams{File: bytes.NewReader(content), Filename: filepath.Base(args[0]), Purpose: zhipuai.FilePurposeBatch})
			if err != nil {
				return conn.explain(err)
			}
			autoDelete := !keep
			b, err := client.Batches.Create(ctx, zhipuai.BatchCreateParams{InputFileID: f.ID, Endpoint: endpoint, CompletionWindow: "24h",
				Metadata: md, AutoDeleteInputFile: &autoDelete})
			if err != nil {
				return conn.explain(err)
			}
			fmt.Fprintf(errOut, "batch %s: %d lines (%d refused at validation)\n", b.ID, b.RequestCounts.Total, b.RequestCounts.Failed)
			if !wait {
				fmt.Fprintln(out, b.ID)
				return nil
			}
			if b, err = waitForBatch(ctx, client, b.ID, poll, batchProgress(errOut, cliIsTerminal(errOut))); err != nil {
				return conn.explain(err)
			}
			if output == "" {
				output = strings.TrimSuffix(args[0], filepath.Ext(args[0])) + ".output.jsonl"
			}
			return writeBatchFiles(ctx, client, &conn, b, output, out)
		},
	}
	conn.register(cmd)
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "endpoint of every line: /v1/chat/completions or /v1/embeddings (default: the first line's url)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the batch to finish and write its output file")
	cmd.Flags().StringVarP(&output, "output", "o", "", "with --wait: where to write the output JSONL (default FILE.output.jsonl)")
	cmd.Flags().DurationVar(&poll, "poll", 2*time.Second, "with --wait: how often to ask for progress")
	cmd.Flags().StringArrayVar(&meta, "metadata", nil, "KEY=VALUE metadata of the batch (repeatable)")
	cmd.Flags().BoolVar(&keep, "keep-input", false, "keep the uploaded input file after the batch (default: deleted, as the SDKs ask)")
	return cmd
}

// firstURL is the url of the first line of a batch file.
func firstURL(content []byte) (string, error) {
	for _, line := range bytes.Split(content, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l zhipuai.BatchRequestLine
		if err := json.Unmarshal(line, &l); err != nil || l.URL == "" {
			return "", errors.New("FILE.jsonl: the first line has no url; pass --endpoint")
		}
		return l.URL, nil
	}
	return "", errors.New("FILE.jsonl: the file has no lines")
}

// waitForBatch polls a batch until it is done, reporting each poll.
func waitForBatch(ctx context.Context, c *zhipuai.Client, id string, poll time.Duration, progress func(*zhipuai.Batch)) (*zhipuai.Batch, error) {
	if poll <= 0 {
		poll = 2 * time.Second
	}
	defer progress(nil)
	for {
		b, err := c.Batches.Retrieve(ctx, id)
		if err != nil {
			return nil, err
		}
		progress(b)
		if b.Done() {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// batchProgress draws a bar on a terminal and prints a line per change
// otherwise.
func batchProgress(w io.Writer, tty bool) func(*zhipuai.Batch) {
	last := ""
	return func(b *zhipuai.Batch) {
		if b == nil {
			if tty {
				fmt.Fprintln(w)
			}
			return
		}
		rc := b.RequestCounts
		if rc == nil {
			rc = &zhipuai.BatchRequestCounts{}
		}
		done := rc.Completed + rc.Failed
		if tty {
			const width = 30
			fill := 0
			if rc.Total > 0 {
				fill = width * done / rc.Total
			}
			fmt.Fprintf(w, "\r[%s%s] %d/%d (%d failed) %s ", strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, rc.Total, rc.Failed, b.Status)
			return
		}
		line := fmt.Sprintf("%s: %d/%d done, %d failed", b.Status, done, rc.Total, rc.Failed)
		if line != last {
			fmt.Fprintln(w, line)
			last = line
		}
	}
}

// writeBatchFiles writes a finished batch's output file, and its error
// file beside it when there is one.
func writeBatchFiles(ctx context.Context, c *zhipuai.Client, conn *cliClientFlags, b *zhipuai.Batch, output string, out io.Writer) error {
	if b.Status != zhipuai.BatchStatusCompleted {
		fmt.Fprintf(out, "batch %s ended %s\n", b.ID, b.Status)
	}
	if b.OutputFileID != nil {
		if err := downloadTo(ctx, c, conn, *b.OutputFileID, output); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (%d results)\n", output, b.RequestCounts.Completed)
	}
	if b.ErrorFileID != nil {
		errPath := strings.TrimSuffix(output, ".output.jsonl")
		errPath = strings.TrimSuffix(errPath, filepath.Ext(errPath)) + ".errors.jsonl"
		if err := downloadTo(ctx, c, conn, *b.ErrorFileID, errPath); err != nil {
			return err
		}
		fmt.Fprintf(out, "wrote %s (%d failed lines)\n", errPath, b.RequestCounts.Failed)
	}
	return nil
}

func downloadTo(ctx context.Context, c *zhipuai.Client, conn *cliClientFlags, fileID, path string) error {
	b, err := c.Files.Content(ctx, fileID)
	if err != nil {
		return conn.explain(err)
	}
	if path == "-" {
		_, err := os.Stdout.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("-o %s: %w", path, err)
	}
	return nil
}

func newBatchStatusCmd() *cobra.Command {
	var (
		conn   cliClientFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:     "status BATCH_ID",
		Short:   "Show a batch's status and progress",
		Example: `  glm batch status batch_20260301120000a1b2c3d4e5f60718 --json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := conn.client()
			if err != nil {
				return err
			}
			b, err := client.Batches.Retrieve(cmd.Context(), args[0])
			if err != nil {
				return conn.explain(err)
			}
			if asJSON {
				return cliWriteJSON(cmd.OutOrStdout(), b)
			}
			printBatch(cmd.OutOrStdout(), b)
			return nil
		},
	}
	conn.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the Batch object as JSON")
	return cmd
}

func printBatch(w io.Writer, b *zhipuai.Batch) {
	rc := b.RequestCounts
	if rc == nil {
		rc = &zhipuai.BatchRequestCounts{}
	}
	str := func(p *string) string {
		if p == nil {
			return "-"
		}
		return *p
	}
	fmt.Fprintf(w, "%s  %s  %s  %d/%d done, %d failed  output %s  errors %s  created %s\n", b.ID, b.Status, b.Endpoint,
		rc.Completed+rc.Failed, rc.Total, rc.Failed, str(b.OutputFileID), str(b.ErrorFileID), time.Unix(b.CreatedAt, 0).Format(time.DateTime))
}

func newBatchListCmd() *cobra.Command {
	var (
		conn    cliClientFlags
		sf      storeFlags
		account string
		after   string
		limit   int
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your batches, newest first (the operator: --account ACCT reads the database)",
		Example: `  glm batch list --limit 5
  glm batch list --account default --db .glmkit/glm.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if limit < 1 || limit > 100 {
				return fmt.Errorf("--limit must be from 1 to 100, got %d", limit)
			}
			if account != "" {
				return sf.withStore(cmd.Context(), func(s *store.SQL) error {
					bs, err := s.ListBatches(cmd.Context(), platform.BatchQuery{AccountID: account, After: after, Limit: limit})
					if err != nil {
						return err
					}
					for _, b := range bs {
						if asJSON {
							if err := cliWriteJSONLine(out, b); err != nil {
								return err
							}
							continue
						}
						fmt.Fprintf(out, "%s  %s  %s  %s  %d/%d done, %d failed  created %s\n", b.ID, b.AccountID, b.Status, b.Endpoint,
							b.Completed+b.Failed, b.Total, b.Failed, b.CreatedAt.Format(time.DateTime))
					}
					return nil
				})
			}
			client, err := conn.client()
			if err != nil {
				return err
			}
			page, err := client.Batches.List(cmd.Context(), zhipuai.BatchListParams{After: after, Limit: limit})
			if err != nil {
				return conn.explain(err)
			}
			if asJSON {
				return cliWriteJSON(out, page)
			}
			for i := range page.Data {
				printBatch(out, &page.Data[i])
			}
			if page.HasMore {
				fmt.Fprintf(cmd.ErrOrStderr(), "more: glm batch list --after %s\n", page.LastID)
			}
			return nil
		},
	}
	conn.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&account, "account", "", "operator: list this account's batches from the database (--db, --data-dir)")
	cmd.Flags().StringVar(&after, "after", "", "start after this batch id (the last of the previous page)")
	cmd.Flags().IntVar(&limit, "limit", 20, "batches per page (1–100)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newBatchCancelCmd() *cobra.Command {
	var conn cliClientFlags
	cmd := &cobra.Command{
		Use:     "cancel BATCH_ID",
		Short:   "Cancel a batch: no new line starts; running lines finish; the output so far is kept",
		Example: `  glm batch cancel batch_20260301120000a1b2c3d4e5f60718`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := conn.client()
			if err != nil {
				return err
			}
			b, err := client.Batches.Cancel(cmd.Context(), args[0])
			if err != nil {
				return conn.explain(err)
			}
			printBatch(cmd.OutOrStdout(), b)
			return nil
		},
	}
	conn.register(cmd)
	return cmd
}

func newBatchOutputCmd() *cobra.Command {
	var (
		conn   cliClientFlags
		output string
		errs   bool
	)
	cmd := &cobra.Command{
		Use:   "output BATCH_ID",
		Short: "Write a finished batch's output file (--errors: its error file)",
		Example: `  glm batch output batch_20260301120000a1b2c3d4e5f60718 -o results.jsonl
  glm batch output batch_20260301120000a1b2c3d4e5f60718 --errors`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := conn.client()
			if err != nil {
				return err
			}
			b, err := client.Batches.Retrieve(cmd.Context(), args[0])
			if err != nil {
				return conn.explain(err)
			}
			id := b.OutputFileID
			what := "output"
			if errs {
				id, what = b.ErrorFileID, "error"
			}
			if id == nil {
				if !b.Done() {
					return fmt.Errorf("batch %s is %s: its files are written when it finishes (glm batch status %s)", b.ID, b.Status, b.ID)
				}
				return fmt.Errorf("batch %s (%s) has no %s file", b.ID, b.Status, what)
			}
			if output == "" || output == "-" {
				data, err := client.Files.Content(cmd.Context(), *id)
				if err != nil {
					return conn.explain(err)
				}
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return downloadTo(cmd.Context(), client, &conn, *id, output)
		},
	}
	conn.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (default: standard output)")
	cmd.Flags().BoolVar(&errs, "errors", false, "the error file (lines that failed) instead of the output file")
	return cmd
}
