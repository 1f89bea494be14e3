package console

import (
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/glmkit/glmkit/platform/billing"
)

type auditData struct {
	Rows                   []billing.AuditEntry
	Account, Action, Actor string
	Actions, Actors        []string
	Pager                  pager
}

// adminAudit is the audit log, newest first, filtered by account, action
// and actor, a page at a time. The log holds operator actions only (a few
// per day), so it is read whole for the account and filtered here; the
// lists of actions and actors offered come from the same read.
func (c *Console) adminAudit(q *req) error {
	qv := q.r.URL.Query()
	d := &auditData{Account: strings.TrimSpace(qv.Get("account")), Action: qv.Get("action"), Actor: strings.TrimSpace(qv.Get("actor"))}
	all, err := c.o.Billing.AuditLog(q.r.Context(), d.Account, 0)
	if err != nil {
		return err
	}
	actions, actors := map[string]bool{}, map[string]bool{}
	var hits []billing.AuditEntry
	for _, e := range all {
		actions[e.Action], actors[e.Actor] = true, true
		if (d.Action != "" && e.Action != d.Action) || (d.Actor != "" && !strings.EqualFold(e.Actor, d.Actor)) {
			continue
		}
		hits = append(hits, e)
	}
	d.Actions, d.Actors = keysOf(actions), keysOf(actors)
	lo, hi, p := paginate(len(hits), adminPageSize, pageOf(q), func(n int) string {
		return withQuery(Prefix+"/admin/audit", url.Values{"account": {d.Account}, "action": {d.Action}, "actor": {d.Actor}, "page": {itoa(n)}})
	})
	d.Rows, d.Pager = hits[lo:hi], p
	c.render(q, http.StatusOK, "admin_audit.html", d)
	return nil
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
