package console

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/glmkit/glmkit/platform"
)

// Cookies: the session, the sign-in form's CSRF token (before there is a
// session) and the language.
const (
	cookieSession = "glm_session"
	cookiePreCSRF = "glm_csrf"
	cookieLang    = "glm_lang"
)

// req is one console request as the handlers see it.
type req struct {
	w    http.ResponseWriter
	r    *http.Request
	lang string
	// Set by signedIn: the session, its user and the account the page
	// shows (the user's own; an admin picks one with ?account=).
	sess    platform.Session
	user    platform.User
	account platform.Account
	// accounts lists every account, for an admin's picker.
	accounts []platform.Account
	// settings are the account's settings, loaded for a member (who may
	// manage keys only when the owner allows it).
	settings platform.AccountSettings
}

type handler func(q *req) error

// pageError is an answer other than the page: a status and the catalogue
// key of the message shown.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return fmt.Sprintf("console: %d %s", e.status, e.msg) }

var (
	errNotFound  = &pageError{http.StatusNotFound, "err.not_found"}
	errForbidden = &pageError{http.StatusForbidden, "err.forbidden"}
	errCSRF      = &pageError{http.StatusForbidden, "err.csrf"}
)

// page runs h with the security headers and the language set, and turns
// its error into an error page: the cause is logged and counted, never
// shown.
func (c *Console) page(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-store")
		q := &req{w: w, r: r, lang: c.language(w, r)}
		err := h(q)
		if err == nil {
			return
		}
		var pe *pageError
		if !errors.As(err, &pe) {
			c.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			pe = &pageError{http.StatusInternalServerError, "err.internal"}
		}
		c.metrics.errors.WithLabelValues(pageLabel(r), fmt.Sprint(pe.status)).Inc()
		c.render(q, pe.status, "error.html", map[string]any{"Status": pe.status, "Message": pe.msg})
	}
}

// language picks zh (the default) or en: ?lang= switches and is kept in a
// cookie.
func (c *Console) language(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); catalogues[l] != nil {
		http.SetCookie(w, &http.Cookie{Name: cookieLang, Value: l, Path: Prefix, MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.secureCookie(r)})
		return l
	}
	if ck, err := r.Cookie(cookieLang); err == nil && catalogues[ck.Value] != nil {
		return ck.Value
	}
	return "zh"
}

func (c *Console) secureCookie(r *http.Request) bool { return c.o.SecureCookies || r.TLS != nil }

func sessionID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// signedIn loads the session, refuses a state-changing request without
// its csrf_token (403), and resolves the account the page shows.
func (c *Console) signedIn(h handler) handler {
	return func(q *req) error {
		ck, err := q.r.Cookie(cookieSession)
		if err != nil || len(ck.Value) != 64 {
			return c.toSignIn(q)
		}
		sess, user, err := c.o.Store.GetSession(q.r.Context(), sessionID(ck.Value), c.now())
		if errors.Is(err, platform.ErrNotFound) {
			return c.toSignIn(q)
		}
		if err != nil {
			return err
		}
		q.sess, q.user = sess, user
		if q.r.Method == http.MethodPost {
			if err := checkToken(q.r.PostFormValue("csrf_token"), sess.CSRF); err != nil {
				c.log.Warn("console: form refused without a valid csrf_token", "path", q.r.URL.Path, "user", user.Email)
				return err
			}
		}
		if err := c.resolveAccount(q); err != nil {
			return err
		}
		return h(q)
	}
}

// toSignIn sends a signed-out browser to the sign-in page; a form posted
// without a session is refused like a forged one.
func (c *Console) toSignIn(q *req) error {
	if q.r.Method != http.MethodGet {
		return errCSRF
	}
	if q.r.Header.Get("X-Console-Live") != "" {
		return &pageError{http.StatusUnauthorized, "err.signed_out"}
	}
	http.Redirect(q.w, q.r, Prefix+"/?next="+url.QueryEscape(q.r.URL.RequestURI()), http.StatusSeeOther)
	return nil
}

func checkToken(got, want string) error {
	if got == "" || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

// resolveAccount: owners and members see their own account only; another
// account's pages are 404, as if they did not exist. An admin sees any
// account (?account=, default the first).
func (c *Console) resolveAccount(q *req) error {
	ctx := q.r.Context()
	want := q.r.URL.Query().Get("account")
	if q.user.Role != platform.RoleAdmin {
		if want != "" && want != q.user.AccountID {
			return errNotFound
		}
		a, err := c.o.Store.GetAccount(ctx, q.user.AccountID)
		if errors.Is(err, platform.ErrNotFound) {
			return errNotFound
		}
		if err != nil {
			return err
		}
		q.account = a
		if q.user.Role == platform.RoleMember {
			q.settings, err = c.o.Store.AccountSettings(ctx, a.ID)
		}
		return err
	}
	all, err := c.o.Store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	q.accounts = all
	for _, a := range all {
		if a.ID == want || want == "" {
			q.account = a
			return nil
		}
	}
	return errNotFound
}

// mayManageKeys: the owner (and an admin) creates and revokes keys; a
// member only sees them unless the owner allowed members to manage keys
// (docs/console.md §9).
func (q *req) mayManageKeys() bool {
	return q.user.Role != platform.RoleMember || q.settings.MembersManageKeys
}

// accountQuery is "?account=ID" for an admin's links, "" otherwise.
func (q *req) accountQuery() string {
	if q.user.Role != platform.RoleAdmin || q.account.ID == "" {
		return ""
	}
	return "?account=" + url.QueryEscape(q.account.ID)
}

// accountAmp is accountQuery as a further parameter ("&account=ID").
func (q *req) accountAmp() string {
	if aq := q.accountQuery(); aq != "" {
		return "&" + aq[1:]
	}
	return ""
}

// render writes a page: the template runs into a buffer first, so a
// failing template never leaves half a page.
func (c *Console) render(q *req, status int, page string, data any) {
	t := pages()[page]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", c.view(q, page, data)); err != nil {
		c.log.Error("console: render failed", "page", page, "err", err)
		c.metrics.errors.WithLabelValues(page, "500").Inc()
		http.Error(q.w, "internal error", http.StatusInternalServerError)
		return
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(buf.Bytes())
}

// fragment writes one named template of a page without the layout (the
// live parts a page reloads).
func (c *Console) fragment(q *req, page, name string, data any) error {
	var buf bytes.Buffer
	if err := pages()[page].ExecuteTemplate(&buf, name, c.view(q, page, data)); err != nil {
		return fmt.Errorf("console: render %s: %w", name, err)
	}
	q.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = q.w.Write(buf.Bytes())
	return nil
}

// pageLabel is the metric label of a request: its first path segment under
// the console.
func pageLabel(r *http.Request) string {
	p := r.URL.Path
	if len(p) <= len(Prefix)+1 {
		return "home"
	}
	p = p[len(Prefix)+1:]
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			return p[:i]
		}
	}
	return p
}
