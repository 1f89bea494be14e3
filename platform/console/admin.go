package console

// The operator's pages under /console/admin/ (docs/console.md §7): every
// account with its balances, one account's packages, keys, users and
// usage with the money actions, the audit log, the price table, the
// backends' health and the request log. Only a user with role admin sees
// them; anyone else gets the console's 404 page, as if they did not
// exist. Every action goes through the operations and validators the glm
// commands and the admin API use (platform/admin, platform/billing), with
// a required reason, and is written to the audit log with the signed-in
// operator's e-mail as its actor (docs/design.md §8).

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/glmkit/glmkit/platform"
)

// Hooks tell this process about an operator's change at once, as the
// admin API's do (admin.Options): other processes see it within their
// recheck. Nil fields are skipped.
type Hooks struct {
	PackagesChanged func(accountID string)
	PackageRevoked  func(accountID, packageID string)
	PricesChanged   func()
	AccountChanged  func(accountID string)
	// Models reports whether this platform serves a model: price rows and
	// package scopes naming another are refused unless forced, as in the
	// admin API.
	Models func(string) bool
}

// adminPageFiles are the operator's pages, each parsed with layout.html
// and the files it borrows partials from (the account page shows the
// usage page's body, defined once in usage.html).
var adminPageFiles = map[string][]string{
	"admin_accounts.html": {"admin_parts.html"},
	"admin_account.html":  {"usage.html", "admin_parts.html"},
	"admin_audit.html":    {"admin_parts.html"},
	"admin_prices.html":   {"admin_parts.html"},
	"admin_backends.html": {"admin_parts.html"},
	"admin_logs.html":     {"admin_parts.html"},
}

// parseAdminPages adds the operator's pages to out: the borrowed files
// first, so the page's own "title" and "content" are the ones kept.
func parseAdminPages(out map[string]*template.Template) {
	for p, deps := range adminPageFiles {
		names := []string{"templates/layout.html"}
		for _, d := range deps {
			names = append(names, "templates/"+d)
		}
		out[p] = template.Must(template.New(p).ParseFS(files, append(names, "templates/"+p)...))
	}
}

func (c *Console) adminRoutes() {
	m, a := c.mux, Prefix+"/admin"
	m.HandleFunc("GET "+a, c.page(c.operator(func(q *req) error {
		http.Redirect(q.w, q.r, a+"/accounts", http.StatusSeeOther)
		return nil
	})))
	m.HandleFunc("GET "+a+"/accounts", c.page(c.operator(c.adminAccounts)))
	m.HandleFunc("GET "+a+"/accounts/{id}", c.page(c.operator(c.adminAccount)))
	m.HandleFunc("POST "+a+"/accounts/{id}/{action}", c.page(c.operator(c.adminAccountAction)))
	m.HandleFunc("GET "+a+"/audit", c.page(c.operator(c.adminAudit)))
	m.HandleFunc("GET "+a+"/prices", c.page(c.operator(c.adminPrices)))
	m.HandleFunc("POST "+a+"/prices", c.page(c.operator(c.adminSetPrice)))
	m.HandleFunc("POST "+a+"/prices/delete", c.page(c.operator(c.adminDeletePrice)))
	m.HandleFunc("GET "+a+"/backends", c.page(c.operator(c.adminBackends)))
	m.HandleFunc("GET "+a+"/live/backends", c.page(c.operator(c.adminBackendsLive)))
	m.HandleFunc("GET "+a+"/logs", c.page(c.operator(c.adminLogs)))
}

// operator is signedIn plus the admin role: for anyone else the operator's
// pages do not exist (404), and a POST without its csrf_token is refused
// (403) before the role is looked at, like every console form.
func (c *Console) operator(h handler) handler {
	return c.signedIn(func(q *req) error {
		if q.user.Role != platform.RoleAdmin {
			c.log.Warn("console: operator page refused to a non-admin", "path", q.r.URL.Path, "user", q.user.Email,
				"role", q.user.Role)
			return errNotFound
		}
		q.accounts = nil // no account picker: an operator's page names its account itself
		return h(q)
	})
}

// form is an operator's form as typed: its values, kept on a refusal, and
// the message of each refused field ("" for the form as a whole).
type form struct {
	// Name says which form of the page was posted (several share a page).
	Name   string
	Values url.Values
	Errors map[string]string
}

func newForm(name string, v url.Values) *form {
	return &form{Name: name, Values: v, Errors: map[string]string{}}
}

// Get is what was typed in field.
func (f *form) Get(field string) string {
	if f == nil {
		return ""
	}
	return f.Values.Get(field)
}

// Err is the message next to field.
func (f *form) Err(field string) string {
	if f == nil {
		return ""
	}
	return f.Errors[field]
}

// Failed reports whether the form was refused.
func (f *form) Failed() bool { return f != nil && len(f.Errors) > 0 }

// refuse sets the message of a validator's refusal next to the field it
// names. The shared validators (platform/admin) start their message with
// the API's field name ("tokens must be positive", "reason is required:
// …"); the console's forms use those names, so the message lands next to
// the field the operator typed. A message naming no field of the form is
// shown for the form as a whole.
func (f *form) refuse(err error, fields ...string) {
	msg := platform.AsError(err).Message
	lead := msg
	if i := strings.IndexAny(lead, " :("); i >= 0 {
		lead = lead[:i]
	}
	for _, fl := range fields {
		if fl == lead {
			f.Errors[fl] = msg
			return
		}
	}
	f.Errors[""] = msg
}

// isRefusal reports whether err is a validator's or the ledger's refusal
// (a *platform.Error the operator can act on), not a failure.
func isRefusal(err error) bool {
	var pe *platform.Error
	return errors.As(err, &pe) && pe.Status() < 500
}

// pageOf reads the ?page= number (1-based; anything else is 1).
func pageOf(q *req) int {
	n, err := strconv.Atoi(q.r.URL.Query().Get("page"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// pager is one page of a list: the rows' bounds and links to the pages
// beside it, keeping the list's filters.
type pager struct {
	Page       int
	Prev, Next string // "" when there is none
	Total      int
}

// paginate cuts n rows into pages of size and returns the bounds of page.
func paginate(n, size, page int, link func(page int) string) (lo, hi int, p pager) {
	p = pager{Page: page, Total: n}
	lo = (page - 1) * size
	if lo > n {
		lo = n
	}
	hi = min(lo+size, n)
	if page > 1 {
		p.Prev = link(page - 1)
	}
	if hi < n {
		p.Next = link(page + 1)
	}
	return lo, hi, p
}

// withQuery is path with v's non-empty values as its query.
func withQuery(path string, v url.Values) string {
	clean := url.Values{}
	for k, vs := range v {
		for _, s := range vs {
			if s != "" {
				clean.Add(k, s)
			}
		}
	}
	if len(clean) == 0 {
		return path
	}
	return path + "?" + clean.Encode()
}

// tr is a catalogue label in lang, for messages a handler composes.
func tr(lang, key string) string {
	if s, ok := catalogues[lang][key]; ok {
		return s
	}
	return zh[key]
}

func itoa(n int) string { return strconv.Itoa(n) }

// OnAdmin reports whether the page is an operator's page (for the nav).
func (v *view) OnAdmin() bool { return strings.HasPrefix(v.Page, "admin_") }

// With is the view showing data instead of the page's: a partial of
// another page (the usage page's body on an account's page) reads its
// data as that page does.
func (v *view) With(data any) *view {
	w := *v
	w.Data = data
	return &w
}

// Form is the page's form called name when this answer refused it (its
// values as typed and its messages), else nil: every getter of a nil form
// answers "".
func (v *view) Form(name string) *form {
	var f *form
	switch d := v.Data.(type) {
	case *accountData:
		f = d.Form
	case *pricesData:
		f = d.Set
		if name == "delete" {
			f = d.Delete
		}
	case *logsData:
		f = d.Filter
	}
	if f == nil || f.Name != name {
		return nil
	}
	return f
}

// fieldView is one input of an operator's form, for the "fld" partial.
type fieldView struct {
	Form, Name, Label, Value, Err, Type string
}

// Field lays out input name of form: its label in the page's language,
// what was typed, and the message next to it.
func (v *view) Field(form, name, label, typ string) fieldView {
	f := v.Form(form)
	return fieldView{Form: form, Name: name, Label: v.T(label), Value: f.Get(name), Err: f.Err(name), Type: typ}
}

// List is its arguments as a list, for a template's range.
func (v *view) List(xs ...string) []string { return xs }
