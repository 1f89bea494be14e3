// Package console is the web console of glm serve (docs/console.md): the
// pages people of an account use to see their API keys, resource
// packages, bills and usage, and sign-in for them and the operator. It is
// a mountable handler (mux.Handler) under /console, server-rendered with
// html/template from embedded files; the only script is a small
// hand-written one (copy a key, refresh live numbers), allowed by a
// Content-Security-Policy without inline scripts.
//
// It reads through the same functions the CLI and the admin API use
// (billing.Store, the key store, admin's validators), so a page shows
// what `glm bills`, `glm keys list` and `glm packages list` print.
package console

import (
	"context"
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/store"
)

// Prefix is where the console lives.
const Prefix = "/console"

//go:embed templates/*.html static/*
var files embed.FS

// Store is what the console reads and writes (platform/store.SQL has it).
type Store interface {
	platform.AccountStore
	admin.KeyStore
	admin.UserStore
	CreateSession(ctx context.Context, s platform.Session) error
	GetSession(ctx context.Context, id string, now time.Time) (platform.Session, platform.User, error)
	RevokeSession(ctx context.Context, id string, at time.Time) error
	RecentRequestLogs(ctx context.Context, f platform.RecentRequests) ([]platform.RequestLog, error)
	RequestDays(ctx context.Context, accountID, from, to string) ([]platform.RequestDay, error)
	// QueryRequestLogs is the operator's request log (glm logs' reader).
	QueryRequestLogs(ctx context.Context, q store.LogQuery) ([]platform.RequestLog, error)
	SettingsStore
}

// Options configure the console. Store, Billing and Revoker are required.
type Options struct {
	Store   Store
	Billing *billing.Store
	// Revoker revokes keys so this process refuses them at once; other
	// replicas see it within KeyRecheck (shown on the keys page).
	Revoker    admin.Revoker
	KeyRecheck time.Duration
	// Zone is the one zone times are shown in, labelled ZoneName
	// (default Asia/Shanghai, docs/console.md §4).
	Zone     *time.Location
	ZoneName string
	// SecureCookies marks cookies Secure even on plain HTTP (a TLS proxy in
	// front); requests served over TLS get Secure anyway.
	SecureCookies bool
	// SessionTTL is how long a sign-in lasts [12h].
	SessionTTL time.Duration
	// Refresh is how often the live parts of a page reload [3s].
	Refresh time.Duration
	// SignIn limits failed sign-ins (zero fields take the defaults).
	SignIn RateLimit
	// Backends reports the backends' health for the operator's page (nil:
	// the page says none are known).
	Backends BackendSource
	// Hooks apply an operator's change on this process at once.
	Hooks Hooks
	// Play runs the playground's calls; SignUp configures self-service
	// sign-up (off unless SignUp.Enabled).
	Play   PlayOptions
	SignUp SignUpOptions
	// Registerer receives the console's metrics (nil: not registered).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time
}

// Console is the mountable handler.
type Console struct {
	o       Options
	log     *slog.Logger
	now     func() time.Time
	static  http.Handler
	limiter *limiter
	metrics *metrics
	rates   *rateSampler
	signup  *signUpState
	mux     *mux.Mux
}

// New builds the console.
func New(o Options) *Console {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Zone == nil {
		o.Zone, o.ZoneName = ShanghaiZone(), "Asia/Shanghai"
	}
	if o.ZoneName == "" {
		o.ZoneName = o.Zone.String()
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Refresh <= 0 {
		o.Refresh = 3 * time.Second
	}
	c := &Console{o: o, log: o.Logger, now: o.Now, limiter: newLimiter(o.SignIn),
		metrics: newMetrics(o.Registerer), rates: newRateSampler(),
		signup: newSignUpState(o.SignUp, o.Registerer)}
	if o.Backends != nil { // the first reading: rates count from the start
		c.rates.observe(o.Now(), o.Backends.BackendHealth())
	}
	sub, _ := fs.Sub(files, "static")
	c.static = http.StripPrefix(Prefix+"/static/", http.FileServer(http.FS(sub)))
	c.mux = mux.New(o.Now)
	c.routes()
	return c
}

// ShanghaiZone is Asia/Shanghai from the system's zone data, or its fixed
// +08:00 (China keeps no daylight saving) when the host has none.
func ShanghaiZone() *time.Location {
	if l, err := time.LoadLocation("Asia/Shanghai"); err == nil {
		return l
	}
	return time.FixedZone("Asia/Shanghai", 8*3600)
}

// Routes are the console's routes, plus "/" redirecting to it.
func (c *Console) Routes() []mux.Route { return c.mux.Routes() }

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusFound)
	})
	m.Handle("GET "+Prefix+"/static/{file}", c.secure(c.static))
	m.HandleFunc("GET "+Prefix, c.page(c.home))
	m.HandleFunc("POST "+Prefix+"/signin", c.page(c.signIn))
	m.HandleFunc("POST "+Prefix+"/signout", c.page(c.signedIn(c.signOut)))
	m.HandleFunc("GET "+Prefix+"/keys", c.page(c.signedIn(c.keys)))
	m.HandleFunc("POST "+Prefix+"/keys", c.page(c.signedIn(c.createKey)))
	m.HandleFunc("GET "+Prefix+"/keys/{id}/revoke", c.page(c.signedIn(c.confirmRevoke)))
	m.HandleFunc("POST "+Prefix+"/keys/{id}/revoke", c.page(c.signedIn(c.revokeKey)))
	m.HandleFunc("GET "+Prefix+"/packages", c.page(c.signedIn(c.packages)))
	m.HandleFunc("GET "+Prefix+"/bills", c.page(c.signedIn(c.bills)))
	m.HandleFunc("GET "+Prefix+"/bills/export", c.page(c.signedIn(c.exportBill)))
	m.HandleFunc("GET "+Prefix+"/usage", c.page(c.signedIn(c.usage)))
	m.HandleFunc("GET "+Prefix+"/live/{panel}", c.page(c.signedIn(c.live)))
	m.HandleFunc("GET "+Prefix+"/password", c.page(c.signedIn(c.passwordForm)))
	m.HandleFunc("POST "+Prefix+"/password", c.page(c.signedIn(c.changePassword)))
	c.adminRoutes()
	c.playRoutes(m)
}

// csp allows the console's own files only: no inline script, no inline
// style element, no frames (docs/console.md §3).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}

func (c *Console) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}
