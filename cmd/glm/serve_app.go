package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/glmkit/glmkit/platform/admin"
	"github.com/glmkit/glmkit/platform/anthropic"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/batch"
	"github.com/glmkit/glmkit/platform/conns"
	"github.com/glmkit/glmkit/platform/console"
	"github.com/glmkit/glmkit/platform/httpapi"
	"github.com/glmkit/glmkit/platform/metered"
	"github.com/glmkit/glmkit/platform/mux"
	"github.com/glmkit/glmkit/platform/ops"
	"github.com/glmkit/glmkit/platform/requestlog"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/tasks"
)

// closeTimeout bounds the release of each part after the drain (flushing
// the request log and usage rows, returning leased credit).
const closeTimeout = 30 * time.Second

// serveApp is glm serve assembled in one place: Start opens the parts in
// order (store, metering, backends, tasks, handlers, listeners), Wait
// blocks until the context ends or a listener fails, Close drains the
// requests and the task pool, then releases the parts in reverse order.
// runServe drives it for the command; tests drive it in-process.
type serveApp struct {
	o   *serveOptions
	log *slog.Logger
	out io.Writer

	// closers release what Start opened, last opened first, after the
	// drain; they run also when Start failed halfway.
	closers []func(ctx context.Context) error

	store    *store.SQL
	auth     *auth.Authenticator
	reqlog   *requestlog.Batcher
	pool     *tasks.Pool
	runner   *batch.Runner
	api      *httpapi.Server
	metrics  *httpapi.Metrics
	backends *router.Router
	// anthropic is the Anthropic Messages API (serve_anthropic.go).
	anthropic *anthropic.Server
	// console is the web console (nil with --console=false).
	console *console.Console
	// calls is the one metered call service (the API's and the console
	// playground's).
	calls *metered.Service

	// Serving: one http.Server per listener (the public one first, then
	// the admin one with --admin-addr), all requests parented by baseCtx.
	// Each listener admits connections within the caps and each server's
	// handler is behind a conns.Guard (serve_conns.go).
	bound      []net.Listener // the sockets of --addr, --admin-addr, bound first
	servers    []*http.Server
	listeners  []*conns.Listener
	connStats  *conns.Metrics
	baseCtx    context.Context
	cancelBase context.CancelFunc
	inflight   sync.WaitGroup
	serveErr   chan error
	closeOnce  sync.Once
}

// newServeApp checks the options; nothing is opened yet. out receives the
// lines scripts read (first-start key, listening addresses), errOut the log.
func newServeApp(o *serveOptions, out, errOut io.Writer) (*serveApp, error) {
	if err := o.loadConfigFile(); err != nil {
		return nil, err
	}
	if err := o.check(); err != nil {
		return nil, err
	}
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return nil, err
	}
	if err := checkZone(); err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: level, ReplaceAttr: logZone(showZone())}))
	return &serveApp{o: o, log: log, out: out}, nil
}

// Start opens every part and starts serving. On error, Close releases what
// was opened.
func (a *serveApp) Start(ctx context.Context) error {
	cfg, err := a.o.backendsConfig(a.log)
	if err != nil {
		return err
	}
	if err := a.lock(); err != nil {
		return err
	}
	// Bind before any state is written: a port in use must not leave a
	// first-start key printed for a server that never ran (and none on the
	// next start).
	if err := a.bind(); err != nil {
		return err
	}
	if err := a.openStore(ctx); err != nil {
		return err
	}
	a.metrics = httpapi.NewMetrics()
	m, err := a.startMetering(ctx)
	if err != nil {
		return err
	}
	backends, err := router.New(ctx, cfg, router.WithStreamIdleTimeout(a.o.bounds.upstreamIdle),
		router.WithLogger(a.log), router.WithMetrics(router.NewMetrics(a.metrics.Registry)))
	if err != nil {
		return fmt.Errorf("backends: %w", err)
	}
	a.backends = backends
	if err := a.startAPI(cfg, backends, m); err != nil {
		return err
	}
	if a.o.console.enabled {
		if a.console, err = a.newConsole(m); err != nil {
			return err
		}
		a.startSessionPurge()
	}
	a.startRetention()
	public, private := a.handlers(m)
	if err := a.listen(public, private); err != nil {
		return err
	}
	if a.o.pprof != "" {
		_, stopPprof, err := servePprof(a.o.pprof, a.log)
		if err != nil {
			return err
		}
		a.onClose(func(context.Context) error { stopPprof(); return nil })
	}
	a.log.Info("serving", "addr", a.listeners[0].Addr().String(), "base_url", a.URL()+a.o.prefixes[0],
		"models", len(backends.Models()))
	a.serve()
	return nil
}

func (a *serveApp) onClose(f func(ctx context.Context) error) { a.closers = append(a.closers, f) }

// lock takes the data directory's lock: one glm serve per directory,
// except replicas on one PostgreSQL (--replicas N > 1), which may share
// a directory on one host.
func (a *serveApp) lock() error {
	l := a.o.store.locate()
	if l.isURL && a.o.metering.replicas > 1 {
		return nil
	}
	release, err := lockDataDir(l.dataDir)
	if err != nil {
		return err
	}
	a.onClose(func(context.Context) error { release(); return nil })
	return nil
}

// bind opens the sockets of --addr and --admin-addr.
func (a *serveApp) bind() error {
	addrs := []struct{ addr, flag string }{{a.o.addr, "--addr"}}
	if a.o.adminAddr != "" {
		addrs = append(addrs, struct{ addr, flag string }{a.o.adminAddr, "--admin-addr"})
	}
	for _, x := range addrs {
		raw, err := net.Listen("tcp", x.addr)
		if err != nil {
			return fmt.Errorf("%s: listen on %s: %w", x.flag, x.addr, err)
		}
		a.onClose(func(context.Context) error {
			err := raw.Close() // a no-op after Shutdown; frees the port after a failed start
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		})
		a.bound = append(a.bound, raw)
	}
	return nil
}

// openStore opens the database and, on first start, creates the default
// account and prints its first key.
func (a *serveApp) openStore(ctx context.Context) error {
	st, err := a.o.store.openStore(ctx, true)
	if err != nil {
		return err
	}
	a.store = st
	a.onClose(func(context.Context) error { return st.Close() })
	created, err := ensureDefaultAccount(ctx, st)
	if err != nil {
		return fmt.Errorf("create default account: %w", err)
	}
	if created {
		k, err := newKey(ctx, st, DefaultAccountID, "first key")
		if err != nil {
			return fmt.Errorf("create first key: %w", err)
		}
		fmt.Fprintf(a.out, "glm serve: first start: created account %q and an API key. It is shown only this once:\n\n    %s\n\n"+
			"glm serve: more keys: glm keys create; list: glm keys list\n", DefaultAccountID, k.Full())
	}
	return a.ensureOperator(ctx)
}

// startMetering builds billing, limits and the admin API's options.
func (a *serveApp) startMetering(ctx context.Context) (metering, error) {
	dataDir, dsn := a.o.store.resolve()
	m, err := startMetering(ctx, meteringEnv{DSN: dsn, DataDir: dataDir, Store: a.store, Logger: a.log,
		Metrics: a.metrics.Registry}, a.o.metering)
	if err != nil {
		return metering{}, err
	}
	a.onClose(m.Close)
	return m, nil
}

// startAPI builds the hot path: authentication, the request log, the one
// metered call, the task pool (started by serve) and the V4 API.
func (a *serveApp) startAPI(cfg router.Config, backends *router.Router, m metering) error {
	trace := func(ctx context.Context) (context.Context, func() string) {
		ctx, tr := router.WithTrace(ctx)
		return ctx, func() string { return tr.Backend }
	}
	a.auth = auth.New(a.store, auth.Options{Recheck: a.o.keyRecheck, MaxTokenTTL: a.o.maxTokenTTL})
	if m.Admin != nil {
		// A disable through the admin API applies here at once; prices,
		// scopes and limits name models the router serves.
		m.Admin.AccountChanged = a.auth.AccountChanged
		m.Admin.Models = func(name string) bool { _, ok := backends.Model(name); return ok }
	}
	metrics := a.metrics
	a.reqlog = requestlog.New(a.store, requestlog.Options{Logger: a.log, OnCut: metrics.InputCut,
		Metrics: requestlog.NewMetrics(metrics.Registry)})
	// The request log's last flush follows the drain, so that every
	// drained request is in it.
	a.onClose(a.reqlog.Close)
	var callMetrics metered.Metrics = metrics
	if a.o.accessLog {
		callMetrics = accessLog{Metrics: metrics, log: a.log}
	}
	calls := metered.New(metered.Options{Backend: backends, Catalogue: backends, Meter: m.Meter, Limiter: m.Limiter,
		Log: a.reqlog, Metrics: callMetrics, Trace: trace, Logger: a.log})
	a.calls = calls
	a.pool = tasks.New(tasks.Options{Store: a.store, Calls: calls,
		Workers: a.o.workers, Lease: a.o.taskLease, Retention: a.o.taskRetention, MaxQueuedPerKey: a.o.maxQueued, Logger: a.log})
	apiOpts := httpapi.Options{Catalogue: backends, Prices: m.Prices, Auth: a.auth, Tasks: a.pool, Calls: calls, Metrics: metrics,
		Prefixes: a.o.prefixes, MaxBodyBytes: a.o.maxBody, WriteTimeout: a.o.bounds.writeTimeout, Logger: a.log}
	if err := a.startBatches(calls, &apiOpts); err != nil {
		return err
	}
	a.api = httpapi.New(apiOpts)
	return a.anthropicAPI(cfg, backends, calls, metrics.Registry)
}

// handlers composes the mountable handlers into one root mux per
// listener. Without --admin-addr everything shares the public listener;
// with it, the admin API and /metrics are on the private one only, so
// neither is reachable through the address clients use.
func (a *serveApp) handlers(m metering) (public, private *mux.Mux) {
	health := func(ctx context.Context) error { return a.store.DB().PingContext(ctx) }
	ready := a.readiness
	metrics := a.api.Metrics().Registry
	var adminAPI *mux.Mux
	if m.Admin != nil {
		o := *m.Admin
		o.Revoker, o.Logger, o.Users = a.auth, a.log, a.store
		adminAPI = admin.NewHandler(o)
	}
	public = mux.New(nil)
	public.Mount(a.api)
	public.Mount(a.anthropic)
	if a.console != nil {
		public.Mount(a.console)
	}
	if a.o.adminAddr == "" {
		public.Mount(ops.New(ops.Options{Health: health, Ready: ready, Metrics: metrics}))
		if adminAPI != nil {
			public.Mount(adminAPI)
		}
		return public, nil
	}
	public.Mount(ops.New(ops.Options{Health: health, Ready: ready}))
	private = mux.New(nil)
	private.Mount(ops.New(ops.Options{Health: health, Ready: ready, Metrics: metrics}))
	if adminAPI != nil {
		private.Mount(adminAPI)
	}
	return public, private
}

// readiness is /readyz: the database answers, and every served model has
// a backend whose circuit is not open (docs/design.md §9). The body names
// the down backends; the database's cause goes to the log only.
func (a *serveApp) readiness(ctx context.Context) []ops.Check {
	checks := []ops.Check{{Name: "database", OK: true}}
	if err := a.store.DB().PingContext(ctx); err != nil {
		a.log.Error("readiness: database unreachable", "err", err)
		checks[0] = ops.Check{Name: "database", Detail: "unreachable"}
	}
	for _, h := range a.backends.Health() {
		c := ops.Check{Name: "model " + h.Model, OK: h.Ready, Down: h.Down}
		if !h.Ready {
			c.Detail = "every backend is down (circuit open)"
		}
		checks = append(checks, c)
	}
	return checks
}

// listen binds the listeners and prints their addresses: the public one
// first (the line scripts wait for, see serveLong), then the admin one.
func (a *serveApp) listen(public, private *mux.Mux) error {
	a.baseCtx, a.cancelBase = context.WithCancel(context.Background())
	a.connStats = conns.NewMetrics(a.api.Metrics().Registry)
	maxConns := a.o.bounds.connCap()
	a.log.Info("connection bounds", "max_conns", maxConns, "max_conns_per_ip", a.o.bounds.maxConnsPerIP,
		"header_timeout", a.o.bounds.headerTimeout, "body_timeout", a.o.bounds.bodyTimeout,
		"write_timeout", a.o.bounds.writeTimeout, "upstream_idle_timeout", a.o.bounds.upstreamIdle)
	a.listenOn(a.bound[0], "public", maxConns, public)
	if private != nil {
		a.listenOn(a.bound[1], "admin", maxConns, private)
	}
	fmt.Fprintf(a.out, "glm serve: listening on %s\n", a.URL())
	if private != nil {
		fmt.Fprintf(a.out, "glm serve: admin API and metrics on %s\n", a.AdminURL())
	}
	return nil
}

func (a *serveApp) listenOn(raw net.Listener, name string, maxConns int, h http.Handler) {
	b := &a.o.bounds
	ln := conns.Listen(raw, conns.Options{Name: name, MaxConns: maxConns, MaxPerIP: b.maxConnsPerIP,
		Reserved: isHealth, Metrics: a.connStats, Logger: a.log})
	a.onClose(func(context.Context) error {
		err := ln.Close() // a no-op after Shutdown; frees the port after a failed start
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	})
	guard := conns.NewGuard(h, conns.GuardOptions{Name: name, BodyTimeout: b.bodyTimeout,
		Metrics: a.connStats, Logger: a.log})
	a.listeners = append(a.listeners, ln)
	a.servers = append(a.servers, &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.inflight.Add(1)
			defer a.inflight.Done()
			guard.ServeHTTP(w, r)
		}),
		// No ReadTimeout or WriteTimeout: they would bound whole streams.
		// The body's time is the Guard's, a stream event's the API's.
		ReadHeaderTimeout: b.headerTimeout,
		IdleTimeout:       b.idleTimeout,
		ConnState:         ln.ConnState,
		ConnContext:       ln.ConnContext,
		// baseCtx parents every request context: cancelling it after the
		// drain timeout ends the streams still running.
		BaseContext: func(net.Listener) context.Context { return a.baseCtx },
		ErrorLog:    slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	})
}

// URL is the public base URL (http://HOST:PORT), once Start has listened.
func (a *serveApp) URL() string { return "http://" + a.listeners[0].Addr().String() }

// AdminURL is the admin listener's base URL; the public one without
// --admin-addr.
func (a *serveApp) AdminURL() string {
	return "http://" + a.listeners[len(a.listeners)-1].Addr().String()
}

// serve starts the task workers and the HTTP servers.
func (a *serveApp) serve() {
	a.pool.Start()
	a.runner.Start()
	a.serveErr = make(chan error, len(a.servers))
	for i, srv := range a.servers {
		ln := a.listeners[i]
		go func() { a.serveErr <- srv.Serve(ln) }()
	}
}

// Wait blocks until ctx ends or a server stops on its own.
func (a *serveApp) Wait(ctx context.Context) {
	select {
	case err := <-a.serveErr:
		if !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("server stopped", "err", err)
		}
	case <-ctx.Done():
		a.log.Info("shutting down: draining in-flight requests", "timeout", a.o.drainTimeout)
	}
}

// Close drains (when serving) and releases every part; safe to call more
// than once and after a failed Start.
func (a *serveApp) Close() {
	a.closeOnce.Do(func() {
		serving := a.serveErr != nil
		if serving {
			a.drain()
		}
		if a.cancelBase != nil {
			a.cancelBase()
		}
		for i := len(a.closers) - 1; i >= 0; i-- {
			ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
			if err := a.closers[i](ctx); err != nil {
				a.log.Error("close", "err", err)
			}
			cancel()
		}
		if serving {
			a.log.Info("stopped")
		}
	})
}

// drain lets in-flight requests, streams and tasks finish within
// --drain-timeout, then cuts what still runs: streams end with an in-band
// error and every request is still settled and logged.
func (a *serveApp) drain() {
	ctx, cancel := context.WithTimeout(context.Background(), a.o.drainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.pool.Shutdown(ctx); err != nil {
			a.log.Error("tasks shutdown", "err", err)
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.runner.Shutdown(ctx); err != nil {
			a.log.Error("batch workers shutdown", "err", err)
		}
	}()
	if err := a.shutdown(ctx); err != nil {
		a.log.Warn("drain timeout: cutting remaining requests")
		a.api.SetDraining()
		a.anthropic.SetDraining()
		a.cancelBase()
		// Streams end with an in-band error now; a client that does not
		// read cannot hold that write (or the process) past the grace:
		// closing the connections fails it, and the handler still
		// settles and logs its request.
		if !waitAtMost(&a.inflight, cutGrace) {
			a.closeConnections()
		}
	}
	a.inflight.Wait()
	wg.Wait()
}

// closeConnections closes every connection still open, counting them as
// cut by the shutdown.
func (a *serveApp) closeConnections() {
	for i, srv := range a.servers {
		ln := a.listeners[i]
		if n := ln.Open(); n > 0 {
			a.connStats.Cut(ln.Name(), conns.ReasonShutdown, n)
			a.log.Warn("connection cut", "listener", ln.Name(), "reason", conns.ReasonShutdown, "count", n)
		}
		_ = srv.Close()
	}
}

// waitAtMost waits for wg at most d; it reports whether wg was done.
func waitAtMost(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// shutdown stops every server gracefully, concurrently, so that one slow
// listener does not eat another's share of the drain timeout.
func (a *serveApp) shutdown(ctx context.Context) error {
	errs := make([]error, len(a.servers))
	var wg sync.WaitGroup
	for i, srv := range a.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = srv.Shutdown(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
