package main

// The console of glm serve (platform/console, docs/console.md): its flags,
// its handler, and on first start the operator's sign-in, printed once.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/console"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// firstOperator is the admin user created on first start.
const firstOperator = "admin@localhost"

type consoleOptions struct {
	enabled bool
	zone    string
	secure  bool
	signup  signUpFlags
}

// signUpFlags turn on self-service sign-up and say what a new account
// gets (docs/console.md §10); in the config file under "server" by the same
// names.
type signUpFlags struct {
	enabled     bool
	trialName   string
	trialTokens int64
	trialModels []string
	trialDays   int
	invites     []string
	domains     []string
	perIP       int
}

func (c *consoleOptions) register(f *pflag.FlagSet) {
	f.BoolVar(&c.enabled, "console", true, "serve the web console under /console/ on --addr (and redirect / there)")
	f.StringVar(&c.zone, "console-zone", "Asia/Shanghai", "time zone the console shows times in (an IANA name)")
	f.BoolVar(&c.secure, "console-secure-cookies", false, "mark console cookies Secure on plain HTTP too (TLS ends in a proxy in front)")
	s := &c.signup
	f.BoolVar(&s.enabled, "signup", false, "let visitors sign up in the console: a new account, its owner and the trial package")
	f.StringVar(&s.trialName, "signup-trial-name", "体验资源包", "name of the trial package a signed-up account gets")
	f.Int64Var(&s.trialTokens, "signup-trial-tokens", 1000000, "tokens of the trial package (0: none)")
	f.StringSliceVar(&s.trialModels, "signup-trial-models", nil, "models the trial package pays for (comma-separated; default every model)")
	f.IntVar(&s.trialDays, "signup-trial-days", 30, "days the trial package is valid")
	f.StringSliceVar(&s.invites, "signup-invite", nil, "invite code a visitor must give to sign up (repeat or comma-separate for several; default none needed)")
	f.StringSliceVar(&s.domains, "signup-domain", nil, "e-mail domain allowed to sign up (repeat or comma-separate; default any)")
	f.IntVar(&s.perIP, "signup-per-ip", 5, "sign-up attempts allowed per client address per hour")
}

// check refuses sign-up settings that cannot work, in the flags' words.
func (s *signUpFlags) check() error {
	switch {
	case s.trialTokens < 0:
		return fmt.Errorf("--signup-trial-tokens %d: want 0 (no trial package) or more", s.trialTokens)
	case s.trialDays < 1:
		return fmt.Errorf("--signup-trial-days %d: want at least 1", s.trialDays)
	case s.perIP < 1:
		return fmt.Errorf("--signup-per-ip %d: want at least 1", s.perIP)
	}
	for _, d := range s.domains {
		if d = strings.TrimPrefix(strings.TrimSpace(d), "@"); d == "" || strings.ContainsAny(d, "@ /") {
			return fmt.Errorf("--signup-domain %q: want a domain such as example.com", d)
		}
	}
	return nil
}

func (c *consoleOptions) location() (*time.Location, error) {
	if c.zone == "Asia/Shanghai" {
		return console.ShanghaiZone(), nil
	}
	l, err := time.LoadLocation(c.zone)
	if err != nil {
		return nil, fmt.Errorf("--console-zone %q: not a time zone this host knows (e.g. Asia/Shanghai, UTC)", c.zone)
	}
	return l, nil
}

// newConsole builds the console on the store, billing's tables and the
// authenticator (revocations take effect on this process at once). The
// operator's pages read the router's backend health and apply their
// changes here at once through the admin API's hooks.
func (a *serveApp) newConsole(m metering) (*console.Console, error) {
	zone, err := a.o.console.location()
	if err != nil {
		return nil, err
	}
	if err := a.o.console.signup.check(); err != nil {
		return nil, err
	}
	su := a.o.console.signup
	hooks := console.Hooks{AccountChanged: a.auth.AccountChanged,
		Models: func(name string) bool { _, ok := a.backends.Model(name); return ok }}
	if m.Admin != nil {
		hooks.PackagesChanged, hooks.PackageRevoked, hooks.PricesChanged = m.Admin.PackagesChanged, m.Admin.PackageRevoked, m.Admin.PricesChanged
	}
	return console.New(console.Options{
		Store: a.store, Billing: billing.NewStore(ledger.New(a.store.Handle()), nil), Revoker: a.auth,
		KeyRecheck: a.o.keyRecheck, Zone: zone, ZoneName: a.o.console.zone, SecureCookies: a.o.console.secure,
		Backends: routerHealth{a.backends}, Hooks: hooks,
		Play: console.PlayOptions{Calls: a.calls, Catalogue: a.backends, WriteTimeout: a.o.bounds.writeTimeout},
		SignUp: console.SignUpOptions{Enabled: su.enabled, TrialName: su.trialName, TrialTokens: su.trialTokens,
			TrialModels: su.trialModels, TrialDays: su.trialDays, Invites: su.invites, Domains: su.domains, PerIP: su.perIP},
		Registerer: a.api.Metrics().Registry, Logger: a.log,
	}), nil
}

// routerHealth is the router's backend state as the console reads it.
type routerHealth struct{ r *router.Router }

func (h routerHealth) BackendHealth() []console.BackendHealth {
	bs := h.r.Backends()
	out := make([]console.BackendHealth, 0, len(bs))
	for _, b := range bs {
		bh := console.BackendHealth{Name: b.Name, Circuit: b.Circuit, InFlight: b.InFlight, Attempts: b.Attempts, Failures: b.Failures}
		if e := b.LastError; e != nil {
			bh.LastError, bh.LastErrorClass, bh.LastErrorCode, bh.LastErrorAt = e.Cause, e.Class, e.Code, e.At
		}
		out = append(out, bh)
	}
	return out
}

// sessionPurge is how often expired and revoked console sessions are
// deleted, and how long after their end they are kept.
const sessionPurge = time.Hour

// startSessionPurge deletes console sessions that ended more than an hour
// ago, every hour, so the sessions table holds live sign-ins and a few
// recent ones. Each replica runs it; the delete is idempotent.
func (a *serveApp) startSessionPurge() {
	failures := prometheus.NewCounter(prometheus.CounterOpts{Name: "glm_console_session_purge_failures_total",
		Help: "Failed purges of ended console sessions (the cause is in the log)."})
	a.api.Metrics().Registry.MustRegister(failures)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(sessionPurge)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := a.store.PurgeSessions(ctx, time.Now().Add(-sessionPurge))
			if err != nil && ctx.Err() == nil {
				a.log.Error("console: purging ended sessions failed", "err", err)
				failures.Inc()
				continue
			}
			if n > 0 {
				a.log.Info("console: ended sessions purged", "sessions", n)
			}
		}
	}()
	a.onClose(func(context.Context) error { cancel(); <-done; return nil })
}

// ensureOperator creates the first admin user when there is no user at
// all, and prints its generated password once. A second replica starting
// at the same moment loses the insert race and prints nothing.
func (a *serveApp) ensureOperator(ctx context.Context) error {
	if !a.o.console.enabled {
		return nil
	}
	n, err := a.store.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	pw := platform.RandomID("", 12)
	_, err = admin.CreateUser(ctx, a.store, a.store, admin.NewUser{Email: firstOperator, Role: platform.RoleAdmin, Password: pw}, time.Now())
	if err != nil {
		if pe := platform.AsError(err); pe.HTTP == 409 || store.IsUniqueViolation(err) {
			return nil
		}
		return fmt.Errorf("create the console's first operator: %w", err)
	}
	fmt.Fprintf(a.out, "glm serve: first start: the console is at /console/ on the address below. Sign in as %s with this password, shown only this once:\n\n    %s\n\n"+
		"glm serve: change it: glm users passwd %s --password-stdin; more people: glm users create\n", firstOperator, pw, firstOperator)
	return nil
}
