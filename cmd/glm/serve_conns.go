package main

import (
	"fmt"
	"net/http"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform/conns"
	"github.com/glmkit/glmkit/platform/httpapi"
	"github.com/glmkit/glmkit/platform/ops"
	"github.com/glmkit/glmkit/platform/upstream"
)

// connBounds are the flags that bound what one client connection may hold
// (docs/design.md §3 "Every connection is bounded").
type connBounds struct {
	headerTimeout time.Duration
	bodyTimeout   time.Duration
	idleTimeout   time.Duration
	writeTimeout  time.Duration
	upstreamIdle  time.Duration
	maxConns      int
	maxConnsPerIP int
}

// Defaults of the bounds.
const (
	defaultHeaderTimeout = 10 * time.Second
	defaultIdleTimeout   = 2 * time.Minute
	defaultMaxConnsPerIP = 256
	// fdHeadroom descriptors stay free for what is not a client
	// connection: the database, logs, the reserve and the refusals
	// (platform/conns), listeners.
	fdHeadroom = 256
	// maxAutoConns caps the automatic --max-conns: each connection costs
	// a goroutine and buffers even when the descriptor limit is huge.
	maxAutoConns = 10000
	// cutGrace is how long, after the drain timeout, streams get to write
	// their in-band error before every connection is closed.
	cutGrace = time.Second
)

func (b *connBounds) register(f *pflag.FlagSet) {
	f.DurationVar(&b.headerTimeout, "header-timeout", defaultHeaderTimeout, "time a client has to send the request headers")
	f.DurationVar(&b.bodyTimeout, "body-timeout", conns.DefaultBodyTimeout, "time a client has to send the whole request body (then 408 with 1210 and the connection is closed)")
	f.DurationVar(&b.idleTimeout, "idle-timeout", defaultIdleTimeout, "how long an idle keep-alive connection is kept")
	f.DurationVar(&b.writeTimeout, "write-timeout", httpapi.DefaultWriteTimeout, "a stream client that reads nothing for this long is cut (settled as gone)")
	f.DurationVar(&b.upstreamIdle, "upstream-idle-timeout", upstream.DefaultStreamIdle, "a backend stream that sends nothing for this long after its first byte is cut (in-band 1234)")
	f.IntVar(&b.maxConns, "max-conns", 0, "client connections open at once per listener (more: 429 with 1302); 0 = from the open-file limit")
	f.IntVar(&b.maxConnsPerIP, "max-conns-per-ip", defaultMaxConnsPerIP, "client connections open at once from one address (more: 429 with 1302); 0 = no cap")
}

func (b *connBounds) check() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--header-timeout", b.headerTimeout}, {"--body-timeout", b.bodyTimeout}, {"--idle-timeout", b.idleTimeout},
		{"--write-timeout", b.writeTimeout}, {"--upstream-idle-timeout", b.upstreamIdle},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be positive, got %s", d.flag, d.v)
		}
	}
	switch {
	case b.maxConns < 0:
		return fmt.Errorf("--max-conns must not be negative, got %d", b.maxConns)
	case b.maxConnsPerIP < 0:
		return fmt.Errorf("--max-conns-per-ip must not be negative, got %d", b.maxConnsPerIP)
	}
	return nil
}

// connCap is --max-conns, or, when 0, what the open-file limit allows: a
// client connection may hold a second descriptor for its backend call, and
// running out of descriptors stops the accept loop for everyone.
func (b *connBounds) connCap() int {
	if b.maxConns > 0 {
		return b.maxConns
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 2*maxAutoConns+fdHeadroom {
		return maxAutoConns
	}
	return max(16, (int(rl.Cur)-fdHeadroom)/2)
}

// isHealth is what a connection beyond a cap may still ask: the health
// probe.
func isHealth(method, path string) bool {
	return (method == http.MethodGet || method == http.MethodHead) && (path == ops.HealthPath || path == ops.ReadyPath)
}
