package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Retention of the request log: old rows are folded into one row per day
// (request_log_daily, migration 0005) and deleted in the same transaction,
// a small batch at a time, while the server keeps writing new rows.

// DefaultRollUpBatch is the number of rows one roll-up transaction moves:
// small enough that SQLite's one writer is free again within milliseconds.
const DefaultRollUpBatch = 1000

// RollUpOptions say which rows a roll-up moves and how.
type RollUpOptions struct {
	// Before is the cut-off: rows created before it are rolled up.
	Before time.Time
	// Zone is the zone days are cut in (the billing zone, so a day of the
	// request log is a day of the bills). Required.
	Zone *time.Location
	// Batch is the rows per transaction (DefaultRollUpBatch when < 1).
	Batch int
	// Pause is waited between transactions, so that a long roll-up leaves
	// the database to the server's own writes.
	Pause time.Duration
}

func (o RollUpOptions) batch() int {
	if o.Batch < 1 {
		return DefaultRollUpBatch
	}
	return o.Batch
}

// RollUpResult is what a roll-up did.
type RollUpResult struct {
	// Rows were folded into days and deleted.
	Rows int64
	// Batches is the number of transactions that moved rows.
	Batches int
}

// RequestLogDay is one roll-up row: the requests of one account's key on
// one model and endpoint, on one day, that ended with one HTTP status and
// V4 code. Every count and sum adds the rows it replaced.
type RequestLogDay struct {
	Day              string `json:"day"` // YYYY-MM-DD in the roll-up's zone
	AccountID        string `json:"account_id"`
	KeyID            string `json:"key_id"`
	Model            string `json:"model"`
	Endpoint         string `json:"endpoint"`
	HTTPStatus       int    `json:"http_status"`
	ErrorCode        string `json:"error_code"` // "" = success
	Requests         int64  `json:"requests"`
	Streams          int64  `json:"streams"`
	Estimated        int64  `json:"estimated"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	TotalTokens      int64  `json:"total_tokens"`
	Images           int64  `json:"images"`
	LatencyMS        int64  `json:"latency_ms"` // sum; the mean is LatencyMS / Requests
	ChargeAmount     int64  `json:"charge_amount"`
}

type logDayKey struct {
	day, account, key, model, endpoint string
	status                             int
	code                               string
}

func (d *RequestLogDay) key() logDayKey {
	return logDayKey{d.Day, d.AccountID, d.KeyID, d.Model, d.Endpoint, d.HTTPStatus, d.ErrorCode}
}

func (d *RequestLogDay) add(o *RequestLogDay) {
	d.Requests += o.Requests
	d.Streams += o.Streams
	d.Estimated += o.Estimated
	d.PromptTokens += o.PromptTokens
	d.CompletionTokens += o.CompletionTokens
	d.TotalTokens += o.TotalTokens
	d.Images += o.Images
	d.LatencyMS += o.LatencyMS
	d.ChargeAmount += o.ChargeAmount
}

// logDays adds rows into days keyed the roll-up's way.
type logDays map[logDayKey]*RequestLogDay

func (m logDays) add(d RequestLogDay) {
	k := d.key()
	if cur := m[k]; cur != nil {
		cur.add(&d)
		return
	}
	m[k] = &d
}

// sorted returns the days in key order: the order roll-ups write them in,
// so two concurrent roll-ups lock day rows in one order.
func (m logDays) sorted() []RequestLogDay {
	out := make([]RequestLogDay, 0, len(m))
	for _, d := range m {
		out = append(out, *d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key().less(out[j].key()) })
	return out
}

func (a logDayKey) less(b logDayKey) bool {
	return cmp.Or(cmp.Compare(a.day, b.day), cmp.Compare(a.account, b.account), cmp.Compare(a.key, b.key),
		cmp.Compare(a.model, b.model), cmp.Compare(a.endpoint, b.endpoint), cmp.Compare(a.status, b.status),
		cmp.Compare(a.code, b.code)) < 0
}

// dayRowColumns are the request-log columns a day adds up.
const dayRowColumns = `created_at, account_id, key_id, model, endpoint, http_status, error_code, stream, estimated,
	prompt_tokens, completion_tokens, total_tokens, images, latency_ms, charge_amount`

// scanDayRow reads one row of dayRowColumns as a one-request day.
func scanDayRow(rows *sql.Rows, zone *time.Location) (RequestLogDay, error) {
	var d RequestLogDay
	var created int64
	if err := rows.Scan(&created, &d.AccountID, &d.KeyID, &d.Model, &d.Endpoint, &d.HTTPStatus, &d.ErrorCode,
		&d.Streams, &d.Estimated, &d.PromptTokens, &d.CompletionTokens, &d.TotalTokens, &d.Images, &d.LatencyMS,
		&d.ChargeAmount); err != nil {
		return RequestLogDay{}, err
	}
	d.Day = time.UnixMilli(created).In(zone).Format(time.DateOnly)
	d.Requests = 1
	return d, nil
}

// RollUpRequestLogs folds request-log rows created before o.Before into
// their days and deletes them, o.Batch rows per transaction, until none
// is left. A row's deletion and its addition to its day commit together,
// and only the rows the DELETE itself removed are added, so a request is
// counted exactly once even when the job dies midway or two replicas roll
// up at the same time.
func (s *SQL) RollUpRequestLogs(ctx context.Context, o RollUpOptions) (RollUpResult, error) {
	var res RollUpResult
	if o.Zone == nil {
		return res, errors.New("store: roll up request log: no zone")
	}
	for {
		n, err := s.rollUpLogBatch(ctx, o)
		if err != nil {
			return res, fmt.Errorf("store: roll up request log: %w", err)
		}
		if n == 0 {
			return res, nil
		}
		res.Rows += int64(n)
		res.Batches++
		if err := platform.Pause(ctx, o.Pause); err != nil {
			return res, err
		}
	}
}

// rollUpLogBatch moves one batch and returns how many rows it deleted.
func (s *SQL) rollUpLogBatch(ctx context.Context, o RollUpOptions) (int, error) {
	var n int
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		rows, err := tx.QueryContext(ctx, `DELETE FROM request_log WHERE id IN (SELECT id FROM request_log WHERE created_at < $1
			ORDER BY created_at, id LIMIT $2) RETURNING `+dayRowColumns, ms(o.Before), o.batch())
		if err != nil {
			return err
		}
		days := logDays{}
		for rows.Next() {
			d, err := scanDayRow(rows, o.Zone)
			if err != nil {
				rows.Close()
				return err
			}
			days.add(d)
			n++
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return addLogDays(ctx, tx, days.sorted())
	})
	return n, err
}

// addLogDays adds days to request_log_daily, creating the missing ones.
func addLogDays(ctx context.Context, tx *sql.Tx, days []RequestLogDay) error {
	if len(days) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO request_log_daily (day, account_id, key_id, model, endpoint, http_status,
		error_code, requests, streams, estimated, prompt_tokens, completion_tokens, total_tokens, images, latency_ms, charge_amount)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (day, account_id, key_id, model, endpoint, http_status, error_code) DO UPDATE SET
		requests = request_log_daily.requests + excluded.requests,
		streams = request_log_daily.streams + excluded.streams,
		estimated = request_log_daily.estimated + excluded.estimated,
		prompt_tokens = request_log_daily.prompt_tokens + excluded.prompt_tokens,
		completion_tokens = request_log_daily.completion_tokens + excluded.completion_tokens,
		total_tokens = request_log_daily.total_tokens + excluded.total_tokens,
		images = request_log_daily.images + excluded.images,
		latency_ms = request_log_daily.latency_ms + excluded.latency_ms,
		charge_amount = request_log_daily.charge_amount + excluded.charge_amount`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, d := range days {
		if _, err := stmt.ExecContext(ctx, d.Day, d.AccountID, d.KeyID, d.Model, d.Endpoint, d.HTTPStatus, d.ErrorCode,
			d.Requests, d.Streams, d.Estimated, d.PromptTokens, d.CompletionTokens, d.TotalTokens, d.Images, d.LatencyMS,
			d.ChargeAmount); err != nil {
			return err
		}
	}
	return nil
}

// RequestLogDayFilter selects days of the request log.
type RequestLogDayFilter struct {
	AccountID string
	// From and To bound the days (YYYY-MM-DD, From inclusive, To
	// exclusive); "" leaves that side open.
	From, To string
	// Zone is the zone days are cut in: the roll-up's. Required.
	Zone *time.Location
}

// RequestLogDays reports the request log by day, oldest first: the
// roll-ups plus the rows not rolled up yet, added up the same way, so a
// day's figures are the same before, during and after its roll-up.
func (s *SQL) RequestLogDays(ctx context.Context, f RequestLogDayFilter) ([]RequestLogDay, error) {
	if f.Zone == nil {
		return nil, errors.New("store: request log days: no zone")
	}
	// One snapshot for both tables, or a batch committing in between
	// would be missed or counted twice.
	tx, err := s.db.BeginTx(ctx, s.dialect.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("store: request log days: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	days := logDays{}
	if err := readLogDays(ctx, tx, f, days); err != nil {
		return nil, fmt.Errorf("store: request log days: %w", err)
	}
	if err := readLogRows(ctx, tx, f, days); err != nil {
		return nil, fmt.Errorf("store: request log days: %w", err)
	}
	return days.sorted(), nil
}

func readLogDays(ctx context.Context, tx *sql.Tx, f RequestLogDayFilter, days logDays) error {
	q := `SELECT day, account_id, key_id, model, endpoint, http_status, error_code, requests, streams, estimated,
		prompt_tokens, completion_tokens, total_tokens, images, latency_ms, charge_amount FROM request_log_daily WHERE 1 = 1`
	var args []any
	where := func(cond string, v any) { q += ` AND ` + cond + ` ` + Arg(&args, v) }
	if f.AccountID != "" {
		where("account_id =", f.AccountID)
	}
	if f.From != "" {
		where("day >=", f.From)
	}
	if f.To != "" {
		where("day <", f.To)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var d RequestLogDay
		if err := rows.Scan(&d.Day, &d.AccountID, &d.KeyID, &d.Model, &d.Endpoint, &d.HTTPStatus, &d.ErrorCode,
			&d.Requests, &d.Streams, &d.Estimated, &d.PromptTokens, &d.CompletionTokens, &d.TotalTokens, &d.Images,
			&d.LatencyMS, &d.ChargeAmount); err != nil {
			return err
		}
		days.add(d)
	}
	return rows.Err()
}

func readLogRows(ctx context.Context, tx *sql.Tx, f RequestLogDayFilter, days logDays) error {
	q := `SELECT ` + dayRowColumns + ` FROM request_log WHERE 1 = 1`
	var args []any
	where := func(cond string, v any) { q += ` AND ` + cond + ` ` + Arg(&args, v) }
	if f.AccountID != "" {
		where("account_id =", f.AccountID)
	}
	for _, b := range []struct{ day, cond string }{{f.From, "created_at >="}, {f.To, "created_at <"}} {
		if b.day == "" {
			continue
		}
		t, err := time.ParseInLocation(time.DateOnly, b.day, f.Zone)
		if err != nil {
			return fmt.Errorf("day %q: want YYYY-MM-DD", b.day)
		}
		where(b.cond, t.UnixMilli())
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		d, err := scanDayRow(rows, f.Zone)
		if err != nil {
			return err
		}
		days.add(d)
	}
	return rows.Err()
}
