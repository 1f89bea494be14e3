package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// LogQuery selects request-log rows for the operator (glm logs): every
// field set narrows the result; rows come newest first.
type LogQuery struct {
	AccountID string
	KeyID     string
	Model     string
	// Status is an HTTP status (502) or, below 10, a class (5 = 5xx).
	Status int
	// Code is a V4 error code ("1234").
	Code string
	// RequestID matches the server's id (X-Request-Id) or the client's
	// request_id, so either id a client holds finds its row.
	RequestID string
	Since     time.Time
	Until     time.Time
	Limit     int // 0 = no limit
}

// QueryRequestLogs reads the rows q selects, newest first.
func (s *SQL) QueryRequestLogs(ctx context.Context, q LogQuery) ([]platform.RequestLog, error) {
	sqlText := `SELECT ` + logColumns + ` FROM request_log WHERE 1 = 1`
	var args []any
	where := func(cond string, v any) { sqlText += ` AND ` + cond + ` ` + Arg(&args, v) }
	if q.AccountID != "" {
		where("account_id =", q.AccountID)
	}
	if q.KeyID != "" {
		where("key_id =", q.KeyID)
	}
	if q.Model != "" {
		where("model =", q.Model)
	}
	switch {
	case q.Status >= 100:
		where("http_status =", q.Status)
	case q.Status > 0:
		where("http_status >=", q.Status*100)
		where("http_status <", (q.Status+1)*100)
	}
	if q.Code != "" {
		where("error_code =", q.Code)
	}
	if q.RequestID != "" {
		p := Arg(&args, q.RequestID)
		sqlText += ` AND (id = ` + p + ` OR request_id = ` + p + `)`
	}
	if !q.Since.IsZero() {
		where("created_at >=", ms(q.Since))
	}
	if !q.Until.IsZero() {
		where("created_at <", ms(q.Until))
	}
	sqlText += ` ORDER BY created_at DESC, id DESC`
	if q.Limit > 0 {
		sqlText += ` LIMIT ` + Arg(&args, q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, sqlText, args...)
	if err != nil {
		return nil, fmt.Errorf("store: query request log: %w", err)
	}
	out, err := scanLogRows(rows)
	if err != nil {
		return nil, fmt.Errorf("store: query request log: %w", err)
	}
	return out, nil
}

// scanLogRows reads rows of logColumns and closes them.
func scanLogRows(rows *sql.Rows) ([]platform.RequestLog, error) {
	defer rows.Close()
	var out []platform.RequestLog
	for rows.Next() {
		var r platform.RequestLog
		var created int64
		var stream, estimated int
		if err := rows.Scan(&r.ID, &r.RequestID, &created, &r.AccountID, &r.KeyID, &r.Model, &r.Endpoint, &stream,
			&r.Usage.PromptTokens, &r.Usage.CompletionTokens, &r.Usage.TotalTokens, &r.LatencyMS, &r.HTTPStatus,
			&r.Backend, &r.Charge.Amount, &r.Charge.PaidBy, &r.Usage.Images, &estimated, &r.ErrorCode,
			&r.ErrorDetail); err != nil {
			return nil, err
		}
		r.CreatedAt, r.Stream, r.Estimated = fromMS(created), stream == 1, estimated == 1
		out = append(out, r)
	}
	return out, rows.Err()
}
