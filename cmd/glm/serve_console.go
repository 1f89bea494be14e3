package main

// The console of glm serve (platform/console, docs/console.md): its flags,
// its handler, and on first start the operator's sign-in, printed once.

import (
	"context"
	"fmt"
	"time"

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
}

func (c *consoleOptions) register(f *pflag.FlagSet) {
	f.BoolVar(&c.enabled, "console", true, "serve the web console under /console/ on --addr (and redirect / there)")
	f.StringVar(&c.zone, "console-zone", "Asia/Shanghai", "time zone the console shows times in (an IANA name)")
	f.BoolVar(&c.secure, "console-secure-cookies", false, "mark console cookies Secure on plain HTTP too (TLS ends in a proxy in front)")
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
	hooks := console.Hooks{AccountChanged: a.auth.AccountChanged,
		Models: func(name string) bool { _, ok := a.backends.Model(name); return ok }}
	if m.Admin != nil {
		hooks.PackagesChanged, hooks.PackageRevoked, hooks.PricesChanged = m.Admin.PackagesChanged, m.Admin.PackageRevoked, m.Admin.PricesChanged
	}
	return console.New(console.Options{
		Store: a.store, Billing: billing.NewStore(ledger.New(a.store.Handle()), nil), Revoker: a.auth,
		KeyRecheck: a.o.keyRecheck, Zone: zone, ZoneName: a.o.console.zone, SecureCookies: a.o.console.secure,
		Backends: routerHealth{a.backends}, Hooks: hooks,
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
