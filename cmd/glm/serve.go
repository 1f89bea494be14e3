package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/internal/gcpace"
	"github.com/glmkit/glmkit/internal/memtrim"
	"github.com/glmkit/glmkit/platform/auth"
	"github.com/glmkit/glmkit/platform/httpapi"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/platform/tasks"
)

// serveOptions are glm serve's flags.
type serveOptions struct {
	store         storeFlags
	addr          string
	adminAddr     string
	config        string
	prefixes      []string
	workers       int
	taskLease     time.Duration
	taskRetention time.Duration
	maxQueued     int
	retention     time.Duration
	keyRecheck    time.Duration
	maxTokenTTL   time.Duration
	drainTimeout  time.Duration
	maxBody       int64
	bounds        connBounds
	logLevel      string
	accessLog     bool
	pprof         string
	gcHeadroomMB  int
	metering      meteringOptions
	anthropic     anthropicFlags
	console       consoleOptions
	batch         batchFlags

	// flags is the set register filled, for the --config file's server
	// settings; loaded is the parsed --config file.
	flags  *pflag.FlagSet
	loaded *router.Config
}

const serveLong = `glm serve speaks the ZhipuAI V4 API under /api/paas/v4 on embedded SQLite.

On first start it creates a default account and one API key and prints the key
once. Backends come from --config FILE, else from ZHIPUAI_API_KEY (and
ZHIPUAI_BASE_URL) for the Zhipu cloud; the builtin offline embedding model is
always served. The first line on stdout is
  glm serve: listening on http://HOST:PORT
with the bound port, also for --addr 127.0.0.1:0. With --admin-addr the next
line is
  glm serve: admin API and metrics on http://HOST:PORT
and /admin/v1 and /metrics are served there only (/healthz on both).`

func newServeCmd() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the self-hosted V4 platform (chat, streams, async tasks, embeddings, images)",
		Long:  serveLong,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runServe(cmd, o) },
	}
	o.register(cmd.Flags())
	return cmd
}

// register adds the serve flags to fs.
func (o *serveOptions) register(f *pflag.FlagSet) {
	o.flags = f
	o.store.addFlags(f)
	f.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (port 0 picks a free port; the bound address is printed)")
	f.StringVar(&o.adminAddr, "admin-addr", "", "serve the admin API and /metrics on this separate address only (e.g. 127.0.0.1:9090); on --addr when empty")
	f.StringVar(&o.config, "config", "", "config file (JSON): backends, and every other setting under \"server\" by flag name; flags given here win (examples/serve.jsonc)")
	f.StringSliceVar(&o.prefixes, "prefix", []string{httpapi.DefaultPrefix}, "path prefixes to serve the V4 API under (repeatable)")
	f.IntVar(&o.workers, "workers", 4, "async task workers")
	f.DurationVar(&o.taskLease, "task-lease", 30*time.Second, "async task lease: a task whose server died is failed within this time")
	f.DurationVar(&o.taskRetention, "task-retention", 72*time.Hour, "how long finished async results stay readable")
	f.IntVar(&o.maxQueued, "max-queued-tasks", tasks.DefaultMaxQueuedPerKey, "async tasks one API key may have waiting to run (more: 429 with 1302); -1 = no cap")
	o.retention = defaultRetention
	f.Var(ageValue{&o.retention}, "retention", "request-log and usage rows older than this are rolled up per day, hourly (90d, 2160h; 0 keeps every row)")
	f.DurationVar(&o.keyRecheck, "key-recheck", auth.DefaultRecheck, "bound for seeing a key revoked by another process")
	f.DurationVar(&o.maxTokenTTL, "max-token-ttl", auth.DefaultMaxTokenTTL, "longest lifetime of a signed token (JWT): later exp → 1004, older timestamp → 1003")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long in-flight requests and streams may finish")
	f.Int64Var(&o.maxBody, "max-body", httpapi.DefaultMaxBodyBytes, "largest request body in bytes (bigger: 413 with code 1210)")
	o.bounds.register(f)
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	f.BoolVar(&o.accessLog, "access-log", false, "log one line per request and async task run (status, code, account, model, backend, tokens, charge, latency, cause)")
	f.StringVar(&o.pprof, "pprof", "", "debug: serve net/http/pprof on this separate address (e.g. 127.0.0.1:6060); off when empty")
	f.IntVar(&o.gcHeadroomMB, "gc-headroom", 32, "MiB the heap may grow by between garbage collections under load (what is allocated in ~0.5 s, at most this); 0 = Go's default pacing; GOGC in the environment wins")
	o.metering.register(f)
	o.anthropic.register(f)
	o.console.register(f)
	o.batch.register(f)
}

func (o *serveOptions) check() error {
	switch {
	case o.workers < 1:
		return fmt.Errorf("--workers must be at least 1, got %d", o.workers)
	case o.taskLease < time.Second:
		return fmt.Errorf("--task-lease must be at least 1s, got %s", o.taskLease)
	case o.taskRetention < time.Minute:
		return fmt.Errorf("--task-retention must be at least 1m, got %s", o.taskRetention)
	case o.maxQueued == 0 || o.maxQueued < -1:
		return fmt.Errorf("--max-queued-tasks must be at least 1, or -1 for no cap, got %d", o.maxQueued)
	case o.keyRecheck <= 0:
		return fmt.Errorf("--key-recheck must be positive, got %s", o.keyRecheck)
	case o.maxTokenTTL < time.Minute:
		return fmt.Errorf("--max-token-ttl must be at least 1m, got %s", o.maxTokenTTL)
	case o.drainTimeout < 0:
		return fmt.Errorf("--drain-timeout must not be negative, got %s", o.drainTimeout)
	case o.maxBody < 1024:
		return fmt.Errorf("--max-body must be at least 1024 bytes, got %d", o.maxBody)
	case o.gcHeadroomMB < 0:
		return fmt.Errorf("--gc-headroom must not be negative, got %d", o.gcHeadroomMB)
	}
	if err := o.bounds.check(); err != nil {
		return err
	}
	if err := o.batch.check(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(o.addr); err != nil {
		return fmt.Errorf("--addr %q is not host:port: %w", o.addr, err)
	}
	if o.adminAddr != "" {
		if _, _, err := net.SplitHostPort(o.adminAddr); err != nil {
			return fmt.Errorf("--admin-addr %q is not host:port: %w", o.adminAddr, err)
		}
	}
	for _, p := range o.prefixes {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("--prefix %q must start with /", p)
		}
	}
	if err := o.anthropic.check(); err != nil {
		return err
	}
	return o.metering.check()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// backendsConfig reads --config, else the environment shortcut.
func (o *serveOptions) backendsConfig(log *slog.Logger) (router.Config, error) {
	if o.config != "" {
		if err := o.loadConfigFile(); err != nil {
			return router.Config{}, err
		}
		return *o.loaded, nil
	}
	if cfg, ok := router.ConfigFromEnv(os.Getenv); ok {
		log.Info("backends: Zhipu cloud from " + router.EnvAPIKey)
		return cfg, nil
	}
	log.Warn("no --config and no " + router.EnvAPIKey + ": only the builtin offline embedding model is served")
	return router.Config{}, nil
}

// runServe runs glm serve until SIGINT/SIGTERM, then drains.
func runServe(cmd *cobra.Command, o *serveOptions) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := newServeApp(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	// Close drains and releases whatever Start got to, also after a
	// failed start.
	defer app.Close()
	if err := app.Start(ctx); err != nil {
		return err
	}
	// The collector is the process's, so it is paced here, not by the
	// app (tests run several apps in one process): docs/design.md §6
	// "GC pacing".
	pacer := gcpace.Start(gcpace.Config{MaxHeadroom: uint64(o.gcHeadroomMB) << 20})
	defer pacer.Stop()
	// What only start-up used (its garbage, the binary's start-up code)
	// goes back now: docs/design.md §6 "Memory after start".
	memtrim.AfterStart()
	app.Wait(ctx)
	// A second signal during the drain kills the process the default way.
	stop()
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
