package console

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
)

// home is /console/: the sign-in form when signed out, else the keys page.
func (c *Console) home(q *req) error {
	if ck, err := q.r.Cookie(cookieSession); err == nil && len(ck.Value) == 64 {
		if _, _, err := c.o.Store.GetSession(q.r.Context(), sessionID(ck.Value), c.now()); err == nil {
			http.Redirect(q.w, q.r, Prefix+"/keys", http.StatusSeeOther)
			return nil
		}
	}
	c.signInForm(q, http.StatusOK, "", "")
	return nil
}

// signInForm renders the form with a fresh pre-session CSRF token, kept in
// a cookie the form's hidden field must match (there is no session yet).
func (c *Console) signInForm(q *req, status int, email, msg string) {
	token := platform.RandomID("", 32)
	http.SetCookie(q.w, &http.Cookie{Name: cookiePreCSRF, Value: token, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.secureCookie(q.r), MaxAge: 3600})
	q.sess.CSRF = token
	c.render(q, status, "signin.html", map[string]any{"Email": email, "Error": msg, "Next": safeNext(q.r.FormValue("next")),
		"SignUp": c.signup.o.Enabled})
}

// safeNext keeps a post-sign-in target inside the console.
func safeNext(s string) string {
	if !strings.HasPrefix(s, Prefix+"/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n") {
		return Prefix + "/keys"
	}
	return s
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// signIn checks the form's token, the rate limits, then the password. The
// answer for an unknown e-mail, a wrong password and a disabled user is
// the same, so the form does not tell which e-mails exist.
func (c *Console) signIn(q *req) error {
	ck, err := q.r.Cookie(cookiePreCSRF)
	if err != nil || checkToken(q.r.PostFormValue("csrf_token"), ck.Value) != nil {
		c.metrics.signIns.WithLabelValues("csrf").Inc()
		c.log.Warn("console: sign-in refused without a valid csrf_token", "ip", clientIP(q.r))
		return errCSRF
	}
	email := strings.ToLower(strings.TrimSpace(q.r.PostFormValue("email")))
	pw := q.r.PostFormValue("password")
	ip := clientIP(q.r)
	now := c.now()
	if wait := c.limiter.blocked(now, email, ip); wait > 0 {
		c.metrics.signIns.WithLabelValues("rate_limited").Inc()
		c.log.Warn("console: sign-in rate-limited", "email", email, "ip", ip, "retry_in", wait.Round(time.Second))
		q.w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		c.signInForm(q, http.StatusTooManyRequests, email, fmt.Sprintf(catalogues[q.lang]["signin.limited"], minutes(wait)))
		return nil
	}
	u, err := c.o.Store.GetUserByEmail(q.r.Context(), email)
	if err != nil && !errors.Is(err, platform.ErrNotFound) {
		return err
	}
	ok := err == nil && !u.Disabled() && admin.PasswordMatches(u.PasswordHash, pw)
	if err != nil {
		// Hash anyway, so an unknown e-mail takes as long as a wrong password.
		admin.PasswordMatches(dummyHash(), pw)
	}
	if !ok {
		c.limiter.fail(now, email, ip)
		c.metrics.signIns.WithLabelValues("bad_password").Inc()
		c.log.Info("console: sign-in failed", "email", email, "ip", ip, "known", err == nil, "disabled", err == nil && u.Disabled())
		c.signInForm(q, http.StatusUnauthorized, email, catalogues[q.lang]["signin.bad"])
		return nil
	}
	c.limiter.succeed(email)
	if err := c.startSession(q, u, now); err != nil {
		return err
	}
	c.metrics.signIns.WithLabelValues("ok").Inc()
	c.log.Info("console: signed in", "email", u.Email, "role", u.Role, "ip", ip)
	http.Redirect(q.w, q.r, safeNext(q.r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

// dummyHash is made on the first sign-in with an unknown e-mail, not at
// start: a password hash takes tens of MB while it runs, which every glm
// process (and glm serve's idle memory) paid at init.
var dummyHash = sync.OnceValue(func() string { return admin.HashPassword("not a password of anyone") })

func minutes(d time.Duration) int { return int((d + time.Minute - 1) / time.Minute) }

// signOut ends this session on every replica (its row is revoked).
func (c *Console) signOut(q *req) error {
	if err := c.o.Store.RevokeSession(q.r.Context(), q.sess.ID, c.now()); err != nil {
		return err
	}
	http.SetCookie(q.w, &http.Cookie{Name: cookieSession, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: c.secureCookie(q.r)})
	http.Redirect(q.w, q.r, Prefix+"/", http.StatusSeeOther)
	return nil
}

func (c *Console) passwordForm(q *req) error {
	c.render(q, http.StatusOK, "password.html", passwordData{})
	return nil
}

// changePassword checks the current password, sets the new one (the
// validator glm users passwd uses) and ends every other session.
func (c *Console) changePassword(q *req) error {
	cur, pw := q.r.PostFormValue("current"), q.r.PostFormValue("password")
	fail := func(field, msg string) error {
		c.render(q, http.StatusBadRequest, "password.html", passwordData{Field: field, Error: catalogues[q.lang][msg]})
		return nil
	}
	if !admin.PasswordMatches(q.user.PasswordHash, cur) {
		c.metrics.signIns.WithLabelValues("bad_password").Inc()
		return fail("current", "password.bad_current")
	}
	if admin.CheckPassword(pw) != nil {
		return fail("password", "password.rule")
	}
	if _, err := admin.ChangePassword(q.r.Context(), c.o.Store, q.user.Email, pw, q.sess.ID, c.now()); err != nil {
		return err
	}
	c.log.Info("console: password changed; other sessions ended", "email", q.user.Email)
	c.render(q, http.StatusOK, "password.html", passwordData{Done: true})
	return nil
}

type passwordData struct {
	Field, Error string
	Done         bool
}

// RateLimit bounds failed sign-ins in a sliding window, per e-mail and per
// client address. It is kept in memory: each replica enforces it on its
// own, the stated exception of docs/design.md §1.
type RateLimit struct {
	PerUser int           // failures per e-mail [5]
	PerIP   int           // failures per address [20]
	Window  time.Duration // [15m]
}

type limiter struct {
	RateLimit
	mu    sync.Mutex
	fails map[string][]time.Time
}

// maxTracked bounds the limiter's memory: past it, entries whose window
// ended are dropped.
const maxTracked = 10000

func newLimiter(rl RateLimit) *limiter {
	if rl.PerUser <= 0 {
		rl.PerUser = 5
	}
	if rl.PerIP <= 0 {
		rl.PerIP = 20
	}
	if rl.Window <= 0 {
		rl.Window = 15 * time.Minute
	}
	return &limiter{RateLimit: rl, fails: map[string][]time.Time{}}
}

// blocked returns how long until the e-mail or the address may try again
// (0: now).
func (l *limiter) blocked(now time.Time, email, ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	wait := l.waitLocked(now, "u:"+email, l.PerUser)
	return max(wait, l.waitLocked(now, "ip:"+ip, l.PerIP))
}

func (l *limiter) waitLocked(now time.Time, key string, limit int) time.Duration {
	ts := l.recent(now, key)
	if len(ts) < limit {
		return 0
	}
	return ts[len(ts)-limit].Add(l.Window).Sub(now)
}

// recent drops a key's failures older than the window and returns the rest.
func (l *limiter) recent(now time.Time, key string) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-l.Window)) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
		return nil
	}
	l.fails[key] = ts
	return ts
}

func (l *limiter) fail(now time.Time, email, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fails) > maxTracked {
		for k := range l.fails {
			l.recent(now, k)
		}
	}
	for _, k := range []string{"u:" + email, "ip:" + ip} {
		l.fails[k] = append(l.recent(now, k), now)
	}
}

// succeed forgets the e-mail's failures; the address keeps its count, so
// one good account cannot be used to reset guessing at others.
func (l *limiter) succeed(email string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, "u:"+email)
}

type metrics struct {
	signIns *prometheus.CounterVec
	errors  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_console_signins_total",
			Help: "Console sign-in attempts by result (ok, bad_password, rate_limited, csrf)."}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_console_errors_total",
			Help: "Console answers other than a page, by page and HTTP status."}, []string{"page", "status"}),
	}
	if reg != nil {
		reg.MustRegister(m.signIns, m.errors)
	}
	return m
}

// startSession signs u in: a session row and its cookie.
func (c *Console) startSession(q *req, u platform.User, now time.Time) error {
	token := platform.RandomID("", 32)
	sess := platform.Session{ID: sessionID(token), UserID: u.ID, CSRF: platform.RandomID("", 16),
		CreatedAt: now.UTC(), ExpiresAt: now.Add(c.o.SessionTTL).UTC()}
	if err := c.o.Store.CreateSession(q.r.Context(), sess); err != nil {
		return err
	}
	http.SetCookie(q.w, &http.Cookie{Name: cookieSession, Value: token, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: c.secureCookie(q.r), Expires: sess.ExpiresAt})
	http.SetCookie(q.w, &http.Cookie{Name: cookiePreCSRF, Value: "", Path: Prefix, MaxAge: -1})
	return nil
}
