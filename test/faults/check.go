package faults

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// settleWait bounds how long the checks wait for batched rows and
// finished tasks: generous, a bound and not a speed claim.
const settleWait = 30 * time.Second

// codes counts outcomes by key, printed as {key:n …}.
func codes(outs []outcome) string {
	n := map[string]int{}
	for _, o := range outs {
		n[o.key]++
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(n)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", k, n[k])
	}
	b.WriteByte('}')
	return b.String()
}

// checkCodes fails when an outcome's key is not one the fault allows.
func checkCodes(outs []outcome, allowed []string) error {
	var bad []string
	for _, o := range outs {
		if !slices.Contains(allowed, o.key) && !slices.Contains(bad, o.key) {
			bad = append(bad, o.key)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("answers outside the fault's codes %v: %v", allowed, bad)
	}
	return nil
}

// checkLogged waits until every request that reached the server has its
// request-log row, and fails when one has none or more than one. With
// lossy set (every request went to a server that was then killed), a
// request may have none: it was still running, or its rows were in the
// batch that died with the process, uncharged (docs/design.md §3 "Crash
// consistency"); nothing more can arrive, so it looks once, and lost
// counts those.
func (s *site) checkLogged(ctx context.Context, prefix string, outs []outcome, lossy bool) (lost int, err error) {
	want := map[string]bool{}
	for _, o := range outs {
		if o.sent && o.reqID != "" {
			want[o.reqID] = true
		}
	}
	deadline := time.Now().Add(settleWait)
	for {
		got, err := s.logCounts(ctx, prefix)
		if err != nil {
			return 0, err
		}
		missing := 0
		for id := range want {
			if got[id] == 0 {
				missing++
			}
		}
		for id, n := range got {
			if n > 1 {
				return 0, fmt.Errorf("request %s has %d request-log rows, want 1", id, n)
			}
		}
		if missing == 0 {
			return 0, nil
		}
		if lossy {
			return missing, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d requests have no request-log row after %s", missing, len(want), settleWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logCounts counts request-log rows per client request id with prefix.
func (s *site) logCounts(ctx context.Context, prefix string) (map[string]int, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT request_id, COUNT(*) FROM request_log WHERE request_id LIKE $1 GROUP BY request_id`, prefix+"%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		got[id] = n
	}
	return got, rows.Err()
}

// checkPairs checks the crash-consistency rule over the whole database:
// every usage row has its request-log row with the same charge, and every
// charged request-log row its usage row.
func (s *site) checkPairs(ctx context.Context) error {
	for _, q := range []struct{ what, sql string }{
		{"usage rows without a request-log row",
			`SELECT COUNT(*) FROM billing_usage u LEFT JOIN request_log r ON r.id = u.request_id WHERE r.id IS NULL`},
		{"charged request-log rows without a usage row",
			`SELECT COUNT(*) FROM request_log r LEFT JOIN billing_usage u ON u.request_id = r.id WHERE u.request_id IS NULL AND r.charge_amount <> 0`},
		{"request-log rows whose charge differs from their usage row",
			`SELECT COUNT(*) FROM request_log r JOIN billing_usage u ON u.request_id = r.id WHERE r.charge_amount <> u.amount_micros`},
		{"usage rows whose parts do not add up (amount = discount + cash + shortfall)",
			`SELECT COUNT(*) FROM billing_usage WHERE amount_micros <> discount_micros + cash_micros + shortfall_micros`},
		{"usage rows with a shortfall (the account had money)",
			`SELECT COUNT(*) FROM billing_usage WHERE shortfall_micros <> 0`},
	} {
		var n int
		if err := s.db.SQL.QueryRowContext(ctx, q.sql).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%d %s", n, q.what)
		}
	}
	return nil
}

// Money is the account's ledger, summed from the audit and the usage rows.
type Money struct {
	Charged      int64 // Σ amount of the usage rows, µ¥
	PackageValue int64 // Σ discount: what the package paid, µ¥
	PackageUsed  int64 // Σ package tokens of the usage rows
	PackageDrop  int64 // granted − remaining − leased, tokens
	Cash         int64 // Σ cash of the usage rows, µ¥
	CashDrop     int64 // top-ups − remaining − leased, µ¥
	Rows         int
}

func (m Money) String() string {
	return fmt.Sprintf("charged %d µ¥ = package %d µ¥ (%d tokens, drop %d) + cash %d µ¥ (drop %d) over %d rows",
		m.Charged, m.PackageValue, m.PackageUsed, m.PackageDrop, m.Cash, m.CashDrop, m.Rows)
}

// checkMoney runs the ledger audit for the account and checks that its
// charges are exactly what its package and its cash lost. The audit reads
// one snapshot and the usage sums another; servers may write rows
// between them, so the sums are read before and after the audit, and
// the pair is used only when nothing was written in between (rows are
// only added while the suite runs).
func (s *site) checkMoney(ctx context.Context) (Money, error) {
	for try := 0; ; try++ {
		before, err := s.usageSums(ctx)
		if err != nil {
			return before, err
		}
		a, err := billing.NewStore(ledger.New(s.db), nil).Audit(ctx, Account)
		if err != nil {
			return before, err
		}
		if err := a.Err(); err != nil {
			return before, err
		}
		m, err := s.usageSums(ctx)
		if err != nil {
			return m, err
		}
		if m != before && try < 50 {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		err = m.against(a)
		return m, err
	}
}

// usageSums sums the account's usage rows.
func (s *site) usageSums(ctx context.Context) (Money, error) {
	var m Money
	err := s.db.SQL.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(amount_micros), 0), COALESCE(SUM(discount_micros), 0),
		COALESCE(SUM(package_tokens), 0), COALESCE(SUM(cash_micros), 0) FROM billing_usage WHERE account_id = $1`, Account).
		Scan(&m.Rows, &m.Charged, &m.PackageValue, &m.PackageUsed, &m.Cash)
	return m, err
}

// against fills in the drops from the audit and checks the sums against
// them.
func (m *Money) against(a *billing.Audit) error {
	var uncollected [2]int64
	for _, src := range a.Sources {
		drop := src.Granted - src.Remaining - src.Leased
		if src.Source == billing.PartCash {
			m.CashDrop += drop
			uncollected[1] += src.Uncollected
		} else {
			m.PackageDrop += drop
			uncollected[0] += src.Uncollected
		}
	}
	switch {
	case m.Charged != m.PackageValue+m.Cash:
		return fmt.Errorf("money: %s: charges are not package + cash", m)
	case m.PackageUsed != m.PackageDrop+uncollected[0]:
		return fmt.Errorf("money: %s: package tokens used differ from the package's drop", m)
	case m.Cash != m.CashDrop+uncollected[1]:
		return fmt.Errorf("money: %s: cash charged differs from the wallet's drop", m)
	}
	return nil
}

// checkTasks waits until every task is finished; a failed one must say
// why, and each must have exactly one request-log row (its call's, or the
// one written when a crash or shutdown failed it).
func (s *site) checkTasks(ctx context.Context, ids []string) (states map[string]int, err error) {
	deadline := time.Now().Add(settleWait)
	for {
		states = map[string]int{}
		pending := 0
		var stuck string
		for _, id := range ids {
			var state, msg string
			var logs int
			if err := s.db.SQL.QueryRowContext(ctx, `SELECT state, error_message, (SELECT COUNT(*) FROM request_log WHERE id = $1) FROM tasks WHERE id = $1`, id).
				Scan(&state, &msg, &logs); err != nil {
				return nil, fmt.Errorf("task %s: %w", id, err)
			}
			switch {
			case state == "failed" && msg == "":
				return nil, fmt.Errorf("task %s failed without a reason", id)
			case (state == "failed" || state == "succeeded") && logs == 1:
				states[state]++
			case logs > 1:
				return nil, fmt.Errorf("task %s has %d request-log rows", id, logs)
			default:
				pending++
				stuck = fmt.Sprintf("task %s: %s with %d request-log rows", id, state, logs)
			}
		}
		if pending == 0 {
			return states, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d tasks not finished with their request-log row after %s (%s)", pending, len(ids), settleWait, stuck)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
