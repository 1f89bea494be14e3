package conns

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"
)

// DefaultBodyTimeout bounds the arrival of a whole request body: 16 MiB
// (the default --max-body) takes under 30 s at 5 Mbit/s.
const DefaultBodyTimeout = 30 * time.Second

// aLongTimeAgo is a read deadline that fails every read at once.
var aLongTimeAgo = time.Unix(1, 0)

// GuardOptions configure a Guard.
type GuardOptions struct {
	// Name labels the listener in metrics and logs.
	Name string
	// BodyTimeout bounds the arrival of a whole request body, from the
	// handler's start (default DefaultBodyTimeout; negative: none).
	BodyTimeout time.Duration
	Metrics     *Metrics
	Logger      *slog.Logger
	Now         func() time.Time
}

// Guard bounds each request of a listener before any handler sees it:
//   - the whole body must arrive within BodyTimeout, whether or not the
//     handler ever reads it; a body that stops arriving ends the
//     connection;
//   - a handler that answers without reading the body (a 401, a 404, a
//     413) gets its answer out at once and the connection closed, instead
//     of the HTTP server waiting for the body to discard it;
//   - a reserve connection (Options.Reserved) serves one request.
type Guard struct {
	next http.Handler
	o    GuardOptions
	logs *logLimiter
}

// NewGuard wraps next.
func NewGuard(next http.Handler, o GuardOptions) *Guard {
	if o.BodyTimeout == 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Guard{next: next, o: o, logs: newLogLimiter(o.Logger)}
}

func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := connOf(r.Context())
	if r.Body != nil && r.Body != http.NoBody && g.o.BodyTimeout > 0 {
		until := g.o.Now().Add(g.o.BodyTimeout)
		b := &body{ReadCloser: r.Body, g: g, c: c, remote: remoteOf(r, c)}
		if c != nil {
			// On the socket only if a read of the body needs the socket.
			c.deferReadDeadline(until)
		} else {
			// Not one of this package's listeners: on the socket now.
			b.rc = http.NewResponseController(w)
			_ = b.rc.SetReadDeadline(until)
		}
		r.Body = b
		defer b.settle()
	}
	if c != nil && c.reserve != "" {
		// A reserve connection serves the one request it was let in for.
		w.Header().Set("Connection", "close")
	}
	g.next.ServeHTTP(w, r)
}

// body is a request body under the Guard's deadline.
type body struct {
	io.ReadCloser
	g        *Guard
	c        *conn                    // nil: not a Listener's connection, then rc
	rc       *http.ResponseController // sets the connection's read deadline
	remote   string
	eof      bool
	timedOut bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		if !b.eof {
			b.eof = true
			// The body is in: the deadline must not cut what follows (a
			// stream, and the HTTP server's watch for a client that leaves).
			if b.c != nil {
				b.c.clearDeferred()
			} else {
				_ = b.rc.SetReadDeadline(time.Time{})
			}
		}
	case errors.Is(err, os.ErrDeadlineExceeded) && !b.timedOut:
		b.timedOut = true
		b.g.o.Metrics.cut.WithLabelValues(b.g.o.Name, ReasonBodyTimeout).Inc()
		b.g.logs.warn(ReasonBodyTimeout, "connection cut", "listener", b.g.o.Name, "reason", ReasonBodyTimeout,
			"remote", b.remote, "timeout", b.g.o.BodyTimeout)
	}
	return n, err
}

// settle runs when the handler returns. A body not read to its end is
// not waited for: the next read fails at once, so the HTTP server sends
// the answer and closes the connection rather than discarding what is
// left (which would wait as long as the client likes); the close lingers
// so the answer is not lost to a reset.
func (b *body) settle() {
	if b.eof {
		return
	}
	if !b.timedOut {
		b.g.o.Metrics.cut.WithLabelValues(b.g.o.Name, ReasonUnreadBody).Inc()
	}
	if b.c == nil {
		_ = b.rc.SetReadDeadline(aLongTimeAgo)
		return
	}
	_ = b.c.SetReadDeadline(aLongTimeAgo)
	b.c.linger.Store(true)
}

func remoteOf(r *http.Request, c *conn) string {
	if c != nil {
		return c.ip
	}
	return r.RemoteAddr
}
