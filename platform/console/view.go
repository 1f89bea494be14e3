package console

import (
	"fmt"
	"html/template"
	"strconv"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
)

// pageFiles are the pages; each is parsed with layout.html into its own
// set, so every page defines its own "content".
var pageFiles = []string{"signin.html", "keys.html", "revoke.html", "packages.html", "bills.html", "bill.html",
	"usage.html", "password.html", "error.html", "playground.html", "signup.html"}

// pages is every page's template set, parsed at the first page served, not
// when the console is built: parsing them takes ~1.4 MB that a server whose
// console nobody opens would keep (docs/design.md §6). Parsed sets are only
// read afterwards, so every Console of the process shares them.
var pages = sync.OnceValue(parsePages)

func parsePages() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, p := range pageFiles {
		out[p] = template.Must(template.New(p).ParseFS(files, "templates/layout.html", "templates/"+p))
	}
	parseAdminPages(out)
	return out
}

// view is what every template sees: the page's data plus the catalogue,
// the zone and the signed-in user.
type view struct {
	q       *req
	c       *Console
	Page    string
	Data    any
	Lang    string
	User    platform.User
	Account platform.Account
	// Accounts is every account, for an admin's picker (nil otherwise).
	Accounts []platform.Account
	CSRF     string
	// AQ is "?account=ID" for an admin's links ("" otherwise); AA the same
	// as "&account=ID".
	AQ, AA    string
	ZoneName  string
	Refresh   string
	RefreshMS int64
}

func (c *Console) view(q *req, page string, data any) *view {
	aq, aa := q.accountQuery(), q.accountAmp()
	return &view{q: q, c: c, Page: page, Data: data, Lang: q.lang, User: q.user, Account: q.account, Accounts: q.accounts,
		CSRF: q.sess.CSRF, AQ: aq, AA: aa, ZoneName: c.o.ZoneName, Refresh: c.o.Refresh.String(),
		RefreshMS: c.o.Refresh.Milliseconds()}
}

// T is the label key in the page's language (zh when en lacks it).
func (v *view) T(key string) string {
	if s, ok := catalogues[v.Lang][key]; ok {
		return s
	}
	if s, ok := zh[key]; ok {
		return s
	}
	return key
}

// Tf formats the label key with args.
func (v *view) Tf(key string, args ...any) string { return fmt.Sprintf(v.T(key), args...) }

// Time is t in the console's zone ("—" for a zero time).
func (v *view) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(v.c.o.Zone).Format(time.DateTime)
}

// Yuan is an amount in CNY with its exact six decimals.
func (v *view) Yuan(m billing.Micros) string { return "¥ " + m.String() }

// Int groups an integer's digits by thousands (any integer type: token
// counts are int in the request log, int64 in billing).
func (v *view) Int(n any) string {
	switch n := n.(type) {
	case int:
		return group(int64(n))
	case int64:
		return group(n)
	}
	return fmt.Sprint(n)
}

// Admin reports whether the signed-in user is an operator.
func (v *view) Admin() bool { return v.User.Role == platform.RoleAdmin }

// OtherLang is the language the switch offers, OtherLabel its name.
func (v *view) OtherLang() string {
	if v.Lang == "en" {
		return "zh"
	}
	return "en"
}

// OtherLabel names OtherLang in itself.
func (v *view) OtherLabel() string {
	if v.Lang == "en" {
		return "中文"
	}
	return "English"
}

func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
