package admin

// Admin routes for limits: rules per account and per key
// stored in the database (billing_limit_rules) and enforced in memory by
// every glm serve; the same operations as `glm limits set|list|clear`,
// validated by the same validator (platform/admin).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/platform/limits"
)

// limitSubject checks that the {id} of a limits path names an existing
// account or key: 404/1214 otherwise.
func (a *adminAPI) limitSubject(ctx context.Context, subject, id string) error {
	switch subject {
	case platform.LimitAccount:
		if !ValidAccountID(id) {
			return notFound("no account %s", envelope.Quote(id))
		}
		_, err := a.o.Accounts.GetAccount(ctx, id)
		if errors.Is(err, platform.ErrNotFound) {
			return notFound("no account %s", envelope.Quote(id))
		}
		if err != nil {
			return fmt.Errorf("admin: get account: %w", err)
		}
	default:
		if !platform.ValidKeyID(id) {
			return notFound("no key %s", envelope.Quote(id))
		}
		_, err := a.o.Keys.GetKey(ctx, id)
		if errors.Is(err, platform.ErrNotFound) {
			return notFound("no key %s", envelope.Quote(id))
		}
		if err != nil {
			return fmt.Errorf("admin: get key: %w", err)
		}
	}
	return nil
}

// limitsChanged applies a change on this process at once.
func (a *adminAPI) limitsChanged(ctx context.Context) error {
	if a.o.Limits == nil {
		return nil
	}
	if err := a.o.Limits.Reload(ctx); err != nil {
		return fmt.Errorf("admin: stored, but reloading the limits failed (they apply within the reload interval): %w", err)
	}
	return nil
}

type enforcedView struct {
	Rules    limits.Rules `json:"rules"`
	LoadedAt time.Time    `json:"loaded_at"`
	Every    string       `json:"reload_every"`
}

// listLimits serves GET /limits: the rules in the database and, when this
// process enforces limits, what it enforces now (the --limits file's
// rules with the database's on top, before the replica share).
func (a *adminAPI) listLimits(w http.ResponseWriter, r *http.Request) error {
	rs, err := a.o.Billing.ListLimits(r.Context())
	if err != nil {
		return err
	}
	out := map[string]any{"data": LimitViews(rs)}
	if a.o.Limits != nil {
		rules, at := a.o.Limits.Enforced()
		out["enforced"] = enforcedView{Rules: rules, LoadedAt: at, Every: a.o.Limits.Every().String()}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *adminAPI) getLimit(subject string) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		if err := a.limitSubject(r.Context(), subject, id); err != nil {
			return err
		}
		rule, ok, err := a.o.Billing.GetLimit(r.Context(), subject, id)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("%s %s has no limit rule", subject, id)
		}
		return writeJSON(w, http.StatusOK, LimitView(rule))
	}
}

// setLimit serves PUT /limits/{accounts|keys}/{id}
// {"max_concurrent"?, "rpm"?, "daily_tokens"?}: fields left out keep their
// value, 0 turns a limit off.
func (a *adminAPI) setLimit(subject string) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		ctx := r.Context()
		if err := a.limitSubject(ctx, subject, id); err != nil {
			return err
		}
		var in LimitValues
		if err := decode(w, r, &in); err != nil {
			return err
		}
		patch, err := Limit(subject, id, in)
		if err != nil {
			return err
		}
		rule, err := a.o.Billing.SetLimit(ctx, subject, id, patch)
		if err != nil {
			return fmt.Errorf("admin: set limit: %w", err)
		}
		if err := a.limitsChanged(ctx); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, LimitView(rule))
	}
}

// clearLimit serves DELETE /limits/{accounts|keys}/{id}: the subject falls
// back to the --limits file's rule, if any.
func (a *adminAPI) clearLimit(subject string) adminFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id := r.PathValue("id")
		ctx := r.Context()
		if err := a.limitSubject(ctx, subject, id); err != nil {
			return err
		}
		found, err := a.o.Billing.ClearLimit(ctx, subject, id)
		if err != nil {
			return err
		}
		if !found {
			return notFound("%s %s has no limit rule", subject, id)
		}
		if err := a.limitsChanged(ctx); err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, map[string]any{"subject": subject, "id": id, "cleared": true})
	}
}
