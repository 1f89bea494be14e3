package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
)

// --- API keys ---

type keysData struct {
	Keys []platform.Key
	// New is the key just created, shown in full this once
	// (docs/design.md §3 Keys).
	New       *platform.Key
	Name      string // what was typed, kept on a refused form
	NameError string
	Revoked   bool
	Manage    bool
	Recheck   string
	// Owner sees the switch; MembersManage is its state; Saved says it
	// was just changed.
	Owner, MembersManage, Saved bool
}

func (c *Console) keysData(q *req) (*keysData, error) {
	all, err := c.o.Store.ListKeysMasked(q.r.Context(), q.account.ID)
	if err != nil {
		return nil, err
	}
	d := &keysData{Manage: q.mayManageKeys(), Recheck: c.o.KeyRecheck.String()}
	if err := c.membersSwitch(q, d); err != nil {
		return nil, err
	}
	for _, k := range all {
		if !k.Revoked() {
			d.Keys = append(d.Keys, k)
		}
	}
	return d, nil
}

func (c *Console) keys(q *req) error {
	d, err := c.keysData(q)
	if err != nil {
		return err
	}
	d.Revoked = q.r.URL.Query().Get("revoked") == "1"
	d.Saved = q.r.URL.Query().Get("saved") == "1"
	c.render(q, http.StatusOK, "keys.html", d)
	return nil
}

// createKey makes a key with the admin API's operation and shows it in
// full in this answer only.
func (c *Console) createKey(q *req) error {
	if !q.mayManageKeys() {
		return errForbidden
	}
	name := q.r.PostFormValue("name")
	if len(name) > 200 {
		d, err := c.keysData(q)
		if err != nil {
			return err
		}
		d.Name, d.NameError = name, "keys.name_long"
		c.render(q, http.StatusBadRequest, "keys.html", d)
		return nil
	}
	k, err := admin.CreateKey(q.r.Context(), c.o.Store, q.account.ID, name, c.now())
	if err != nil {
		return err
	}
	c.log.Info("console: key created", "account", q.account.ID, "key", k.ID, "by", q.user.Email)
	d, err := c.keysData(q)
	if err != nil {
		return err
	}
	d.New = &k
	c.render(q, http.StatusOK, "keys.html", d)
	return nil
}

// accountKey loads the {id} key of the path when it belongs to the page's
// account; anything else is 404, like an unknown key.
func (c *Console) accountKey(q *req) (platform.Key, error) {
	id := q.r.PathValue("id")
	if !platform.ValidKeyID(id) {
		return platform.Key{}, errNotFound
	}
	k, err := c.o.Store.GetKey(q.r.Context(), id)
	if errors.Is(err, platform.ErrNotFound) || (err == nil && (k.AccountID != q.account.ID || k.Revoked())) {
		return platform.Key{}, errNotFound
	}
	return k, err
}

func (c *Console) confirmRevoke(q *req) error {
	if !q.mayManageKeys() {
		return errForbidden
	}
	k, err := c.accountKey(q)
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "revoke.html", map[string]any{"Key": k, "Recheck": c.o.KeyRecheck.String()})
	return nil
}

// revokeKey revokes through the Authenticator: this process refuses the
// key at once, other replicas within --key-recheck.
func (c *Console) revokeKey(q *req) error {
	if !q.mayManageKeys() {
		return errForbidden
	}
	k, err := c.accountKey(q)
	if err != nil {
		return err
	}
	if err := c.o.Revoker.Revoke(q.r.Context(), k.ID); err != nil {
		return err
	}
	c.log.Info("console: key revoked", "account", q.account.ID, "key", k.ID, "by", q.user.Email)
	http.Redirect(q.w, q.r, Prefix+"/keys?revoked=1"+q.accountAmp(), http.StatusSeeOther)
	return nil
}

// --- resource packages ---

type packageRow struct {
	billing.Package
	Status string
}

func (c *Console) packages(q *req) error {
	ctx := q.r.Context()
	ps, err := c.o.Billing.ListPackages(ctx, q.account.ID)
	if err != nil {
		return err
	}
	bal, err := c.o.Billing.Balance(ctx, q.account.ID)
	if err != nil {
		return err
	}
	now := c.now()
	rows := make([]packageRow, 0, len(ps))
	for _, p := range ps {
		rows = append(rows, packageRow{Package: p, Status: p.Status(now)})
	}
	c.render(q, http.StatusOK, "packages.html", map[string]any{"Packages": rows, "Cash": bal.Cash,
		"Welcome": q.r.URL.Query().Get("welcome") == "1"})
	return nil
}

// --- bills ---

func (c *Console) bills(q *req) error {
	ctx := q.r.Context()
	if month := q.r.URL.Query().Get("month"); month != "" {
		b, err := c.o.Billing.MonthlyBill(ctx, q.account.ID, month)
		if err != nil {
			return &pageError{http.StatusBadRequest, "bill.bad_month"}
		}
		c.render(q, http.StatusOK, "bill.html", b)
		return nil
	}
	months, _ := strconv.Atoi(q.r.URL.Query().Get("months"))
	if months != 3 && months != 12 {
		months = 6
	}
	bs, err := c.o.Billing.RecentBills(ctx, q.account.ID, months, c.now())
	if err != nil {
		return err
	}
	c.render(q, http.StatusOK, "bills.html", map[string]any{"Bills": bs, "Months": months, "Ranges": []int{3, 6, 12}})
	return nil
}

// exportBill is 导出数据: the same bytes as `glm bills --month M --csv
// --account A`, from the same writer (billing.Bill.WriteCSV), buffered so
// an error never sends half a file.
func (c *Console) exportBill(q *req) error {
	month := q.r.URL.Query().Get("month")
	b, err := c.o.Billing.MonthlyBill(q.r.Context(), q.account.ID, month)
	if err != nil {
		return &pageError{http.StatusBadRequest, "bill.bad_month"}
	}
	var buf bytes.Buffer
	if err := b.WriteCSV(&buf); err != nil {
		return err
	}
	h := q.w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "bill-"+q.account.ID+"-"+b.Month+".csv"))
	_, _ = q.w.Write(buf.Bytes())
	return nil
}

// live answers the parts of a page that refresh themselves.
func (c *Console) live(q *req) error {
	switch q.r.PathValue("panel") {
	case "keys":
		d, err := c.keysData(q)
		if err != nil {
			return err
		}
		return c.fragment(q, "keys.html", "keys-table", d)
	case "usage":
		d, err := c.usageData(q)
		if err != nil {
			return err
		}
		return c.fragment(q, "usage.html", "usage-body", d)
	}
	return errNotFound
}
