package admin

// Admin routes that undo money mistakes and switch accounts off, each
// written to the audit log (GET /audit): a package revoked or shrunk,
// cash adjusted up or down, a price row deleted, an account disabled or
// enabled. The validators are the ones the glm commands use
// (corrections.go).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/envelope"
)

// AccountSwitch disables (at != zero) and enables accounts
// (platform/store.SQL has it).
type AccountSwitch interface {
	SetAccountDisabled(ctx context.Context, id string, at time.Time) error
}

// actor names who made a correction through the API: the admin token has
// no user, so the client address stands for it.
func actor(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "admin-api@" + host
}

func (a *adminAPI) correction(r *http.Request, reason string) (billing.Correction, error) {
	why, err := Reason(reason)
	if err != nil {
		return billing.Correction{}, err
	}
	return billing.Correction{Actor: actor(r), Reason: why}, nil
}

// moneyErr answers a billing refusal as is and an unknown package as 404.
func moneyErr(what string, err error) error {
	if errors.Is(err, billing.ErrNotFound) {
		return notFound("no package %s", envelope.Quote(what))
	}
	var pe *platform.Error
	if errors.As(err, &pe) {
		return err
	}
	return fmt.Errorf("admin: %s: %w", what, err)
}

// revokePackage serves POST /packages/{package}/revoke {"reason"}.
func (a *adminAPI) revokePackage(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	c, err := a.correction(r, in.Reason)
	if err != nil {
		return err
	}
	id := r.PathValue("package")
	e, err := a.o.Billing.RevokePackage(r.Context(), id, c)
	if err != nil {
		return moneyErr(id, err)
	}
	if a.o.PackageRevoked != nil {
		a.o.PackageRevoked(e.AccountID, id)
	}
	return writeJSON(w, http.StatusOK, e)
}

// adjustPackage serves POST /packages/{package}/adjust {"tokens", "reason"}.
func (a *adminAPI) adjustPackage(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Tokens *int64 `json:"tokens"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	delta, err := PackageAdjustment(in.Tokens)
	if err != nil {
		return err
	}
	c, err := a.correction(r, in.Reason)
	if err != nil {
		return err
	}
	id := r.PathValue("package")
	e, err := a.o.Billing.AdjustPackage(r.Context(), id, delta, c)
	if err != nil {
		return moneyErr(id, err)
	}
	if a.o.PackagesChanged != nil {
		a.o.PackagesChanged(e.AccountID)
	}
	return writeJSON(w, http.StatusOK, e)
}

// adjustCash serves POST /accounts/{account}/cash/adjust {"cny", "reason"}.
func (a *adminAPI) adjustCash(w http.ResponseWriter, r *http.Request) error {
	acct, err := a.account(r)
	if err != nil {
		return err
	}
	var in struct {
		CNY    Amount `json:"cny"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	amount, err := CashAdjustment(in.CNY)
	if err != nil {
		return err
	}
	c, err := a.correction(r, in.Reason)
	if err != nil {
		return err
	}
	e, err := a.o.Billing.AdjustCash(r.Context(), acct.ID, amount, c)
	if err != nil {
		return moneyErr(acct.ID, err)
	}
	return writeJSON(w, http.StatusOK, e)
}

// deletePrice serves DELETE /prices/{model}?reason=.
func (a *adminAPI) deletePrice(w http.ResponseWriter, r *http.Request) error {
	model := r.PathValue("model")
	if err := ValidModel(model); err != nil {
		return err
	}
	c, err := a.correction(r, r.URL.Query().Get("reason"))
	if err != nil {
		return err
	}
	e, found, err := a.o.Billing.DeletePrice(r.Context(), model, c)
	if err != nil {
		return fmt.Errorf("admin: delete price: %w", err)
	}
	if !found {
		return notFound("no price row for model %s", envelope.Quote(model))
	}
	if a.o.PricesChanged != nil {
		a.o.PricesChanged()
	}
	return writeJSON(w, http.StatusOK, e)
}

// switchAccount serves POST /accounts/{account}/disable and /enable
// {"reason"}: the account's keys stop (or work again) at once on this
// process, within the key cache's recheck elsewhere.
func (a *adminAPI) switchAccount(disable bool) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		acct, err := a.account(r)
		if err != nil {
			return err
		}
		var in struct {
			Reason string `json:"reason"`
		}
		if err := decode(w, r, &in); err != nil {
			return err
		}
		c, err := a.correction(r, in.Reason)
		if err != nil {
			return err
		}
		sw, ok := a.o.Accounts.(AccountSwitch)
		if !ok {
			return fmt.Errorf("admin: the account store cannot disable accounts")
		}
		e, err := SwitchAccount(r.Context(), sw, a.o.Billing, acct, disable, c, a.now())
		if err != nil {
			return err
		}
		if a.o.AccountChanged != nil {
			a.o.AccountChanged(acct.ID)
		}
		return writeJSON(w, http.StatusOK, e)
	}
}

// SwitchAccount disables or enables acct and records it in the audit log:
// the one rule the API and glm accounts disable|enable share.
func SwitchAccount(ctx context.Context, sw AccountSwitch, st *billing.Store, acct platform.Account, disable bool, c billing.Correction, now time.Time) (billing.AuditEntry, error) {
	at, action, after := time.Time{}, billing.ActionAccountEnable, "enabled"
	if disable {
		at, action, after = now, billing.ActionAccountDisable, "disabled"
	}
	before := "enabled"
	if acct.Disabled() {
		before = "disabled since " + acct.DisabledAt.In(billing.BillingZone).Format(time.RFC3339)
	}
	if err := sw.SetAccountDisabled(ctx, acct.ID, at); err != nil {
		return billing.AuditEntry{}, fmt.Errorf("admin: switch account: %w", err)
	}
	return st.RecordAudit(ctx, billing.AuditEntry{Actor: c.Actor, Action: action, AccountID: acct.ID, Subject: acct.ID,
		Before: before, After: after, Reason: c.Reason})
}

// auditLog serves GET /audit?account=&limit=, newest first.
func (a *adminAPI) auditLog(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return invalid("limit %s: want a whole number ≥ 0", envelope.Quote(s))
		}
		limit = n
	}
	es, err := a.o.Billing.AuditLog(r.Context(), q.Get("account"), limit)
	if err != nil {
		return fmt.Errorf("admin: audit log: %w", err)
	}
	if es == nil {
		es = []billing.AuditEntry{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"data": es})
}
