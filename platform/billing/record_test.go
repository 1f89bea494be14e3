package billing

import (
	"context"
	"errors"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// logRow reads the charge and error code of a request-log row; found is
// false without one.
func (r *rig) logRow(id string) (charge int64, code string, found bool) {
	r.t.Helper()
	rows, err := r.db.SQL.QueryContext(context.Background(), `SELECT charge_amount, error_code FROM request_log WHERE id = $1`, id)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if found {
			r.t.Fatalf("request %s has more than one request-log row", id)
		}
		if err := rows.Scan(&charge, &code); err != nil {
			r.t.Fatal(err)
		}
		found = true
	}
	return charge, code, found
}

// TestSettleRecordWritesTheRowWithTheUsageRow: a request-log row handed
// to SettleRecord is stored by the flush that stores the usage row — not
// before it, with the charge the usage row has — and it replaces a row a
// task's lease expiry left under the same id (docs/design.md §3 "Crash
// consistency").
func TestSettleRecordWritesTheRowWithTheUsageRow(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		r := newRig(t, dsn)
		r.topup("acct", "1")
		e := r.engine(Config{})
		// A task failed by the janitor while its call still ran.
		if _, err := r.db.SQL.ExecContext(ctx, `INSERT INTO request_log (id, created_at, account_id, endpoint, http_status, error_code)
			VALUES ('req-2', 0, 'acct', 'async-task', 500, '500')`); err != nil {
			t.Fatal(err)
		}
		charges := map[string]Micros{}
		for _, id := range []string{"req-1", "req-2"} {
			res, err := e.Reserve(ctx, ReserveRequest{RequestID: id, AccountID: "acct", KeyID: "k", Model: "glm-4", PromptTokens: 100, MaxTokens: 100})
			if err != nil {
				t.Fatal(err)
			}
			c, recorded, err := e.SettleRecord(ctx, res, Usage{PromptTokens: 100, CompletionTokens: 50}, "ok", false,
				platform.RequestLog{ID: id, AccountID: "acct", KeyID: "k", Model: "glm-4", Endpoint: "chat/completions", HTTPStatus: 200})
			if err != nil || !recorded || c.Amount == 0 {
				t.Fatalf("SettleRecord(%s) = %v, recorded %v, %v; want a charge, recorded", id, c, recorded, err)
			}
			charges[id] = c.Amount
		}
		if _, _, found := r.logRow("req-1"); found {
			t.Fatal("got a request-log row before the usage row was flushed; want both in one transaction")
		}
		if err := e.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		usage := map[string]Micros{}
		for _, u := range r.usage("acct") {
			usage[u.RequestID] = u.Amount
		}
		for id, want := range charges {
			charge, code, found := r.logRow(id)
			if !found || Micros(charge) != want || usage[id] != want || code != "" {
				t.Errorf("%s: log row found %v charge %d code %q, usage row %s; want both %s, no error code", id, found, charge, code, usage[id], want)
			}
		}
		// A closed engine stores nothing: the caller records the row.
		res, err := e.Reserve(ctx, ReserveRequest{RequestID: "req-3", AccountID: "acct", KeyID: "k", Model: "glm-4", PromptTokens: 10, MaxTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		closeAll(t, e)
		if _, recorded, err := e.SettleRecord(ctx, res, Usage{PromptTokens: 10}, "ok", false, platform.RequestLog{ID: "req-3"}); recorded || !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: recorded %v, %v; want not recorded, ErrClosed", recorded, err)
		}
	})
}
