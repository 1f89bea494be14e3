package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/httpapi"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/ops"
	"github.com/glmkit/glmkit/platform/proxy"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/tasks"
)

func init() { commands = append(commands, newServeCmd) }

// ServeEnv is what a serve extension gets to build its parts.
type ServeEnv struct {
	// DSN is the database glm serve uses (a SQLite path or a URL), DataDir
	// its data directory.
	DSN, DataDir string
	Store        *store.SQL
	Logger       *slog.Logger
}

// ServePlugin is what an extension adds to the hot path. Meter and Limiter
// may be nil (the no-op versions stay); Close runs after the HTTP drain and
// the task pool have stopped, before the request log's last flush.
type ServePlugin struct {
	Meter   platform.Meter
	Limiter platform.Limiter
	// Admin, when set, mounts the admin API.
	Admin *admin.Options
	Close func(ctx context.Context) error
}

// serveExtensions let other command files plug into glm serve without
// editing this one: metering (issue 4) adds, from its own file,
//
//	func init() { serveExtensions = append(serveExtensions, serveExtension{Flags: …, Start: …}) }
//
// Flags registers extra serve flags; Start builds the plugin once the store
// is open. At most one extension may supply a Meter, and one a Limiter.
var serveExtensions []serveExtension

type serveExtension struct {
	Flags func(fs *pflag.FlagSet)
	Start func(ctx context.Context, env ServeEnv) (ServePlugin, error)
}

// serveOptions are glm serve's flags.
type serveOptions struct {
	store         storeFlags
	addr          string
	config        string
	prefixes      []string
	workers       int
	taskLease     time.Duration
	taskRetention time.Duration
	keyRecheck    time.Duration
	drainTimeout  time.Duration
	maxBody       int64
	logLevel      string
	pprof         string
}

func newServeCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the self-hosted V4 platform (chat, streams, async tasks, embeddings, images)",
		Long: `glm serve speaks the ZhipuAI V4 API under /api/paas/v4 on embedded SQLite.

On first start it creates a default account and one API key and prints the key
once. Backends come from --config FILE, else from ZHIPUAI_API_KEY (and
ZHIPUAI_BASE_URL) for the Zhipu cloud; the builtin offline embedding model is
always served. The first line on stdout is
  glm serve: listening on http://HOST:PORT
with the bound port, also for --addr 127.0.0.1:0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServe(cmd, o) },
	}
	f := cmd.Flags()
	o.store.register(cmd)
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (port 0 picks a free port; the bound address is printed)")
	f.StringVar(&o.config, "config", "", "backends config file (JSON; see notes/backends.md)")
	f.StringSliceVar(&o.prefixes, "prefix", []string{httpapi.DefaultPrefix}, "path prefixes to serve the V4 API under (repeatable)")
	f.IntVar(&o.workers, "workers", 4, "async task workers")
	f.DurationVar(&o.taskLease, "task-lease", 30*time.Second, "async task lease: a task whose server died is failed within this time")
	f.DurationVar(&o.taskRetention, "task-retention", 72*time.Hour, "how long finished async results stay readable")
	f.DurationVar(&o.keyRecheck, "key-recheck", auth.DefaultRecheck, "bound for seeing a key revoked by another process")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long in-flight requests and streams may finish")
	f.Int64Var(&o.maxBody, "max-body", httpapi.DefaultMaxBodyBytes, "largest request body in bytes (bigger: 413 with code 1210)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&o.pprof, "pprof", "", "debug: serve net/http/pprof on this separate address (e.g. 127.0.0.1:6060); off when empty")
	for _, ext := range serveExtensions {
		if ext.Flags != nil {
			ext.Flags(f)
		}
	}
	return cmd
}

func (o *serveOptions) check() error {
	switch {
	case o.workers < 1:
		return fmt.Errorf("--workers must be at least 1, got %d", o.workers)
	case o.taskLease < time.Second:
		return fmt.Errorf("--task-lease must be at least 1s, got %s", o.taskLease)
	case o.taskRetention < time.Minute:
		return fmt.Errorf("--task-retention must be at least 1m, got %s", o.taskRetention)
	case o.keyRecheck <= 0:
		return fmt.Errorf("--key-recheck must be positive, got %s", o.keyRecheck)
	case o.drainTimeout < 0:
		return fmt.Errorf("--drain-timeout must not be negative, got %s", o.drainTimeout)
	case o.maxBody < 1024:
		return fmt.Errorf("--max-body must be at least 1024 bytes, got %d", o.maxBody)
	}
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return fmt.Errorf("--addr %q is not host:port: %w", o.addr, err)
	}
	for _, p := range o.prefixes {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("--prefix %q must start with /", p)
		}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// backendsConfig reads --config, else the environment shortcut.
func (o *serveOptions) backendsConfig(log *slog.Logger) (proxy.Config, error) {
	if o.config != "" {
		cfg, err := proxy.LoadConfig(o.config)
		if err != nil {
			return proxy.Config{}, fmt.Errorf("--config: %w", err)
		}
		return cfg, nil
	}
	if cfg, ok := proxy.ConfigFromEnv(os.Getenv); ok {
		log.Info("backends: Zhipu cloud from " + proxy.EnvAPIKey)
		return cfg, nil
	}
	log.Warn("no --config and no " + proxy.EnvAPIKey + ": only the builtin offline embedding model is served")
	return proxy.Config{}, nil
}

func runServe(cmd *cobra.Command, o *serveOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
	out := cmd.OutOrStdout()

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := o.backendsConfig(log)
	if err != nil {
		return err
	}
	st, err := o.store.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	created, err := ensureDefaultAccount(ctx, st)
	if err != nil {
		return fmt.Errorf("create default account: %w", err)
	}
	if created {
		k, err := newKey(ctx, st, DefaultAccountID, "first key")
		if err != nil {
			return fmt.Errorf("create first key: %w", err)
		}
		fmt.Fprintf(out, "glm serve: first start: created account %q and an API key. It is shown only this once:\n\n    %s\n\n"+
			"glm serve: more keys: glm keys create; list: glm keys list\n", DefaultAccountID, k.Full())
	}

	dataDir, dsn := o.store.resolve()
	var meter platform.Meter
	var limiter platform.Limiter
	var adminOpts *admin.Options
	var closers []func(context.Context) error
	defer func() {
		// Extensions close last (after drain), also on a failed start.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](cctx); err != nil {
				log.Error("extension close", "err", err)
			}
		}
	}()
	for _, ext := range serveExtensions {
		if ext.Start == nil {
			continue
		}
		p, err := ext.Start(ctx, ServeEnv{DSN: dsn, DataDir: dataDir, Store: st, Logger: log})
		if err != nil {
			return err
		}
		if p.Close != nil {
			closers = append(closers, p.Close)
		}
		if p.Meter != nil {
			if meter != nil {
				return errors.New("two serve extensions supply a Meter")
			}
			meter = p.Meter
		}
		if p.Limiter != nil {
			if limiter != nil {
				return errors.New("two serve extensions supply a Limiter")
			}
			limiter = p.Limiter
		}
		if p.Admin != nil {
			adminOpts = p.Admin
		}
	}

	router, err := proxy.New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("backends: %w", err)
	}
	trace := func(ctx context.Context) (context.Context, func() string) {
		ctx, tr := proxy.WithTrace(ctx)
		return ctx, func() string { return tr.Backend }
	}
	authn := auth.New(st, auth.Options{Recheck: o.keyRecheck})
	batcher := requestlog.New(st, requestlog.Options{Logger: log})
	pool := tasks.New(tasks.Options{Store: st, Router: router, Log: batcher, Trace: trace, Meter: meter, Workers: o.workers,
		Lease: o.taskLease, Retention: o.taskRetention, Logger: log})
	api := httpapi.New(httpapi.Options{Router: router, Auth: authn, Tasks: pool, Log: batcher, Trace: trace,
		Meter: meter, Limiter: limiter,
		Prefixes: o.prefixes, MaxBodyBytes: o.maxBody, Logger: log})
	root := mux.New(nil)
	root.Mount(api)
	root.Mount(ops.New(ops.Options{Metrics: api.Metrics().Registry,
		Health: func(ctx context.Context) error { return st.DB().PingContext(ctx) }}))
	if adminOpts != nil {
		adminOpts.Revoker, adminOpts.Logger = authn, log
		root.Mount(admin.NewHandler(*adminOpts))
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	// The first stdout line a test or script waits for (see Long help).
	fmt.Fprintf(out, "glm serve: listening on http://%s\n", ln.Addr())
	if o.pprof != "" {
		_, stopPprof, err := servePprof(o.pprof, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	log.Info("serving", "addr", ln.Addr().String(), "base_url", "http://"+ln.Addr().String()+o.prefixes[0],
		"models", len(router.Models()))

	// baseCtx parents every request context: cancelling it after the drain
	// timeout ends the streams still running.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	var inflight sync.WaitGroup
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inflight.Add(1)
			defer inflight.Done()
			root.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	pool.Start()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "err", err)
		}
	case <-ctx.Done():
		log.Info("shutting down: draining in-flight requests", "timeout", o.drainTimeout)
	}
	stop()

	drainCtx, cancelDrain := context.WithTimeout(context.Background(), o.drainTimeout)
	defer cancelDrain()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := pool.Shutdown(drainCtx); err != nil {
			log.Error("tasks shutdown", "err", err)
		}
	}()
	if err := srv.Shutdown(drainCtx); err != nil {
		// Drain timeout: cut what still runs. Streams end with an in-band
		// error and every request is still settled and logged.
		log.Warn("drain timeout: cutting remaining requests")
		api.SetDraining()
		cancelBase()
		inflight.Wait()
		srv.Close()
	}
	inflight.Wait()
	wg.Wait()
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelClose()
	if err := batcher.Close(closeCtx); err != nil {
		log.Error("request log flush", "err", err)
	}
	log.Info("stopped")
	return nil
}

// servePprof serves the profiler on its own listener and mux, so it is
// never reachable through the API's address (debug only: it has no auth).
func servePprof(addr string, log *slog.Logger) (bound string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("--pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Warn("pprof enabled (debug only, no auth)", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}
