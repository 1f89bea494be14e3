package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
)

// timeInput is the layout of a datetime-local field (minutes, no zone):
// the operator types it in the console's zone.
const timeInput = "2006-01-02T15:04"

type logRow struct {
	platform.RequestLog
	Cost billing.Micros
}

type logsData struct {
	Filter *form
	Rows   []logRow
	// Before is this page's cursor (ms; 0: the newest), Next the older
	// page's link ("" when none), First the newest page's.
	Before      int64
	Next, First string
}

// adminLogs is the request log across accounts, newest first, through the
// reader `glm logs` uses (store.QueryRequestLogs), filtered by account,
// key, model, status or error code and time range, with the error detail
// of failed requests. A bad filter is a message next to its field, the
// filters kept, and no rows.
func (c *Console) adminLogs(q *req) error {
	qv := q.r.URL.Query()
	f := newForm("filter", qv)
	lq := store.LogQuery{AccountID: strings.TrimSpace(f.Get("account")), KeyID: strings.TrimSpace(f.Get("key")),
		Model: strings.TrimSpace(f.Get("model")), Code: strings.TrimSpace(f.Get("code")), Limit: pageSize + 1}
	if s := strings.TrimSpace(f.Get("status")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || (n > 5 && (n < 100 || n > 599)) {
			f.Errors["status"] = tr(q.lang, "adm.err.status")
		}
		lq.Status = n
	}
	if lq.AccountID != "" && !admin.ValidAccountID(lq.AccountID) {
		f.Errors["account"] = tr(q.lang, "adm.err.account")
	}
	lq.Since = c.timeField(q, f, "since")
	lq.Until = c.timeField(q, f, "until")
	if !lq.Since.IsZero() && !lq.Until.IsZero() && !lq.Until.After(lq.Since) {
		f.Errors["until"] = tr(q.lang, "adm.err.range")
	}
	d := &logsData{Filter: f}
	if f.Failed() {
		c.render(q, http.StatusBadRequest, "admin_logs.html", d)
		return nil
	}
	if ms, err := strconv.ParseInt(qv.Get("before"), 10, 64); err == nil && ms > 0 {
		d.Before = ms
		if b := time.UnixMilli(ms); lq.Until.IsZero() || b.Before(lq.Until) {
			lq.Until = b
		}
	}
	rows, err := c.o.Store.QueryRequestLogs(q.r.Context(), lq)
	if err != nil {
		return err
	}
	link := url.Values{}
	for _, k := range []string{"account", "key", "model", "status", "code", "since", "until"} {
		link.Set(k, f.Get(k))
	}
	d.First = withQuery(Prefix+"/admin/logs", link)
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		link.Set("before", strconv.FormatInt(rows[pageSize-1].CreatedAt.UnixMilli(), 10))
		d.Next = withQuery(Prefix+"/admin/logs", link)
	}
	for _, r := range rows {
		d.Rows = append(d.Rows, logRow{RequestLog: r, Cost: billing.Micros(r.Charge.Amount)})
	}
	c.render(q, http.StatusOK, "admin_logs.html", d)
	return nil
}

// timeField reads a datetime-local field in the console's zone (zero when
// empty; a message next to the field when unreadable).
func (c *Console) timeField(q *req, f *form, field string) time.Time {
	s := strings.TrimSpace(f.Get(field))
	if s == "" {
		return time.Time{}
	}
	for _, layout := range []string{timeInput, "2006-01-02T15:04:05", time.DateTime, time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, c.o.Zone); err == nil {
			return t
		}
	}
	f.Errors[field] = tr(q.lang, "adm.err.time")
	return time.Time{}
}
