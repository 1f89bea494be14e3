package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// The request log by day (request_log_daily, migrations 0005 and 0011):
// every request-log insert adds its rows to their days in the same
// transaction, so a day holds exactly the rows ever stored for it, whether
// retention has deleted the raw rows since or not. The usage page, its
// charts and glm's day reports read days — a few rows per day, key and
// model — never the raw log (docs/design.md §3 "Request-log days").

// dayMS is a day in milliseconds; billingOffsetMS moves a Unix time to the
// billing zone (UTC+8, no daylight saving), where request-log days are cut
// (migration 0005), so a day of the log is a day of the bills.
const (
	dayMS           = 86_400_000
	billingOffsetMS = 8 * 3_600_000
)

// logDay is the billing day of a Unix time in milliseconds, YYYY-MM-DD.
// Integer arithmetic, as migration 0011's backfill does it. Almost every
// row of a batch falls on the day the last one did, so that day's text is
// kept and reused: a formatted string per request-log row was one of the
// write path's allocations.
func logDay(createdMS int64) string {
	start := (createdMS + billingOffsetMS) / dayMS * dayMS
	if d := lastLogDay.Load(); d != nil && d.start == start {
		return d.text
	}
	text := time.UnixMilli(start).UTC().Format(time.DateOnly)
	lastLogDay.Store(&dayText{start, text})
	return text
}

// dayText is a day's start (as logDay computes it) and its text.
type dayText struct {
	start int64
	text  string
}

// lastLogDay is the day logDay formatted last.
var lastLogDay atomic.Pointer[dayText]

// RequestLogDay is one roll-up row: the requests of one account's key on
// one model and endpoint, on one day, that ended with one HTTP status and
// V4 code. Every count and sum adds the rows it holds.
type RequestLogDay struct {
	Day              string `json:"day"` // YYYY-MM-DD in the billing zone (UTC+8)
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

// add adds o's counts and sums, times sign (+1, or -1 to take a row out).
func (d *RequestLogDay) add(o *RequestLogDay, sign int64) {
	d.Requests += sign * o.Requests
	d.Streams += sign * o.Streams
	d.Estimated += sign * o.Estimated
	d.PromptTokens += sign * o.PromptTokens
	d.CompletionTokens += sign * o.CompletionTokens
	d.TotalTokens += sign * o.TotalTokens
	d.Images += sign * o.Images
	d.LatencyMS += sign * o.LatencyMS
	d.ChargeAmount += sign * o.ChargeAmount
}

// logDays adds rows into days keyed the roll-up's way.
type logDays map[logDayKey]*RequestLogDay

func (m logDays) add(d RequestLogDay, sign int64) {
	k := d.key()
	cur := m[k]
	if cur == nil {
		cur = &RequestLogDay{Day: d.Day, AccountID: d.AccountID, KeyID: d.KeyID, Model: d.Model, Endpoint: d.Endpoint,
			HTTPStatus: d.HTTPStatus, ErrorCode: d.ErrorCode}
		m[k] = cur
	}
	cur.add(&d, sign)
}

// sorted returns the days in key order: the order every insert upserts
// them in, so two transactions lock day rows in one order and cannot
// deadlock on PostgreSQL.
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

// rowDay is a request-log row as a one-request day.
func rowDay(r *platform.RequestLog) RequestLogDay {
	return RequestLogDay{Day: logDay(ms(r.CreatedAt)), AccountID: r.AccountID, KeyID: r.KeyID, Model: r.Model,
		Endpoint: r.Endpoint, HTTPStatus: r.HTTPStatus, ErrorCode: r.ErrorCode, Requests: 1, Streams: b2i(r.Stream),
		Estimated: b2i(r.Estimated), PromptTokens: int64(r.Usage.PromptTokens),
		CompletionTokens: int64(r.Usage.CompletionTokens), TotalTokens: int64(r.Usage.TotalTokens),
		Images: int64(r.Usage.Images), LatencyMS: r.LatencyMS, ChargeAmount: r.Charge.Amount}
}

// dayRowColumns are the request-log columns a day adds up.
const dayRowColumns = `created_at, account_id, key_id, model, endpoint, http_status, error_code, stream, estimated,
	prompt_tokens, completion_tokens, total_tokens, images, latency_ms, charge_amount`

// scanDayRow reads one row of dayRowColumns as a one-request day.
func scanDayRow(rows *sql.Rows) (RequestLogDay, error) {
	var d RequestLogDay
	var created int64
	if err := rows.Scan(&created, &d.AccountID, &d.KeyID, &d.Model, &d.Endpoint, &d.HTTPStatus, &d.ErrorCode,
		&d.Streams, &d.Estimated, &d.PromptTokens, &d.CompletionTokens, &d.TotalTokens, &d.Images, &d.LatencyMS,
		&d.ChargeAmount); err != nil {
		return RequestLogDay{}, err
	}
	d.Day = logDay(created)
	d.Requests = 1
	return d, nil
}

// addLogDaysSQL adds one day row to request_log_daily, creating it when
// missing.
const addLogDaysSQL = `INSERT INTO request_log_daily (day, account_id, key_id, model, endpoint, http_status,
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
		charge_amount = request_log_daily.charge_amount + excluded.charge_amount`

// addLogDays adds days to request_log_daily, creating the missing ones:
// one upsert per distinct day row, in key order. The additions commute,
// so replicas adding to one day row at once each add theirs (the row
// lock of ON CONFLICT DO UPDATE serialises them on PostgreSQL). Every
// batch runs it, so on SQLite it is prepared once per pool, not per
// transaction (DB.TxStmt).
func addLogDays(ctx context.Context, h *DB, tx *sql.Tx, days []RequestLogDay) error {
	if len(days) == 0 {
		return nil
	}
	stmt, err := h.TxStmt(ctx, tx, addLogDaysSQL)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, d := range days {
		if _, err := stmt.ExecContext(ctx, d.Day, d.AccountID, d.KeyID, d.Model, d.Endpoint, int64(d.HTTPStatus),
			d.ErrorCode, d.Requests, d.Streams, d.Estimated, d.PromptTokens, d.CompletionTokens, d.TotalTokens, d.Images,
			d.LatencyMS, d.ChargeAmount); err != nil {
			return err
		}
	}
	return nil
}

// RequestLogDayFilter selects days of the request log.
type RequestLogDayFilter struct {
	AccountID string
	// From and To bound the days (YYYY-MM-DD in the billing zone, From
	// inclusive, To exclusive); "" leaves that side open.
	From, To string
}

// RequestLogDays reports the request log by day, oldest first. A day row
// whose requests were all replaced by rows of another day row (a task's
// failure row overwritten by its call's own row) adds up to nothing and
// is left out.
func (s *SQL) RequestLogDays(ctx context.Context, f RequestLogDayFilter) ([]RequestLogDay, error) {
	q := `SELECT day, account_id, key_id, model, endpoint, http_status, error_code, requests, streams, estimated,
		prompt_tokens, completion_tokens, total_tokens, images, latency_ms, charge_amount FROM request_log_daily
		WHERE requests <> 0`
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
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: request log days: %w", err)
	}
	defer rows.Close()
	days := logDays{}
	for rows.Next() {
		var d RequestLogDay
		if err := rows.Scan(&d.Day, &d.AccountID, &d.KeyID, &d.Model, &d.Endpoint, &d.HTTPStatus, &d.ErrorCode,
			&d.Requests, &d.Streams, &d.Estimated, &d.PromptTokens, &d.CompletionTokens, &d.TotalTokens, &d.Images,
			&d.LatencyMS, &d.ChargeAmount); err != nil {
			return nil, fmt.Errorf("store: request log days: %w", err)
		}
		days.add(d, 1)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: request log days: %w", err)
	}
	return days.sorted(), nil
}

// RequestDays adds up an account's request log per billing day, key and
// model over the days [from, to) (YYYY-MM-DD). It reads the day rows
// (the (account_id, day) index), at most days × keys × models × outcomes
// of them, whatever the size of the log.
func (s *SQL) RequestDays(ctx context.Context, accountID, from, to string) ([]platform.RequestDay, error) {
	_, err1 := time.Parse(time.DateOnly, from)
	_, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("store: request days %q–%q: want YYYY-MM-DD", from, to)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT day, key_id, model, SUM(requests), SUM(prompt_tokens + completion_tokens),
		SUM(charge_amount) FROM request_log_daily WHERE account_id = $1 AND day >= $2 AND day < $3
		GROUP BY day, key_id, model HAVING SUM(requests) <> 0`, accountID, from, to)
	if err != nil {
		return nil, fmt.Errorf("store: request days: %w", err)
	}
	defer rows.Close()
	var out []platform.RequestDay
	for rows.Next() {
		var d platform.RequestDay
		if err := rows.Scan(&d.Day, &d.KeyID, &d.Model, &d.Requests, &d.Tokens, &d.Charge); err != nil {
			return nil, fmt.Errorf("store: request days: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: request days: %w", err)
	}
	return out, nil
}
