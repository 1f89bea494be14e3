package console

// Self-service sign-up (docs/console.md §10): off unless the operator turns
// it on; a visitor makes an account, its owner and the trial package, and
// is signed in.

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
)

// SignUpOptions configure self-service sign-up (glm serve --signup and
// the signup-* flags).
type SignUpOptions struct {
	Enabled bool
	// The trial package every new account gets, once: its name, tokens,
	// model scope (nil: every model) and validity [30 days].
	TrialName   string
	TrialTokens int64
	TrialModels []string
	TrialDays   int
	// Invites, when set, are the codes a visitor must give one of.
	Invites []string
	// Domains, when set, are the e-mail domains allowed to sign up.
	Domains []string
	// PerIP sign-up attempts are allowed per client address in Window [5
	// per hour]; past it the form answers 429 with when to try again.
	PerIP  int
	Window time.Duration
}

type signUpState struct {
	o       SignUpOptions
	limiter *limiter
	results *prometheus.CounterVec
}

func newSignUpState(o SignUpOptions, reg prometheus.Registerer) *signUpState {
	if o.PerIP <= 0 {
		o.PerIP = 5
	}
	if o.Window <= 0 {
		o.Window = time.Hour
	}
	if o.TrialDays <= 0 {
		o.TrialDays = 30
	}
	s := &signUpState{o: o, limiter: newLimiter(RateLimit{PerUser: o.PerIP, PerIP: o.PerIP, Window: o.Window}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "glm_console_signups_total",
			Help: "Console sign-ups by result (ok, invalid, taken, rate_limited, csrf, failed)."}, []string{"result"})}
	if reg != nil {
		reg.MustRegister(s.results)
	}
	return s
}

// signUpData is the form as typed, with the refused field's message.
type signUpData struct {
	Email, Invite string
	Field, Error  string
	NeedInvite    bool
	Domains       string
	Trial         string
}

func (c *Console) signUpData(q *req) *signUpData {
	o := c.signup.o
	d := &signUpData{NeedInvite: len(o.Invites) > 0, Domains: strings.Join(o.Domains, ", ")}
	d.Trial = fmt.Sprintf(view0(q).T("signup.trial"), group(o.TrialTokens), o.TrialDays)
	return d
}

func (c *Console) signUpForm(q *req) error {
	if !c.signup.o.Enabled {
		return errNotFound
	}
	c.renderSignUp(q, http.StatusOK, c.signUpData(q))
	return nil
}

// renderSignUp renders the form with a fresh pre-session CSRF token, like
// the sign-in form.
func (c *Console) renderSignUp(q *req, status int, d *signUpData) {
	token := platform.RandomID("", 32)
	http.SetCookie(q.w, &http.Cookie{Name: cookiePreCSRF, Value: token, Path: Prefix, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: c.secureCookie(q.r), MaxAge: 3600})
	q.sess.CSRF = token
	c.render(q, status, "signup.html", d)
}

// signUp checks the token, the address's rate, then the form; it stores
// the account, its owner and the trial package (compensated when the
// package fails), audits the grant and signs the visitor in.
func (c *Console) signUp(q *req) error {
	o := c.signup.o
	if !o.Enabled {
		return errNotFound
	}
	if ck, err := q.r.Cookie(cookiePreCSRF); err != nil || checkToken(q.r.PostFormValue("csrf_token"), ck.Value) != nil {
		c.signup.results.WithLabelValues("csrf").Inc()
		c.log.Warn("console: sign-up refused without a valid csrf_token", "ip", clientIP(q.r))
		return errCSRF
	}
	d := c.signUpData(q)
	d.Email, d.Invite = strings.TrimSpace(q.r.PostFormValue("email")), strings.TrimSpace(q.r.PostFormValue("invite"))
	ip, now := clientIP(q.r), c.now()
	if wait := c.signup.limiter.hit(now, "signup:"+ip, o.PerIP); wait > 0 {
		c.signup.results.WithLabelValues("rate_limited").Inc()
		c.log.Warn("console: sign-up rate-limited", "ip", ip, "retry_in", wait.Round(time.Second))
		q.w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		d.Error = fmt.Sprintf(view0(q).T("signup.limited"), minutes(wait))
		c.renderSignUp(q, http.StatusTooManyRequests, d)
		return nil
	}
	refuse := func(field, msg string) error {
		c.signup.results.WithLabelValues("invalid").Inc()
		c.log.Info("console: sign-up refused", "ip", ip, "field", field, "reason", msg)
		d.Field, d.Error = field, view0(q).T(msg)
		c.renderSignUp(q, http.StatusBadRequest, d)
		return nil
	}
	email, err := admin.NormalizeEmail(d.Email)
	if err != nil {
		return refuse("email", "signup.email_bad")
	}
	if !domainAllowed(email, o.Domains) {
		return refuse("email", "signup.domain")
	}
	pw := q.r.PostFormValue("password")
	if admin.CheckPassword(pw) != nil {
		return refuse("password", "password.rule")
	}
	if len(o.Invites) > 0 && !inviteValid(d.Invite, o.Invites) {
		return refuse("invite", "signup.invite_bad")
	}
	ctx := q.r.Context()
	taken := func() bool { _, err := c.o.Store.GetUserByEmail(ctx, email); return err == nil }
	if taken() {
		c.signup.results.WithLabelValues("taken").Inc()
		return refuse("email", "signup.email_taken")
	}
	acct := platform.Account{ID: admin.NewAccountID(), Name: email, CreatedAt: now.UTC()}
	u := platform.User{ID: platform.RandomID("usr_", 8), Email: email, AccountID: acct.ID, Role: platform.RoleOwner,
		PasswordHash: admin.HashPassword(pw), CreatedAt: now.UTC()}
	if err := c.o.Store.CreateSignUp(ctx, acct, u); err != nil {
		if taken() { // lost a race with another sign-up of the same e-mail
			return refuse("email", "signup.email_taken")
		}
		c.signup.results.WithLabelValues("failed").Inc()
		return fmt.Errorf("console: sign-up: %w", err)
	}
	if err := c.grantTrial(q, acct, email, now); err != nil {
		c.signup.results.WithLabelValues("failed").Inc()
		if uerr := c.o.Store.DeleteSignUp(ctx, acct.ID, u.ID); uerr != nil {
			c.log.Error("console: sign-up: undoing the account after a failed trial grant failed", "account", acct.ID, "err", uerr)
		}
		return fmt.Errorf("console: sign-up trial package: %w", err)
	}
	c.signup.results.WithLabelValues("ok").Inc()
	c.log.Info("console: signed up", "email", email, "account", acct.ID, "ip", ip)
	if err := c.startSession(q, u, now); err != nil {
		return err
	}
	http.Redirect(q.w, q.r, Prefix+"/packages?welcome=1", http.StatusSeeOther)
	return nil
}

// grantTrial gives the new account its trial package with the package
// grant operation, under an id made from the account, so it is given at
// most once (billing.Store.GrantOnce); the grant's audit row (actor
// "sign-up <e-mail>") is written in the grant's own transaction.
func (c *Console) grantTrial(q *req, acct platform.Account, email string, now time.Time) error {
	o := c.signup.o
	if o.TrialTokens <= 0 {
		return nil
	}
	name := o.TrialName
	if name == "" {
		name = "trial"
	}
	_, _, err := c.o.Billing.GrantOnce(q.r.Context(), "trial_"+acct.ID, billing.Grant{AccountID: acct.ID, Name: name,
		Kind: billing.KindGift, Tokens: o.TrialTokens, Models: o.TrialModels, PurchasedAt: now,
		ExpiresAt: now.AddDate(0, 0, o.TrialDays),
		By:        &billing.Correction{Actor: "sign-up " + email, Reason: "self-service sign-up trial package"}})
	return err
}

func domainAllowed(email string, domains []string) bool {
	if len(domains) == 0 {
		return true
	}
	at := strings.LastIndexByte(email, '@')
	for _, d := range domains {
		if strings.EqualFold(email[at+1:], strings.TrimPrefix(strings.TrimSpace(d), "@")) {
			return true
		}
	}
	return false
}

// inviteValid compares in constant time against every code.
func inviteValid(code string, invites []string) bool {
	ok := 0
	for _, inv := range invites {
		ok |= subtle.ConstantTimeCompare([]byte(code), []byte(inv))
	}
	return code != "" && ok == 1
}

// hit counts one attempt under key and returns how long until the next
// is allowed when the attempts in the window have reached limit (0: this
// one is allowed, and counted).
func (l *limiter) hit(now time.Time, key string, limit int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait := l.waitLocked(now, key, limit); wait > 0 {
		return wait
	}
	if len(l.fails) > maxTracked {
		for k := range l.fails {
			l.recent(now, k)
		}
	}
	l.fails[key] = append(l.recent(now, key), now)
	return 0
}
