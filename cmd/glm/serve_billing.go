package main

// Metering in glm serve: this file builds the billing engine, the limiter
// and the admin API's options that serve_app.go wires into `glm serve`.
//
// Decision (notes/metering.md "Switching metering"): metering is ON by
// default, as on the platform glm serve imitates — every request is priced
// and paid by resource packages or cash, and an account with neither gets
// 1113. So that a fresh `glm serve` still answers its first curl, the
// default account receives a gift package on the first metered start
// ("1亿tokens资源包（三个月总额）", type gift, like the console's welcome
// package); --welcome-tokens 0 turns that off, --metering=false turns
// metering off altogether (a private single-user install).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/limits"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// Welcome package defaults: the tutorial's gift package.
const (
	billWelcomeName = "1亿tokens资源包（三个月总额）"
	// billWelcomeID is fixed so the package is granted once per database,
	// whichever replica starts first (billing.Store.GrantOnce).
	billWelcomeID = "pkg_welcome_" + DefaultAccountID
	// envAdminToken overrides the admin token file.
	envAdminToken = "GLMKIT_ADMIN_TOKEN"
	// billAdminTokenFile is created (0600) in the data dir on first start.
	billAdminTokenFile = "admin.token"
)

// meteringOptions are the metering flags of glm serve.
type meteringOptions struct {
	metering      bool
	welcomeTokens int64
	welcomeDays   int
	limitsFile    string
	limitsReload  time.Duration
	replicas      int
	admin         bool
	leaseTTL      time.Duration
	batchPercent  int64
}

func (f *meteringOptions) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.metering, "metering", true, "charge requests to resource packages and cash; no credit → 1113 (false: everything is free)")
	fs.Int64Var(&f.welcomeTokens, "welcome-tokens", 100_000_000, "gift package for the default account on the first metered start (0: none)")
	fs.IntVar(&f.welcomeDays, "welcome-days", 90, "validity of the welcome package in days")
	fs.StringVar(&f.limitsFile, "limits", "", `limits file (JSON): {"accounts":{"ID":{"max_concurrent":N,"rpm":N,"daily_tokens":N}},"keys":{…}}`)
	fs.DurationVar(&f.limitsReload, "limits-reload", 5*time.Second, "how often limit rules set with glm limits / the admin API are reloaded from the database")
	fs.IntVar(&f.replicas, "replicas", 1, "number of glm serve replicas sharing the database: each enforces ceil(limit/replicas)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", 2*time.Minute, "credit a replica leases is returned within this time after the replica dies (kill -9, power loss)")
	fs.Int64Var(&f.batchPercent, "batch-price-percent", billing.DefaultBatchPercent, "price of a batch job's line in percent of the list price (1-100; the cloud's batch discount is half price)")
	fs.BoolVar(&f.admin, "admin", true, "serve the admin API under /admin/v1 (token: $"+envAdminToken+" or DATA_DIR/"+billAdminTokenFile+")")
}

func (f *meteringOptions) check() error {
	switch {
	case f.replicas < 1:
		return fmt.Errorf("--replicas must be at least 1, got %d", f.replicas)
	case f.leaseTTL < time.Second:
		return fmt.Errorf("--lease-ttl must be at least 1s, got %s", f.leaseTTL)
	case f.welcomeTokens < 0 || f.welcomeDays < 1:
		return errors.New("--welcome-tokens must not be negative and --welcome-days must be at least 1")
	case f.batchPercent < 1 || f.batchPercent > 100:
		return fmt.Errorf("--batch-price-percent must be between 1 and 100, got %d", f.batchPercent)
	case f.limitsReload < 100*time.Millisecond:
		return fmt.Errorf("--limits-reload must be at least 100ms, got %s", f.limitsReload)
	}
	return nil
}

// meteringEnv is what the metering parts are built from.
type meteringEnv struct {
	// DSN is the database glm serve uses (a SQLite path or a URL), DataDir
	// its data directory.
	DSN, DataDir string
	Store        *store.SQL
	Logger       *slog.Logger
	// Metrics is the registry billing's series go on (/metrics).
	Metrics prometheus.Registerer
}

// metering is what metering adds to glm serve: the hot path's Meter (nil
// with --metering=false) and Limiter, the admin API's options (nil with
// --admin=false), and Close, which runs after the HTTP drain and the task
// pool have stopped.
type metering struct {
	Meter   platform.Meter
	Limiter platform.Limiter
	// Prices shows list prices on GET /models (nil with metering off).
	Prices platform.PriceLister
	Admin  *admin.Options
	Close  func(ctx context.Context) error
}

// enginePrices lists the billing engine's prices for GET /models.
type enginePrices struct{ e *billing.Engine }

func (p enginePrices) ModelPrice(model string) (platform.ModelPrice, bool) {
	pr := p.e.PriceOf(model)
	return platform.ModelPrice{Input: int64(pr.Input), CachedInput: int64(pr.Cached()), Output: int64(pr.Output), Image: int64(pr.Image)}, true
}

// billLimitsFile is the --limits format.
type billLimitsFile struct {
	Accounts map[string]limits.Rule `json:"accounts"`
	Keys     map[string]limits.Rule `json:"keys"`
}

// billLoadLimits reads the --limits file: the default rules, which rules
// in the database (glm limits set, the admin API) override per subject.
func billLoadLimits(path string) (limits.Rules, error) {
	var f billLimitsFile
	if path == "" {
		return limits.Rules{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return limits.Rules{}, fmt.Errorf("--limits: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields() // a typo in a limit must not silently turn it off
	if err := dec.Decode(&f); err != nil {
		return limits.Rules{}, fmt.Errorf("--limits %s: %w", path, err)
	}
	for who, rules := range map[string]map[string]limits.Rule{"account": f.Accounts, "key": f.Keys} {
		for id, r := range rules {
			if r.MaxConcurrent < 0 || r.RPM < 0 || r.DailyTokens < 0 {
				return limits.Rules{}, fmt.Errorf("--limits %s: %s %q: limits must not be negative", path, who, id)
			}
		}
	}
	return limits.Rules{Accounts: f.Accounts, Keys: f.Keys}, nil
}

// billAdminToken returns $GLMKIT_ADMIN_TOKEN, else the token in
// DATA_DIR/admin.token, creating it (0600, 32 random bytes as hex) on
// first start. Replicas on one PostgreSQL share the token through the
// environment (their data dirs differ).
func billAdminToken(dataDir string) (token string, created bool, err error) {
	if t := strings.TrimSpace(os.Getenv(envAdminToken)); t != "" {
		if len(t) < 16 {
			return "", false, fmt.Errorf("$%s must be at least 16 characters", envAdminToken)
		}
		return t, false, nil
	}
	path := filepath.Join(dataDir, billAdminTokenFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if err := store.CheckPrivate(path); err != nil {
			return "", false, fmt.Errorf("admin token: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, false, nil
		}
		return "", false, fmt.Errorf("%s is empty: delete it to make a new token", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	token = platform.RandomID("", 32)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	// O_EXCL: two processes on one data dir cannot both write a token.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return billAdminToken(dataDir)
	}
	if err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("admin token: %w", err)
	}
	return token, true, nil
}

// startMetering builds the billing engine, the limiter and the admin
// API's options from the checked flags f.
func startMetering(ctx context.Context, env meteringEnv, f meteringOptions) (metering, error) {
	fileRules, err := billLoadLimits(f.limitsFile)
	if err != nil {
		return metering{}, err
	}
	// Billing works on the store's handle: one pool, one schema.
	db := ledger.New(env.Store.Handle())
	bst := billing.NewStore(db, nil)
	// Limits: the file's rules are defaults, the database's override them
	// per subject; reloaded every --limits-reload, at once on the process
	// that served an admin-API change. The hot path only reads memory.
	lim := limits.New(limits.Config{Replicas: f.replicas})
	reloader := limits.NewReloader(lim, fileRules, func(ctx context.Context) (limits.Rules, error) {
		rs, err := bst.ListLimits(ctx)
		return admin.LimitRules(rs), err
	}, f.limitsReload, env.Logger)
	if err := reloader.Reload(ctx); err != nil {
		return metering{}, fmt.Errorf("limits: %w", err)
	}
	reloader.Start()
	m := metering{Limiter: lim}
	var eng *billing.Engine
	m.Close = func(ctx context.Context) error {
		// Runs after the drain: every request has settled, so Close only
		// flushes usage rows and returns leased credit (notes/metering.md).
		reloader.Stop()
		var err error
		if eng != nil {
			err = eng.Close(ctx)
		}
		return err
	}
	if f.metering {
		if f.welcomeTokens > 0 {
			if err := billWelcome(ctx, env, bst, f); err != nil {
				_ = m.Close(ctx)
				return metering{}, err
			}
		}
		eng, err = billing.NewEngine(ctx, db, billing.Config{Logger: env.Logger, LeaseTTL: f.leaseTTL, BatchPercent: f.batchPercent,
			Metrics: billing.NewMetrics(env.Metrics)})
		if err != nil {
			_ = m.Close(ctx)
			return metering{}, err
		}
		m.Meter = billing.Meter{Engine: eng}
		m.Prices = enginePrices{eng}
		env.Logger.Info("metering on: requests are charged to packages, then cash (glm packages list; --metering=false turns it off)")
	} else {
		env.Logger.Warn("metering off (--metering=false): requests are not charged and leave no usage rows")
	}
	if f.admin {
		token, created, err := billAdminToken(env.DataDir)
		if err != nil {
			_ = m.Close(ctx)
			return metering{}, err
		}
		if created {
			env.Logger.Info("admin API: created a token in " + filepath.Join(env.DataDir, billAdminTokenFile) + " (0600)")
		}
		m.Admin = &admin.Options{Token: token, Accounts: env.Store, Keys: env.Store, Billing: bst, Limits: reloader}
		if eng != nil {
			m.Admin.PackagesChanged = eng.PackagesChanged
			m.Admin.PackageRevoked = eng.PackageRevoked
			m.Admin.PricesChanged = func() {
				if err := eng.ReloadPrices(context.Background()); err != nil {
					env.Logger.Error("billing: reload prices", "err", err)
				}
			}
		}
	}
	return m, nil
}

// billWelcome gives the default account its gift package, once per
// database (a fixed package id; a restart or a second replica grants
// nothing).
func billWelcome(ctx context.Context, env meteringEnv, bst *billing.Store, f meteringOptions) error {
	if _, err := env.Store.GetAccount(ctx, DefaultAccountID); err != nil {
		if errors.Is(err, platform.ErrNotFound) {
			return nil // an operator-managed database without the default account
		}
		return fmt.Errorf("welcome package: %w", err)
	}
	now := time.Now()
	p, granted, err := bst.GrantOnce(ctx, billWelcomeID, billing.Grant{
		AccountID: DefaultAccountID, Name: billWelcomeName, Kind: billing.KindGift, Tokens: f.welcomeTokens,
		PurchasedAt: now, EffectiveAt: now, ExpiresAt: now.AddDate(0, 0, f.welcomeDays),
	})
	if err != nil {
		return fmt.Errorf("welcome package: %w", err)
	}
	if granted {
		env.Logger.Info("metering: gave the default account a gift package", "package", p.ID, "name", p.Name,
			"tokens", p.TokensGranted, "expires", showTime(p.ExpiresAt))
	}
	return nil
}
