package billing

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Bills are derived from usage rows and reconcile with them to the micro;
// the month is cut in Beijing time; the CSV carries the same numbers.
func TestMonthlyBillReconciles(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		p := r.grant(Grant{AccountID: "acct", Tokens: 20_000, Models: []string{"glm-4"}, ExpiresAt: t0.AddDate(1, 0, 0)})
		r.topup("acct", "3.333333")
		e := r.engine(Config{})
		ctx := context.Background()
		feb := time.Date(2024, 2, 1, 0, 0, 0, 0, BillingZone)
		times := []time.Time{
			feb.Add(-time.Millisecond), // January 31st, 23:59:59.999 CST
			feb,                        // first instant of February
			feb.Add(36 * time.Hour),    // Feb 2nd
			feb.AddDate(0, 1, 0).Add(-time.Millisecond), // Feb 29th, last instant
			feb.AddDate(0, 1, 0),                        // March
		}
		models := []string{"glm-4", "glm-3-turbo", "embedding-2"}
		n := 0
		for _, at := range times {
			for _, m := range models {
				for k := 0; k < 3; k++ {
					r.clk.Set(at)
					n++
					id := fmt.Sprintf("b%03d", n)
					res, err := e.Reserve(ctx, ReserveRequest{RequestID: id, AccountID: "acct", Model: m, PromptTokens: int64(100 + n), MaxTokens: 500})
					if err != nil {
						t.Fatalf("reserve %s: %v", id, err)
					}
					if _, err := e.Settle(ctx, res, Usage{PromptTokens: int64(100 + n), CompletionTokens: int64(7 * n)}, "ok", false); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		closeAll(t, e)
		bill, err := r.store.MonthlyBill(ctx, "acct", "2024-02")
		if err != nil {
			t.Fatal(err)
		}
		if bill.Period != "2024-02-01 ~ 2024-02-29" {
			t.Errorf("period %q", bill.Period)
		}
		// Reconcile against the raw rows of the month.
		var want BillLine
		for _, u := range r.usage("acct") {
			if !u.CreatedAt.Before(feb) && u.CreatedAt.Before(feb.AddDate(0, 1, 0)) {
				want.add(&u)
			}
		}
		if want.Requests != 27 {
			t.Fatalf("%d February rows, want 27", want.Requests)
		}
		if bill.Totals != (BillLine{Requests: want.Requests, PromptTokens: want.PromptTokens, CompletionTokens: want.CompletionTokens,
			PackageTokens: want.PackageTokens, Total: want.Total, Discount: want.Discount, Payable: want.Payable, Unpaid: want.Unpaid,
			Tiers: want.Tiers}) {
			t.Errorf("totals %+v, rows say %+v", bill.Totals, want)
		}
		if got := bill.Totals.Rounding(); got < 0 || got >= Nanos(1000*bill.Totals.Requests) {
			t.Errorf("got rounding %s over %d requests, want in [0, 1 µ¥ per request)", got, bill.Totals.Requests)
		}
		if bill.Totals.Total != bill.Totals.Discount+bill.Totals.Payable+bill.Totals.Unpaid {
			t.Errorf("total %v != discount %v + payable %v + unpaid %v", bill.Totals.Total, bill.Totals.Discount, bill.Totals.Payable, bill.Totals.Unpaid)
		}
		if bill.Totals.Discount == 0 || bill.Totals.Payable == 0 {
			t.Errorf("expected both package and cash spending: %+v", bill.Totals)
		}
		var sum BillLine
		dates := map[string]bool{}
		for _, l := range bill.Lines {
			sum.Requests += l.Requests
			sum.Total += l.Total
			sum.Discount += l.Discount
			sum.Payable += l.Payable
			dates[l.Date] = true
		}
		if sum.Requests != bill.Totals.Requests || sum.Total != bill.Totals.Total || sum.Discount != bill.Totals.Discount || sum.Payable != bill.Totals.Payable {
			t.Errorf("lines sum %+v != totals %+v", sum, bill.Totals)
		}
		if len(dates) != 3 || !dates["2024-02-01"] || !dates["2024-02-02"] || !dates["2024-02-29"] {
			t.Errorf("days %v", dates)
		}
		if len(bill.Lines) != 9 {
			t.Errorf("%d lines, want 3 days × 3 models", len(bill.Lines))
		}
		// January and March got their own rows.
		jan, _ := r.store.MonthlyBill(ctx, "acct", "2024-01")
		mar, _ := r.store.MonthlyBill(ctx, "acct", "2024-03")
		if jan.Totals.Requests != 9 || mar.Totals.Requests != 9 {
			t.Errorf("jan %d mar %d requests", jan.Totals.Requests, mar.Totals.Requests)
		}
		all := jan.Totals.Total + bill.Totals.Total + mar.Totals.Total
		var rowsTotal Micros
		for _, u := range r.usage("acct") {
			rowsTotal += u.Amount
		}
		if all != rowsTotal {
			t.Errorf("three bills %v != all rows %v", all, rowsTotal)
		}
		r.checkLedger("acct", map[string]int64{p.ID: 20_000}, mustCNY("3.333333"))

		// CSV export.
		var buf bytes.Buffer
		if err := bill.WriteCSV(&buf); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1+9+1 || strings.Join(recs[0], ",") != strings.Join(BillCSVHeader, ",") {
			t.Fatalf("csv shape: %d records, header %v", len(recs), recs[0])
		}
		var csvTotal, csvPayable Micros
		for _, rec := range recs[1 : len(recs)-1] {
			a, err := ParseCNY(rec[8])
			if err != nil {
				t.Fatal(err)
			}
			p, _ := ParseCNY(rec[10])
			csvTotal += a
			csvPayable += p
		}
		last := recs[len(recs)-1]
		lt, _ := ParseCNY(last[8])
		if last[1] != "total" || csvTotal != bill.Totals.Total || lt != bill.Totals.Total || csvPayable != bill.Totals.Payable {
			t.Errorf("csv totals %v / %v, bill %v", csvTotal, lt, bill.Totals.Total)
		}
	})
}
