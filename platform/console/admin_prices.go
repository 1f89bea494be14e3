package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
)

// priceField is one priced figure of the price table: its form field (the
// admin API's name), its label, and how it is read from a row and set on a
// change. A new figure of billing.Price (and admin.PriceInput) is one more
// line here plus its two labels; the table, the form and the audit row
// follow.
type priceField struct {
	Name, Label string
	get         func(billing.Price) billing.Micros
	set         func(*admin.PriceInput, admin.Amount)
}

func priceFields() []priceField {
	return []priceField{
		{"input", "adm.price.input", func(p billing.Price) billing.Micros { return p.Input }, func(in *admin.PriceInput, a admin.Amount) { in.Input = a }},
		{"cached_input", "adm.price.cached", func(p billing.Price) billing.Micros { return p.Cached() }, func(in *admin.PriceInput, a admin.Amount) { in.CachedInput = a }},
		{"output", "adm.price.output", func(p billing.Price) billing.Micros { return p.Output }, func(in *admin.PriceInput, a admin.Amount) { in.Output = a }},
		{"per_call", "adm.price.call", func(p billing.Price) billing.Micros { return p.PerCall }, func(in *admin.PriceInput, a admin.Amount) { in.PerCall = a }},
		{"image", "adm.price.image", func(p billing.Price) billing.Micros { return p.Image }, func(in *admin.PriceInput, a admin.Amount) { in.Image = a }},
	}
}

// priceRow is a row with its figures in priceFields' order.
type priceRow struct {
	Model  string
	Values []string
}

type pricesData struct {
	Fields []priceField
	Rows   []priceRow
	// Set and Delete are the two forms: as typed when refused, else Set
	// holds the row picked for editing (?model=).
	Set, Delete *form
	Done        string
}

func (c *Console) adminPrices(q *req) error {
	set := newForm("set", q.r.URL.Query())
	if m := q.r.URL.Query().Get("model"); m != "" {
		ps, err := c.o.Billing.Prices(q.r.Context())
		if err != nil {
			return err
		}
		p := billing.PriceIn(ps, m)
		for _, f := range priceFields() {
			set.Values.Set(f.Name, f.get(p).String())
		}
	}
	return c.renderPrices(q, set, nil, http.StatusOK)
}

func (c *Console) renderPrices(q *req, set, del *form, status int) error {
	ps, err := c.o.Billing.Prices(q.r.Context())
	if err != nil {
		return err
	}
	d := &pricesData{Fields: priceFields(), Set: set, Delete: del, Done: q.r.URL.Query().Get("done")}
	for _, p := range ps {
		row := priceRow{Model: p.Model}
		for _, f := range d.Fields {
			row.Values = append(row.Values, f.get(p).String())
		}
		d.Rows = append(d.Rows, row)
	}
	c.render(q, status, "admin_prices.html", d)
	return nil
}

// adminSetPrice is `glm prices set` from a form: the same checks
// (admin.ValidModel, admin.Models, PriceInput.Check/Apply on the current
// row), billing.SetPrice, and this process charges by it at once.
func (c *Console) adminSetPrice(q *req) error {
	f := newForm("set", q.r.PostForm)
	fields := []string{"model", "reason"}
	model := strings.TrimSpace(f.Get("model"))
	var change admin.PriceInput
	for _, pf := range priceFields() {
		fields = append(fields, pf.Name)
		pf.set(&change, admin.CNY(strings.TrimSpace(f.Get(pf.Name))))
	}
	why := correction(q, f)
	ctx := q.r.Context()
	err := admin.ValidModel(model)
	if err == nil {
		err = admin.Models("model", []string{model}, c.o.Hooks.Models, f.Get("force") == "on")
	}
	var before, after billing.Price
	if err == nil {
		err = change.Check(model)
	}
	if err == nil {
		var ps []billing.Price
		if ps, err = c.o.Billing.Prices(ctx); err != nil {
			return err
		}
		before = billing.PriceIn(ps, model)
		after, err = change.Apply(before)
	}
	if err != nil {
		if !isRefusal(err) {
			return err
		}
		f.refuse(err, fields...)
	}
	if f.Failed() {
		c.log.Info("console: price change refused", "model", model, "by", q.user.Email, "why", f.Errors)
		return c.renderPrices(q, f, nil, http.StatusBadRequest)
	}
	if _, err := c.o.Billing.SetPriceBy(ctx, after, why); err != nil {
		return fmt.Errorf("console: set price: %w", err)
	}
	if h := c.o.Hooks.PricesChanged; h != nil {
		h()
	}
	c.log.Info("console: price set", "model", model, "by", q.user.Email)
	http.Redirect(q.w, q.r, Prefix+"/admin/prices?done=set", http.StatusSeeOther)
	return nil
}

// adminDeletePrice is `glm prices delete`: billing.DeletePrice records the
// row as it was in the audit log.
func (c *Console) adminDeletePrice(q *req) error {
	f := newForm("delete", q.r.PostForm)
	model := strings.TrimSpace(f.Get("model"))
	why := correction(q, f)
	if err := admin.ValidModel(model); err != nil {
		f.refuse(err, "model")
	}
	if !f.Failed() {
		_, found, err := c.o.Billing.DeletePrice(q.r.Context(), model, why)
		if err != nil {
			return fmt.Errorf("console: delete price: %w", err)
		}
		if !found {
			f.Errors["model"] = tr(q.lang, "adm.err.no_price")
		}
	}
	if f.Failed() {
		return c.renderPrices(q, nil, f, http.StatusBadRequest)
	}
	if h := c.o.Hooks.PricesChanged; h != nil {
		h()
	}
	c.log.Info("console: price deleted", "model", model, "by", q.user.Email)
	http.Redirect(q.w, q.r, Prefix+"/admin/prices?done=delete", http.StatusSeeOther)
	return nil
}
