package console

import (
	"html/template"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
)

// pageSize is the rows of the recent-requests table per page.
const pageSize = 20

type usageTotal struct {
	Name     string
	Requests int64
	Tokens   int64
	Cost     billing.Micros
}

type usageRow struct {
	platform.RequestLog
	Key  string
	Cost billing.Micros
}

type usageData struct {
	Days    int
	Ranges  []int
	Model   string
	Models  []string
	Key     string // the key filter (a key id; "" = every key)
	Keys    []keyOption
	Tokens  chart
	Cost    chart
	ByModel []usageTotal
	ByKey   []usageTotal
	Recent  []usageRow
	// Before is this page's cursor ("": the newest page, which refreshes
	// itself); Next the cursor of the older page ("": none). A cursor is
	// the last row's "created_at-id" (milliseconds, then the row id), so
	// rows sharing the boundary millisecond are never skipped.
	Before, Next string
	// Filter is the query string of the filters (days, model, key,
	// account) that every link of the page keeps.
	Filter template.URL
	Live   string
}

// keyOption is one entry of the key filter.
type keyOption struct{ ID, Name string }

// usageData reads the page: per-day, per-model and per-key figures from
// the request log's per-day roll-up (store.RequestDays reads at most days
// × keys × models rows, whatever the size of the log, docs/design.md §3
// "Request-log days"), the recent requests from the log's newest rows.
func (c *Console) usageData(q *req) (*usageData, error) {
	ctx := q.r.Context()
	qv := q.r.URL.Query()
	d := &usageData{Days: 14, Ranges: []int{7, 14, 30}, Model: qv.Get("model"), Key: qv.Get("key")}
	if n, _ := strconv.Atoi(qv.Get("days")); n == 7 || n == 30 {
		d.Days = n
	}
	local := c.now().In(billing.BillingZone)
	first := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, billing.BillingZone).AddDate(0, 0, 1-d.Days)
	days, err := c.o.Store.RequestDays(ctx, q.account.ID, first.Format(time.DateOnly),
		first.AddDate(0, 0, d.Days).Format(time.DateOnly))
	if err != nil {
		return nil, err
	}
	keys, err := c.o.Store.ListKeysMasked(ctx, q.account.ID)
	if err != nil {
		return nil, err
	}
	keyName := map[string]string{}
	for _, k := range keys {
		keyName[k.ID] = k.Masked()
		if k.Name != "" {
			keyName[k.ID] = k.Name + " (" + k.Masked() + ")"
		}
		d.Keys = append(d.Keys, keyOption{ID: k.ID, Name: keyName[k.ID]})
	}
	labels := make([]string, d.Days)
	for i := range labels {
		labels[i] = first.AddDate(0, 0, i).Format(time.DateOnly)
	}
	d.add(days, labels, keyName)
	if err := c.recentRows(q, d, keyName); err != nil {
		return nil, err
	}
	f := url.Values{"days": {strconv.Itoa(d.Days)}, "model": {d.Model}, "key": {d.Key}}
	d.Filter = template.URL(f.Encode() + q.accountAmp()) //nolint:gosec // built from url.Values and the account's id
	d.Live = Prefix + "/live/usage?" + string(d.Filter)
	return d, nil
}

// add draws the days on the charts and adds them up per model and per key;
// the model and key filters apply to all but the list of models.
func (d *usageData) add(days []platform.RequestDay, labels []string, keyName map[string]string) {
	idx := map[string]int{}
	for i, l := range labels {
		idx[l] = i
	}
	tokens, cost := make([]float64, len(labels)), make([]float64, len(labels))
	byModel, byKey := map[string]*usageTotal{}, map[string]*usageTotal{}
	models := map[string]bool{}
	for _, u := range days {
		if u.Model == "" { // refused before a model was known
			continue
		}
		models[u.Model] = true
		if (d.Model != "" && u.Model != d.Model) || (d.Key != "" && u.KeyID != d.Key) {
			continue
		}
		if i, ok := idx[u.Day]; ok {
			tokens[i] += float64(u.Tokens)
			cost[i] += float64(u.Charge) / 1e6
		}
		name := keyName[u.KeyID]
		if name == "" {
			name = u.KeyID
		}
		for _, m := range []struct {
			to   map[string]*usageTotal
			name string
		}{{byModel, u.Model}, {byKey, name}} {
			tot := m.to[m.name]
			if tot == nil {
				tot = &usageTotal{Name: m.name}
				m.to[m.name] = tot
			}
			tot.Requests += u.Requests
			tot.Tokens += u.Tokens
			tot.Cost += billing.Micros(u.Charge)
		}
	}
	for m := range models {
		d.Models = append(d.Models, m)
	}
	sort.Strings(d.Models)
	d.ByModel, d.ByKey = sortedTotals(byModel), sortedTotals(byKey)
	d.Tokens = barChart(labels, tokens, 10, func(v float64) string { return group(int64(v)) })
	d.Cost = barChart(labels, cost, 0.01, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) })
}

// recentRows reads one page of recent requests: the newest, or those
// older than the ?before= cursor (created_at milliseconds "-" row id; a
// bare millisecond, as older links carry, reads as every row before it).
func (c *Console) recentRows(q *req, d *usageData, keyName map[string]string) error {
	f := platform.RecentRequests{AccountID: q.account.ID, Model: d.Model, KeyID: d.Key, Limit: pageSize + 1}
	at, id, _ := strings.Cut(q.r.URL.Query().Get("before"), "-")
	if ms, err := strconv.ParseInt(at, 10, 64); err == nil && ms > 0 {
		d.Before, f.BeforeAt, f.BeforeID = q.r.URL.Query().Get("before"), time.UnixMilli(ms), id
	}
	rows, err := c.o.Store.RecentRequestLogs(q.r.Context(), f)
	if err != nil {
		return err
	}
	if len(rows) > pageSize {
		rows = rows[:pageSize]
		last := rows[pageSize-1]
		d.Next = strconv.FormatInt(last.CreatedAt.UnixMilli(), 10) + "-" + last.ID
	}
	for _, r := range rows {
		d.Recent = append(d.Recent, usageRow{RequestLog: r, Key: keyName[r.KeyID], Cost: billing.Micros(r.Charge.Amount)})
	}
	return nil
}

func sortedTotals(m map[string]*usageTotal) []usageTotal {
	out := make([]usageTotal, 0, len(m))
	for _, t := range m {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Tokens != out[j].Tokens {
			return out[i].Tokens > out[j].Tokens
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (c *Console) usage(q *req) error {
	d, err := c.usageData(q)
	if err != nil {
		return err
	}
	c.render(q, 200, "usage.html", d)
	return nil
}

// chart is a bar chart laid out for the template's SVG: one bar per day,
// a y axis with three labelled ticks (0, half, top) and every few days
// labelled on the x axis.
type chart struct {
	W, H   int
	Left   float64 // the plot's left edge (room for y labels)
	Bottom float64 // the plot's bottom edge
	Bars   []bar
	YTicks []tick
	XTicks []tick
}

type bar struct {
	X, Y, W, H float64
	Title      string
}

type tick struct {
	X, Y  float64
	Label string
}

// barChart lays out values (one per label) on an axis from 0 to at least
// minTop, so an empty chart still reads in the unit's round numbers.
func barChart(labels []string, values []float64, minTop float64, format func(float64) string) chart {
	c := chart{W: 640, H: 220, Left: 64, Bottom: 190}
	const top = 12.0
	top2 := niceCeil(math.Max(maxOf(values), minTop))
	plotW := float64(c.W) - c.Left - 8
	plotH := c.Bottom - top
	step := plotW / float64(len(values))
	for i, v := range values {
		h := v / top2 * plotH
		c.Bars = append(c.Bars, bar{X: r1(c.Left + float64(i)*step + step*0.15), Y: r1(c.Bottom - h), W: r1(step * 0.7), H: r1(h),
			Title: labels[i] + ": " + format(v)})
	}
	for _, f := range []float64{0, 0.5, 1} {
		c.YTicks = append(c.YTicks, tick{X: c.Left - 6, Y: r1(c.Bottom - f*plotH), Label: format(f * top2)})
	}
	every := (len(labels) + 6) / 7
	for i := 0; i < len(labels); i += every {
		c.XTicks = append(c.XTicks, tick{X: r1(c.Left + float64(i)*step + step/2), Y: c.Bottom + 16, Label: labels[i][5:]})
	}
	return c
}

// r1 rounds a coordinate to a tenth of a unit: enough for the eye, and a
// shorter page.
func r1(v float64) float64 { return math.Round(v*10) / 10 }

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = math.Max(m, v)
	}
	return m
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten, so the axis reads
// in round numbers; an empty chart gets an axis up to 1.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}
