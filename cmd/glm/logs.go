package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
)

const logsExample = `  # what failed in the last hour, with the cause
  glm logs --status 5xx --since "$(date -d '1 hour ago' '+%Y-%m-%d %H:%M:%S')"
  # every 502 of one account
  glm logs --status 502 --account acme
  # the row of a response: its request_id, or the X-Request-Id header
  glm logs --request-id 8c6f1e0a2b3d4c5e
  # the last 20 rows of a key, as JSON
  glm logs --key 0123456789abcdef0123456789abcdef --limit 20 --json`

// logView is the --json form of a request-log row.
type logView struct {
	ID               string `json:"id"`
	RequestID        string `json:"request_id"`
	CreatedAt        string `json:"created_at"`
	AccountID        string `json:"account_id"`
	KeyID            string `json:"key_id"`
	Model            string `json:"model"`
	Endpoint         string `json:"endpoint"`
	Stream           bool   `json:"stream"`
	HTTPStatus       int    `json:"http_status"`
	ErrorCode        string `json:"error_code,omitempty"`
	ErrorDetail      string `json:"error_detail,omitempty"`
	Backend          string `json:"backend,omitempty"`
	LatencyMS        int64  `json:"latency_ms"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	Estimated        bool   `json:"estimated,omitempty"`
	ChargeMicros     int64  `json:"charge_micros"`
}

func logViews(rows []platform.RequestLog) []logView {
	out := make([]logView, 0, len(rows))
	for _, r := range rows {
		out = append(out, logView{ID: r.ID, RequestID: r.RequestID, CreatedAt: r.CreatedAt.In(showZone()).Format(time.RFC3339Nano),
			AccountID: r.AccountID, KeyID: r.KeyID, Model: r.Model, Endpoint: r.Endpoint, Stream: r.Stream,
			HTTPStatus: r.HTTPStatus, ErrorCode: r.ErrorCode, ErrorDetail: r.ErrorDetail, Backend: r.Backend,
			LatencyMS: r.LatencyMS, PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens,
			Estimated: r.Estimated, ChargeMicros: int64(r.Charge.Amount)})
	}
	return out
}

// parseStatus reads --status: an HTTP status (502) or a class (5xx).
func parseStatus(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) == 3 && strings.HasSuffix(strings.ToLower(s), "xx") && s[0] >= '1' && s[0] <= '5' {
		return int(s[0] - '0'), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 599 {
		return 0, fmt.Errorf("--status %q: want an HTTP status (502) or a class (5xx)", s)
	}
	return n, nil
}

func newLogsCmd() *cobra.Command {
	var sf storeFlags
	var q store.LogQuery
	var status, since, until string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Read the request log: who called what, the status, the backend and why it failed",
		Long: "Every API request and every async task run leaves one row, newest first here. A failed\n" +
			"row shows its V4 code and the cause the server saw (ERROR), which a client never sees.\n" +
			"--request-id finds a row by the server's X-Request-Id or by the request_id of the\n" +
			"request or its response. Times are in $" + envTZ + " (default UTC+08:00).",
		Example: logsExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if q.Status, err = parseStatus(status); err != nil {
				return err
			}
			if since != "" {
				if q.Since, err = parseWhen("--since", since); err != nil {
					return err
				}
			}
			if until != "" {
				if q.Until, err = parseWhen("--until", until); err != nil {
					return err
				}
			}
			if q.Limit < 0 {
				return fmt.Errorf("--limit must not be negative, got %d", q.Limit)
			}
			ctx := cmd.Context()
			return sf.withStore(ctx, func(s *store.SQL) error {
				rows, err := s.QueryRequestLogs(ctx, q)
				if err != nil {
					return err
				}
				return printList(cmd.OutOrStdout(), asJSON, logViews(rows),
					"TIME\tID\tREQUEST ID\tACCOUNT\tMODEL\tENDPOINT\tSTATUS\tCODE\tBACKEND\tMS\tTOKENS\tERROR", func(tw io.Writer) {
						for _, r := range rows {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%s\n", showTime(r.CreatedAt), r.ID,
								dash(r.RequestID), dash(r.AccountID), dash(r.Model), r.Endpoint, r.HTTPStatus, dash(r.ErrorCode),
								dash(r.Backend), r.LatencyMS, r.Usage.TotalTokens, dash(r.ErrorDetail))
						}
					})
			})
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&q.AccountID, "account", "", "only this account")
	f.StringVar(&q.KeyID, "key", "", "only this key id (see glm keys list)")
	f.StringVar(&q.Model, "model", "", "only this model")
	f.StringVar(&status, "status", "", "only this HTTP status (502) or class (4xx, 5xx)")
	f.StringVar(&q.Code, "code", "", "only this V4 error code (1113, 1234, …)")
	f.StringVar(&q.RequestID, "request-id", "", "the row of this request: its X-Request-Id or its request_id")
	f.StringVar(&since, "since", "", "from this time on (YYYY-MM-DD[ hh:mm:ss] in $"+envTZ+", or RFC 3339)")
	f.StringVar(&until, "until", "", "before this time")
	f.IntVar(&q.Limit, "limit", 50, "at most this many rows, newest first (0 = all)")
	f.BoolVar(&asJSON, "json", false, "print JSON (with the full error detail and the charge in micros, 1e-6 CNY)")
	return cmd
}

// dash shows an empty cell as "-", so columns stay aligned for readers
// that split on whitespace.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
