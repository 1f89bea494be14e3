package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
)

// adminPageSize is the rows of an operator's list per page.
const adminPageSize = 20

// accountRow is one line of the operator's account list.
type accountRow struct {
	platform.Account
	Cash billing.Micros
	// Remaining is the tokens left in the packages that pay now.
	Remaining    int64
	LastActivity time.Time
}

type accountsData struct {
	Rows   []accountRow
	Search string
	Status string // "", "enabled" or "disabled"
	Pager  pager
}

// adminAccounts lists every account, filtered by a search on id or name
// and by status, a page at a time; balances are read for the page's rows
// only, live from billing's tables.
func (c *Console) adminAccounts(q *req) error {
	ctx := q.r.Context()
	all, err := c.o.Store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	qv := q.r.URL.Query()
	d := &accountsData{Search: strings.TrimSpace(qv.Get("q")), Status: qv.Get("status")}
	if d.Status != "enabled" && d.Status != "disabled" {
		d.Status = ""
	}
	needle := strings.ToLower(d.Search)
	var hits []platform.Account
	for _, a := range all {
		if needle != "" && !strings.Contains(strings.ToLower(a.ID), needle) && !strings.Contains(strings.ToLower(a.Name), needle) {
			continue
		}
		if (d.Status == "enabled" && a.Disabled()) || (d.Status == "disabled" && !a.Disabled()) {
			continue
		}
		hits = append(hits, a)
	}
	lo, hi, p := paginate(len(hits), adminPageSize, pageOf(q), func(n int) string {
		return withQuery(Prefix+"/admin/accounts", url.Values{"q": {d.Search}, "status": {d.Status}, "page": {itoa(n)}})
	})
	d.Pager = p
	now := c.now()
	for _, a := range hits[lo:hi] {
		row := accountRow{Account: a}
		bal, err := c.o.Billing.Balance(ctx, a.ID)
		if err != nil {
			return err
		}
		row.Cash = bal.Cash
		ps, err := c.o.Billing.ListPackages(ctx, a.ID)
		if err != nil {
			return err
		}
		for _, pk := range ps {
			if pk.ActiveAt(now) {
				row.Remaining += pk.TokensRemaining
			}
		}
		keys, err := c.o.Store.ListKeysMasked(ctx, a.ID)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if k.LastUsedAt.After(row.LastActivity) {
				row.LastActivity = k.LastUsedAt
			}
		}
		d.Rows = append(d.Rows, row)
	}
	c.render(q, http.StatusOK, "admin_accounts.html", d)
	return nil
}

// accountData is one account's page for the operator.
type accountData struct {
	Account  platform.Account
	Packages []packageRow
	Cash     billing.Balance
	Keys     []platform.Key
	Users    []platform.User
	// Usage is the account usage page's data, shown with its own partial.
	Usage *usageData
	// Form is the form refused in this answer (nil: none).
	Form *form
	// Done names the action just made ("" on a plain visit).
	Done string
}

// pathAccount loads the account of the path; an unknown one is 404. The
// page's account (q.account) becomes it, so the usage partial and its
// links read that account.
func (c *Console) pathAccount(q *req) (platform.Account, error) {
	id := q.r.PathValue("id")
	a, err := c.o.Store.GetAccount(q.r.Context(), id)
	if errors.Is(err, platform.ErrNotFound) {
		return platform.Account{}, errNotFound
	}
	if err != nil {
		return platform.Account{}, err
	}
	q.account = a
	return a, nil
}

func (c *Console) adminAccount(q *req) error {
	a, err := c.pathAccount(q)
	if err != nil {
		return err
	}
	return c.renderAccount(q, a, nil, http.StatusOK)
}

// renderAccount reads the account's page afresh (after an action, or with
// a refused form kept as typed) and renders it with status.
func (c *Console) renderAccount(q *req, a platform.Account, f *form, status int) error {
	ctx := q.r.Context()
	d := &accountData{Account: a, Form: f, Done: q.r.URL.Query().Get("done")}
	ps, err := c.o.Billing.ListPackages(ctx, a.ID)
	if err != nil {
		return err
	}
	now := c.now()
	for _, p := range ps {
		d.Packages = append(d.Packages, packageRow{Package: p, Status: p.Status(now)})
	}
	if d.Cash, err = c.o.Billing.Balance(ctx, a.ID); err != nil {
		return err
	}
	if d.Keys, err = c.o.Store.ListKeysMasked(ctx, a.ID); err != nil {
		return err
	}
	if d.Users, err = c.o.Store.ListUsers(ctx, a.ID); err != nil {
		return err
	}
	if d.Usage, err = c.usageData(q); err != nil {
		return err
	}
	c.render(q, status, "admin_account.html", d)
	return nil
}
