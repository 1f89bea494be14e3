package admin

// Admin routes for money: packages, top-ups,
// usage rows, monthly bills (JSON or CSV) and the price table. Amounts
// come in as CNY decimal strings or JSON numbers read from their literal
// text (never through a float) and go out as integer micros (1e-6 CNY)
// with a CNY string beside them.

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/envelope"
)

// --- packages ---

// Packages are answered as Package (the same JSON as glm packages
// --json).

// listPackages serves GET /packages[?account=] and
// GET /accounts/{account}/packages, earliest expiry first (the order they
// pay in).
func (a *adminAPI) listPackages(w http.ResponseWriter, r *http.Request) error {
	account := r.URL.Query().Get("account")
	if r.PathValue("account") != "" {
		acct, err := a.account(r)
		if err != nil {
			return err
		}
		account = acct.ID
	}
	ps, err := a.o.Billing.ListPackages(r.Context(), account)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": PackageViews(ps, a.now())})
}

func (a *adminAPI) grantPackage(w http.ResponseWriter, r *http.Request) error {
	acct, err := a.account(r)
	if err != nil {
		return err
	}
	var in struct {
		Tokens      *int64   `json:"tokens"`
		Days        *int     `json:"days"`
		ExpiresAt   string   `json:"expires_at"`
		EffectiveAt string   `json:"effective_at"`
		Models      []string `json:"models"`
		Name        string   `json:"name"`
		Type        string   `json:"type"`
		Force       bool     `json:"force"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	now := a.now()
	g, err := GrantInput{AccountID: acct.ID, Tokens: in.Tokens, Days: in.Days, ExpiresAt: in.ExpiresAt,
		EffectiveAt: in.EffectiveAt, Models: in.Models, Name: in.Name, Type: in.Type}.Grant(now)
	if err != nil {
		return err
	}
	if err := Models("models", g.Models, a.o.Models, in.Force); err != nil {
		return err
	}
	p, err := a.o.Billing.GrantPackage(r.Context(), g)
	if err != nil {
		return fmt.Errorf("admin: grant: %w", err)
	}
	if a.o.PackagesChanged != nil {
		a.o.PackagesChanged(acct.ID)
	}
	return writeJSON(w, http.StatusCreated, PackageView(p, now))
}

// --- top-ups ---

func (a *adminAPI) topUp(w http.ResponseWriter, r *http.Request) error {
	acct, err := a.account(r)
	if err != nil {
		return err
	}
	var in struct {
		CNY  Amount `json:"cny"`
		Note string `json:"note"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	amount, err := TopUp(in.CNY, in.Note)
	if err != nil {
		return err
	}
	bal, err := a.o.Billing.TopUp(r.Context(), acct.ID, amount, in.Note)
	if err != nil {
		return fmt.Errorf("admin: topup: %w", err)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"account_id": acct.ID, "added_micros": int64(amount),
		"balance_micros": int64(bal), "balance_cny": bal.String()})
}

// --- usage and bills ---

// usage serves GET /usage?account=&model=&since=&until=&limit=, oldest
// first, with the parts that paid each row (amounts in micros).
func (a *adminAPI) usage(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := billing.UsageFilter{AccountID: q.Get("account"), Model: q.Get("model"), WithParts: true}
	var err error
	if s := q.Get("since"); s != "" {
		if f.Since, err = ParseTime("since", s); err != nil {
			return err
		}
	}
	if s := q.Get("until"); s != "" {
		if f.Until, err = ParseTime("until", s); err != nil {
			return err
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return invalid("limit %s: want a positive integer", envelope.Quote(s))
		}
		f.Limit = n
	}
	rows, err := a.o.Billing.ListUsage(r.Context(), f)
	if err != nil {
		return err
	}
	for i := range rows {
		if rows[i].Parts == nil {
			rows[i].Parts = []billing.Part{} // the API always answers a list
		}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": UsageViews(rows)})
}

// bills serves GET /bills?month=YYYY-MM[&account=][&format=csv] (one
// month per day and model) and GET /bills[?months=N] (recent months'
// totals). Bills are derived from the usage rows (billing.MonthlyBill).
func (a *adminAPI) bills(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	account, format := q.Get("account"), q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return invalid("format %s: want json or csv", envelope.Quote(format))
	}
	ctx := r.Context()
	if month := q.Get("month"); month != "" {
		if _, err := billing.ParseMonth(month); err != nil {
			return invalid("month %s: want YYYY-MM", envelope.Quote(month))
		}
		b, err := a.o.Billing.MonthlyBill(ctx, account, month)
		if err != nil {
			return err
		}
		if format == "csv" {
			var buf bytes.Buffer
			if err := b.WriteCSV(&buf); err != nil {
				return err
			}
			name := "bill-" + month
			if account != "" && ValidAccountID(account) {
				name += "-" + account
			}
			w.Header().Set("Content-Type", "text/csv; charset=UTF-8")
			w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(buf.Bytes())
			return nil
		}
		if b.Lines == nil {
			b.Lines = []billing.BillLine{}
		}
		return writeJSON(w, http.StatusOK, b)
	}
	if format == "csv" {
		return missing("month is required for the CSV export (one month per file)")
	}
	months := 6
	if s := q.Get("months"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 120 {
			return invalid("months %s: want 1–120", envelope.Quote(s))
		}
		months = n
	}
	out, err := a.o.Billing.RecentBills(ctx, account, months, a.now()) // months ≥ 1: never nil
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

// --- prices ---

// Price is the JSON form of a price-table row: micros, and CNY strings.
// The cached-input price shown is the one charged (the input price when
// the row sets none).
type Price struct {
	Model             string `json:"model"`
	InputMicros       int64  `json:"input_micros_per_1k"`
	CachedInputMicros int64  `json:"cached_input_micros_per_1k"`
	OutputMicros      int64  `json:"output_micros_per_1k"`
	PerCallMicros     int64  `json:"per_call_micros"`
	ImageMicros       int64  `json:"image_micros"`
	Input             string `json:"input_cny_per_1k"`
	CachedInput       string `json:"cached_input_cny_per_1k"`
	Output            string `json:"output_cny_per_1k"`
	PerCall           string `json:"per_call_cny"`
	Image             string `json:"image_cny"`
}

// PriceView is p as JSON.
func PriceView(p billing.Price) Price {
	return Price{Model: p.Model, InputMicros: int64(p.Input), CachedInputMicros: int64(p.Cached()), OutputMicros: int64(p.Output),
		PerCallMicros: int64(p.PerCall), ImageMicros: int64(p.Image),
		Input: p.Input.String(), CachedInput: p.Cached().String(), Output: p.Output.String(), PerCall: p.PerCall.String(),
		Image: p.Image.String()}
}

func (a *adminAPI) listPrices(w http.ResponseWriter, r *http.Request) error {
	ps, err := a.o.Billing.Prices(r.Context())
	if err != nil {
		return err
	}
	out := make([]Price, 0, len(ps))
	for _, p := range ps {
		out = append(out, PriceView(p))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

// setPrice serves PUT /prices/{model}
// {"price"|"input"|"cached_input"|"output"|"per_call"|"image"}:
// fields left out keep their current value. This process charges the new
// price at once (PricesChanged); other running engines pick it up within
// their refresh interval (billing.DefaultPriceRefresh); a reservation
// keeps the price it was made at.
func (a *adminAPI) setPrice(w http.ResponseWriter, r *http.Request) error {
	model := r.PathValue("model")
	if err := ValidModel(model); err != nil {
		return err
	}
	var in struct {
		Price, Input, Output, Image Amount
		CachedInput                 Amount `json:"cached_input"`
		PerCall                     Amount `json:"per_call"`
		Force                       bool
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if err := Models("model", []string{model}, a.o.Models, in.Force); err != nil {
		return err
	}
	change := PriceInput{Price: in.Price, Input: in.Input, CachedInput: in.CachedInput, Output: in.Output, PerCall: in.PerCall, Image: in.Image}
	if err := change.Check(model); err != nil {
		return err
	}
	ctx := r.Context()
	ps, err := a.o.Billing.Prices(ctx)
	if err != nil {
		return err
	}
	p, err := change.Apply(billing.PriceIn(ps, model))
	if err != nil {
		return err
	}
	if err := a.o.Billing.SetPrice(ctx, p); err != nil {
		return fmt.Errorf("admin: set price: %w", err)
	}
	if a.o.PricesChanged != nil {
		a.o.PricesChanged() // logs its own failure; the refresh picks the row up then
	}
	return writeJSON(w, http.StatusOK, PriceView(p))
}
