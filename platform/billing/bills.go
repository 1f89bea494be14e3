package billing

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"
)

// BillingZone is the time zone bills are cut in: China Standard Time, the
// platform's own (the console shows 账期 "2024-02-01 ~ 2024-02-29" in
// Beijing time). China has no daylight saving, so a fixed +08:00 zone is
// exact and needs no tzdata on the host.
var BillingZone = time.FixedZone("CST", 8*3600)

// BillLine is one day's use of one model.
type BillLine struct {
	Date             string `json:"date"` // YYYY-MM-DD in the billing zone
	Model            string `json:"model"`
	Requests         int64  `json:"requests"`
	PromptTokens     int64  `json:"prompt_tokens"`
	CompletionTokens int64  `json:"completion_tokens"`
	Images           int64  `json:"images"`
	PackageTokens    int64  `json:"package_tokens"`
	Total            Micros `json:"total_micros"`     // 总消费金额
	Discount         Micros `json:"discount_micros"`  // 优惠金额 (paid by packages)
	Payable          Micros `json:"payable_micros"`   // 应付金额 (cash)
	Unpaid           Micros `json:"unpaid_micros"`    // used when nothing was left
	CachedTokens     int64  `json:"cached_tokens"`    // part of PromptTokens
	ReasoningTokens  int64  `json:"reasoning_tokens"` // part of CompletionTokens, billed as output
	Calls            int64  `json:"calls"`            // tool calls billed per call
	BatchRequests    int64  `json:"batch_requests"`   // part of Requests, at the batch price
	// Tiers is Total by price tier before each request's rounding up to
	// the micro; Rounding() is the rest (docs/design.md §7 "Tiers").
	Tiers TierCost `json:"tiers"`
}

// Rounding is what the requests' rounding up to the micro added to the
// tiers: Total = Tiers.Sum() + Rounding(), under one micro per request.
func (l BillLine) Rounding() Nanos { return Nanos(mulSat(int64(l.Total), 1000)) - l.Tiers.Sum() }

func (l *BillLine) add(r *UsageRecord) {
	l.Requests++
	l.PromptTokens += r.PromptTokens
	l.CompletionTokens += r.CompletionTokens
	l.Images += r.Images
	l.PackageTokens += r.PackageTokens
	l.Total += r.Amount
	l.Discount += r.Discount
	l.Payable += r.Cash
	l.Unpaid += r.Shortfall
	l.CachedTokens += r.CachedTokens
	l.ReasoningTokens += r.ReasoningTokens
	l.Calls += r.Calls
	if r.Class == ClassBatch {
		l.BatchRequests++
	}
	l.Tiers.add(r.Tiers())
}

// addDay adds a rolled-up day as add adds its rows.
func (l *BillLine) addDay(d *UsageDay) {
	l.Requests += d.Requests
	l.PromptTokens += d.PromptTokens
	l.CompletionTokens += d.CompletionTokens
	l.Images += d.Images
	l.PackageTokens += d.PackageTokens
	l.Total += d.Amount
	l.Discount += d.Discount
	l.Payable += d.Cash
	l.Unpaid += d.Shortfall
	l.CachedTokens += d.CachedTokens
	l.ReasoningTokens += d.ReasoningTokens
	l.Calls += d.Calls
	l.BatchRequests += d.BatchRequests
	l.Tiers.add(d.Tiers)
}

// Bill is a monthly statement (月度账单), derived from usage rows and the
// days retention rolled them up into, so it reconciles with them to the
// micro: Total = Discount + Payable + Unpaid and each column is the sum of
// the rows (and rolled-up days) of the period.
type Bill struct {
	AccountID string     `json:"account_id,omitempty"`
	Month     string     `json:"month"`  // YYYY-MM
	Period    string     `json:"period"` // "2024-02-01 ~ 2024-02-29"
	Totals    BillLine   `json:"totals"`
	Lines     []BillLine `json:"lines"` // by day, then model
}

// ParseMonth parses "YYYY-MM" into the first instant of that month in the
// billing zone.
func ParseMonth(s string) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01", s, BillingZone)
	if err != nil {
		return time.Time{}, fmt.Errorf("billing: month %q: want YYYY-MM: %w", s, err)
	}
	return t, nil
}

// MonthlyBill builds the statement of one month; account "" covers every
// account (the operator's view). Rows refused with 1113 charge nothing and
// are not counted as requests.
func (s *Store) MonthlyBill(ctx context.Context, account, month string) (Bill, error) {
	start, err := ParseMonth(month)
	if err != nil {
		return Bill{}, err
	}
	end := start.AddDate(0, 1, 0)
	rows, days, err := s.db.UsageWithDays(ctx, UsageFilter{AccountID: account, Since: start, Until: end}, dayRange(start, end))
	if err != nil {
		return Bill{}, err
	}
	return buildBill(account, start, rows, days), nil
}

// buildBill adds up the month's usage rows and the days retention rolled
// up (a day lies inside one month: both are cut in BillingZone).
func buildBill(account string, start time.Time, rows []UsageRecord, days []UsageDay) Bill {
	end := start.AddDate(0, 1, 0)
	b := Bill{
		AccountID: account,
		Month:     start.Format("2006-01"),
		Period:    start.Format("2006-01-02") + " ~ " + end.AddDate(0, 0, -1).Format("2006-01-02"),
	}
	type key struct{ date, model string }
	lines := map[key]*BillLine{}
	for i := range rows {
		r := &rows[i]
		if r.Outcome == OutcomeRejected {
			continue
		}
		k := key{r.CreatedAt.In(BillingZone).Format("2006-01-02"), r.Model}
		l := lines[k]
		if l == nil {
			l = &BillLine{Date: k.date, Model: k.model}
			lines[k] = l
		}
		l.add(r)
		b.Totals.add(r)
	}
	for i := range days {
		d := &days[i]
		if d.Outcome == OutcomeRejected {
			continue
		}
		k := key{d.Day, d.Model}
		l := lines[k]
		if l == nil {
			l = &BillLine{Date: k.date, Model: k.model}
			lines[k] = l
		}
		l.addDay(d)
		b.Totals.addDay(d)
	}
	for _, l := range lines {
		b.Lines = append(b.Lines, *l)
	}
	sort.Slice(b.Lines, func(i, j int) bool {
		if b.Lines[i].Date != b.Lines[j].Date {
			return b.Lines[i].Date < b.Lines[j].Date
		}
		return b.Lines[i].Model < b.Lines[j].Model
	})
	return b
}

// BillCSVHeader is the CSV export's header row: the columns of the export
// before prices had tiers, then the tiers (token parts, then the list
// price by tier in yuan with nine decimals, exact, and the rounding).
var BillCSVHeader = []string{"period", "date", "model", "requests", "prompt_tokens", "completion_tokens", "images", "package_tokens", "total_cny", "discount_cny", "payable_cny", "unpaid_cny",
	"cached_tokens", "reasoning_tokens", "calls", "batch_requests", "input_cny", "cached_input_cny", "output_cny", "per_call_cny", "image_cny", "unsplit_cny", "rounding_cny"}

// WriteCSV exports the bill (导出数据): one row per day and model, then a
// "total" row. Amounts are yuan with six decimals, exact.
func (b Bill) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rec := func(date, model string, l BillLine) []string {
		i := func(n int64) string { return strconv.FormatInt(n, 10) }
		return []string{b.Period, date, model, i(l.Requests), i(l.PromptTokens), i(l.CompletionTokens), i(l.Images), i(l.PackageTokens),
			l.Total.String(), l.Discount.String(), l.Payable.String(), l.Unpaid.String(),
			i(l.CachedTokens), i(l.ReasoningTokens), i(l.Calls), i(l.BatchRequests),
			l.Tiers.Input.String(), l.Tiers.CachedInput.String(), l.Tiers.Output.String(), l.Tiers.PerCall.String(),
			l.Tiers.Image.String(), l.Tiers.Unsplit.String(), l.Rounding().String()}
	}
	if err := cw.Write(BillCSVHeader); err != nil {
		return fmt.Errorf("billing: csv: %w", err)
	}
	for _, l := range b.Lines {
		if err := cw.Write(rec(l.Date, l.Model, l)); err != nil {
			return fmt.Errorf("billing: csv: %w", err)
		}
	}
	if err := cw.Write(rec("total", "", b.Totals)); err != nil {
		return fmt.Errorf("billing: csv: %w", err)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("billing: csv: %w", err)
	}
	return nil
}
