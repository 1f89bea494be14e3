package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
)

// The money actions of an account's page. Each reads its form, runs the
// validators `glm packages grant|revoke|adjust`, `glm topup`, `glm cash
// adjust` and `glm accounts disable|enable` run (platform/admin), and then
// the same billing operation; a refusal renders the page again with the
// message next to the field and the form as typed, having saved nothing.
// A success redirects to the page (so a reload posts nothing twice).

// accountAction is one action: the fields of its form and what it does.
type accountAction struct {
	fields []string
	run    func(c *Console, q *req, a platform.Account, f *form) error
}

var accountActions = map[string]accountAction{
	"grant":   {[]string{"tokens", "days", "name", "type", "models", "reason"}, (*Console).grantPackage},
	"revoke":  {[]string{"package", "reason"}, (*Console).revokePackage},
	"adjust":  {[]string{"package", "tokens", "reason"}, (*Console).adjustPackage},
	"topup":   {[]string{"cny", "reason"}, (*Console).topUp},
	"cash":    {[]string{"cny", "reason"}, (*Console).adjustCash},
	"disable": {[]string{"reason"}, (*Console).switchAccount},
	"enable":  {[]string{"reason"}, (*Console).switchAccount},
}

func (c *Console) adminAccountAction(q *req) error {
	name := q.r.PathValue("action")
	act, ok := accountActions[name]
	if !ok {
		return errNotFound
	}
	a, err := c.pathAccount(q)
	if err != nil {
		return err
	}
	f := newForm(name, q.r.PostForm)
	err = act.run(c, q, a, f)
	if err != nil && isRefusal(err) {
		f.refuse(err, act.fields...)
	} else if err != nil {
		return err
	}
	if f.Failed() {
		c.metrics.errors.WithLabelValues("admin", "400").Inc()
		c.log.Info("console: operator action refused", "action", name, "account", a.ID, "by", q.user.Email, "why", f.Errors)
		if a, err = c.pathAccount(q); err != nil {
			return err
		}
		return c.renderAccount(q, a, f, http.StatusBadRequest)
	}
	c.log.Info("console: operator action", "action", name, "account", a.ID, "by", q.user.Email)
	http.Redirect(q.w, q.r, Prefix+"/admin/accounts/"+url.PathEscape(a.ID)+"?done="+name, http.StatusSeeOther)
	return nil
}

// correction checks the form's reason (admin.Reason, the CLI's and API's
// rule) and names the signed-in operator as the actor. A refusal is set
// on the form; the caller goes on validating the other fields, so every
// wrong field is shown at once.
func correction(q *req, f *form) billing.Correction {
	why, err := admin.Reason(f.Get("reason"))
	if err != nil {
		f.refuse(err, "reason")
	}
	return billing.Correction{Actor: q.user.Email, Reason: why}
}

// intField reads an integer field: nil when empty (the validator says it
// is required), a message next to the field when it is not a number.
func intField(q *req, f *form, field string) *int64 {
	s := strings.TrimSpace(f.Get(field))
	if s == "" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f.Errors[field] = fmt.Sprintf(tr(q.lang, "adm.err.integer"), field)
		return nil
	}
	return &n
}

func (c *Console) grantPackage(q *req, a platform.Account, f *form) error {
	tokens := intField(q, f, "tokens")
	var days *int
	if d := intField(q, f, "days"); d != nil {
		n := int(max(min(*d, 1<<31-1), -1<<31))
		days = &n
	}
	var models []string
	for _, m := range strings.FieldsFunc(f.Get("models"), func(r rune) bool { return r == ',' || r == ' ' }) {
		models = append(models, m)
	}
	why := correction(q, f)
	if f.Errors["tokens"] != "" || f.Errors["days"] != "" {
		return nil
	}
	now := c.now()
	g, err := admin.GrantInput{AccountID: a.ID, Tokens: tokens, Days: days, Models: models,
		Name: strings.TrimSpace(f.Get("name")), Type: f.Get("type")}.Grant(now)
	if err == nil {
		err = admin.Models("models", g.Models, c.o.Hooks.Models, f.Get("force") == "on")
	}
	if err != nil || f.Failed() {
		return err
	}
	g.By = &why
	if _, err := c.o.Billing.GrantPackage(q.r.Context(), g); err != nil {
		return fmt.Errorf("console: grant: %w", err)
	}
	if h := c.o.Hooks.PackagesChanged; h != nil {
		h(a.ID)
	}
	return nil
}

// accountPackage is the form's package when it belongs to a; anything else
// is a message next to the field.
func (c *Console) accountPackage(q *req, a platform.Account, f *form) (string, error) {
	id := f.Get("package")
	ps, err := c.o.Billing.ListPackages(q.r.Context(), a.ID)
	if err != nil {
		return "", err
	}
	for _, p := range ps {
		if p.ID == id {
			return id, nil
		}
	}
	f.Errors["package"] = tr(q.lang, "adm.err.package")
	return "", nil
}

func (c *Console) revokePackage(q *req, a platform.Account, f *form) error {
	why := correction(q, f)
	id, err := c.accountPackage(q, a, f)
	if err != nil || f.Failed() {
		return err
	}
	if _, err := c.o.Billing.RevokePackage(q.r.Context(), id, why); err != nil {
		return ledgerErr(err)
	}
	if h := c.o.Hooks.PackageRevoked; h != nil {
		h(a.ID, id)
	}
	return nil
}

func (c *Console) adjustPackage(q *req, a platform.Account, f *form) error {
	why := correction(q, f)
	tokens := intField(q, f, "tokens")
	id, err := c.accountPackage(q, a, f)
	if err != nil {
		return err
	}
	delta, err := admin.PackageAdjustment(tokens)
	if err != nil && f.Errors["tokens"] == "" {
		f.refuse(err, "tokens")
	}
	if f.Failed() {
		return nil
	}
	if _, err := c.o.Billing.AdjustPackage(q.r.Context(), id, delta, why); err != nil {
		return ledgerErr(err)
	}
	if h := c.o.Hooks.PackagesChanged; h != nil {
		h(a.ID)
	}
	return nil
}

func (c *Console) topUp(q *req, a platform.Account, f *form) error {
	why := correction(q, f)
	amount, err := admin.TopUp(admin.CNY(strings.TrimSpace(f.Get("cny"))), why.Reason)
	if err != nil {
		f.refuse(err, "cny")
	}
	if f.Failed() {
		return nil
	}
	if _, _, err := c.o.Billing.TopUpBy(q.r.Context(), a.ID, amount, why); err != nil {
		return fmt.Errorf("console: topup: %w", err)
	}
	return nil
}

func (c *Console) adjustCash(q *req, a platform.Account, f *form) error {
	why := correction(q, f)
	amount, err := admin.CashAdjustment(admin.CNY(strings.TrimSpace(f.Get("cny"))))
	if err != nil {
		f.refuse(err, "cny")
	}
	if f.Failed() {
		return nil
	}
	if _, err := c.o.Billing.AdjustCash(q.r.Context(), a.ID, amount, why); err != nil {
		return ledgerErr(err)
	}
	return nil
}

// switchAccount disables or enables the account through admin.SwitchAccount,
// the rule `glm accounts disable|enable` and the API share.
func (c *Console) switchAccount(q *req, a platform.Account, f *form) error {
	why := correction(q, f)
	if f.Failed() {
		return nil
	}
	sw, ok := c.o.Store.(admin.AccountSwitch)
	if !ok {
		return errors.New("console: the account store cannot disable accounts")
	}
	disable := q.r.PathValue("action") == "disable"
	if _, err := admin.SwitchAccount(q.r.Context(), sw, c.o.Billing, a, disable, why, c.now()); err != nil {
		return err
	}
	if h := c.o.Hooks.AccountChanged; h != nil {
		h(a.ID)
	}
	return nil
}

// ledgerErr keeps the ledger's refusals (a take larger than the unleased
// balance) as refusals and wraps anything else.
func ledgerErr(err error) error {
	if isRefusal(err) {
		return err
	}
	return fmt.Errorf("console: %w", err)
}
