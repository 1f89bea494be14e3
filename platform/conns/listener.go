// Package conns bounds what a client connection may hold on glm serve
// (docs/design.md §3 "Every connection is bounded"): a Listener caps the
// connections open in total and per client address and refuses the rest
// at once, and a Guard bounds the time a request body may take and closes
// a connection whose body a handler refused without reading it. Both count
// every refusal and cut in Metrics and log it with its reason.
//
// cmd/glm wraps each listener: the Listener around the net.Listener (with
// its ConnState and ConnContext hooks on the http.Server), the Guard around
// the root handler.
package conns

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/envelope"
)

// Reasons, the values of the metrics' reason label and of the logs' reason
// attribute.
const (
	ReasonMaxConns      = "max_conns"        // refused: the listener is full
	ReasonMaxConnsPerIP = "max_conns_per_ip" // refused: the client address is full
	ReasonHeaderTimeout = "header_timeout"   // cut: the request headers did not arrive in time
	ReasonIdleTimeout   = "idle_timeout"     // closed: a keep-alive connection stayed idle
	ReasonBodyTimeout   = "body_timeout"     // cut: the request body did not arrive in time
	ReasonUnreadBody    = "unread_body"      // closed: a request was answered without reading its body
	ReasonShutdown      = "shutdown"         // cut: the drain timeout ended
)

// Defaults of Options.
const (
	// DefaultReserve connections beyond a cap are still read, so that a
	// health probe gets through a flood; everything else on them is 429.
	DefaultReserve = 16
	// DefaultReserveTimeout bounds a reserve connection's whole life.
	DefaultReserveTimeout = 2 * time.Second
	// refusers bounds the connections being refused at one time; past it
	// a connection is closed without an answer, so refusing never costs
	// more than this many descriptors.
	refusers = 64
	// lingerTime is how long a connection closed with an unread body, or
	// refused, keeps reading what the client still sends, so that the
	// close is a FIN after the answer and not a reset that could destroy
	// the answer in the client's buffer.
	lingerTime = 500 * time.Millisecond
	// lingerBytes bounds what a lingering close reads.
	lingerBytes = 256 << 10
)

// Options configure a Listener.
type Options struct {
	// Name labels the listener in metrics and logs ("public", "admin").
	Name string
	// MaxConns caps the connections open at once; 0 is no cap.
	MaxConns int
	// MaxPerIP caps the connections open at once from one client address;
	// 0 is no cap.
	MaxPerIP int
	// Reserve is how many connections beyond a cap are still read, for
	// the requests a Guard lets through (a health probe); the rest of
	// their requests get 429. Negative: none; 0: DefaultReserve.
	Reserve int
	// ReserveTimeout bounds a reserve connection's life (default
	// DefaultReserveTimeout).
	ReserveTimeout time.Duration
	Metrics        *Metrics
	Logger         *slog.Logger
}

// Listener is a net.Listener that admits connections within its caps.
// A connection beyond a cap goes to the reserve while it has room, else it
// gets a canned 429 with code 1302 and is closed, without a goroutine of
// the HTTP server or a read of its request.
type Listener struct {
	net.Listener
	o    Options
	logs *logLimiter

	mu       sync.Mutex
	total    int
	byIP     map[string]int
	reserved int

	refusing chan struct{}
	refusals map[string][]byte // canned answer by reason
}

// Listen wraps ln.
func Listen(ln net.Listener, o Options) *Listener {
	if o.Reserve == 0 {
		o.Reserve = DefaultReserve
	}
	if o.Reserve < 0 {
		o.Reserve = 0
	}
	if o.ReserveTimeout <= 0 {
		o.ReserveTimeout = DefaultReserveTimeout
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &Listener{Listener: ln, o: o, logs: newLogLimiter(o.Logger), byIP: map[string]int{},
		refusing: make(chan struct{}, refusers), refusals: map[string][]byte{}}
	for _, reason := range []string{ReasonMaxConns, ReasonMaxConnsPerIP} {
		l.refusals[reason] = cannedRefusal(reason)
	}
	return l
}

// Refusal is the error a connection beyond a cap gets: 429 with 1302.
func Refusal(reason string) *platform.Error {
	msg := "too many connections to this server; retry later"
	if reason == ReasonMaxConnsPerIP {
		msg = "too many connections from your address; retry later"
	}
	return platform.Errorf(platform.CodeConcurrency, "%s", msg)
}

// cannedRefusal is the whole HTTP answer of a refused connection.
func cannedRefusal(reason string) []byte {
	body, _ := json.Marshal(envelope.Of(Refusal(reason), "")) // plain strings always marshal
	return fmt.Appendf(nil, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: %s\r\nContent-Length: %d\r\n"+
		"Retry-After: 1\r\nConnection: close\r\n\r\n%s", envelope.ContentJSON, len(body), body)
}

// Accept returns the next connection within the caps (or on the reserve);
// connections beyond both are refused here and never returned.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(nc.RemoteAddr())
		reason, reserve := l.admit(ip)
		if reason == "" || reserve {
			c := &conn{Conn: nc, l: l, ip: ip, reserve: reason}
			if reserve {
				c.until = time.Now().Add(l.o.ReserveTimeout)
				_ = nc.SetDeadline(c.until)
			}
			l.o.Metrics.open.WithLabelValues(l.o.Name).Inc()
			return c, nil
		}
		l.refuse(nc, ip, reason)
	}
}

// admit counts a new connection from ip: reason is "" within the caps,
// else the cap it is beyond, with reserve set when the reserve took it.
func (l *Listener) admit(ip string) (reason string, reserve bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.o.MaxConns > 0 && l.total >= l.o.MaxConns:
		reason = ReasonMaxConns
	case l.o.MaxPerIP > 0 && l.byIP[ip] >= l.o.MaxPerIP:
		reason = ReasonMaxConnsPerIP
	default:
		l.total++
		l.byIP[ip]++
		return "", false
	}
	if l.reserved < l.o.Reserve {
		l.reserved++
		return reason, true
	}
	return reason, false
}

// release uncounts a closed connection.
func (l *Listener) release(c *conn) {
	l.mu.Lock()
	if c.reserve != "" {
		l.reserved--
	} else {
		l.total--
		if l.byIP[c.ip]--; l.byIP[c.ip] <= 0 {
			delete(l.byIP, c.ip)
		}
	}
	l.mu.Unlock()
	l.o.Metrics.open.WithLabelValues(l.o.Name).Dec()
}

// Open reports the connections open now (the reserve's included).
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total + l.reserved
}

// refuse answers a connection beyond the caps and the reserve with the
// canned 429 and closes it; when too many refusals are under way it is
// closed at once, so a flood cannot turn refusals into held descriptors.
func (l *Listener) refuse(nc net.Conn, ip, reason string) {
	l.o.Metrics.refused.WithLabelValues(l.o.Name, reason).Inc()
	l.logs.warn(reason, "connection refused", "listener", l.o.Name, "reason", reason, "remote", ip)
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = nc.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		_ = nc.SetWriteDeadline(time.Now().Add(lingerTime))
		if _, err := nc.Write(l.refusals[reason]); err != nil {
			_ = nc.Close()
			return
		}
		lingerClose(nc)
	}()
}

// lingerClose half-closes nc, reads what the client still sends for a
// moment, then closes it (see lingerTime).
func lingerClose(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, lingerBytes))
	_ = nc.Close()
}

// ConnState is the http.Server's ConnState hook: it tells a connection's
// read timeouts apart (headers, idle keep-alive).
func (l *Listener) ConnState(nc net.Conn, s http.ConnState) {
	if c, ok := nc.(*conn); ok {
		c.state.Store(int32(s))
		c.readSince.Store(0)
	}
}

// ConnContext is the http.Server's ConnContext hook: it lets a Guard find
// the connection of a request.
func (l *Listener) ConnContext(ctx context.Context, nc net.Conn) context.Context {
	if c, ok := nc.(*conn); ok {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

type connKey struct{}

func connOf(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

// conn is an admitted connection.
type conn struct {
	net.Conn
	l  *Listener
	ip string
	// reserve is the cap this reserve connection is beyond ("" for a
	// connection within the caps); until bounds every deadline it gets.
	reserve string
	until   time.Time

	state     atomic.Int32 // http.ConnState
	readSince atomic.Int64 // bytes read since the last state change
	cut       atomic.Bool  // a timeout was counted
	linger    atomic.Bool  // close gently: a body was left unread
	once      sync.Once
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.readSince.Add(int64(n))
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.timedOut()
	}
	return n, err
}

// timedOut counts a read timeout outside a request: waiting for headers
// or idle between requests. Timeouts in a request are the Guard's (body)
// or the HTTP server's own (aborting its background read).
func (c *conn) timedOut() {
	var reason string
	switch http.ConnState(c.state.Load()) {
	case http.StateNew:
		reason = ReasonHeaderTimeout
	case http.StateIdle:
		reason = ReasonIdleTimeout
		if c.readSince.Load() > 0 {
			reason = ReasonHeaderTimeout
		}
	default:
		return
	}
	if !c.cut.CompareAndSwap(false, true) {
		return
	}
	c.l.o.Metrics.cut.WithLabelValues(c.l.o.Name, reason).Inc()
	if reason == ReasonHeaderTimeout {
		c.l.logs.warn(reason, "connection cut", "listener", c.l.o.Name, "reason", reason, "remote", c.ip)
	}
}

// SetReadDeadline keeps a reserve connection within its bound.
func (c *conn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.bound(t)) }

// SetWriteDeadline keeps a reserve connection within its bound.
func (c *conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.bound(t)) }

// SetDeadline keeps a reserve connection within its bound.
func (c *conn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.bound(t)) }

func (c *conn) bound(t time.Time) time.Time {
	if c.reserve != "" && (t.IsZero() || t.After(c.until)) {
		return c.until
	}
	return t
}

// Close closes the connection once and uncounts it; one left with an
// unread body lingers in the background first (see lingerTime) and is
// uncounted when its descriptor is really gone.
func (c *conn) Close() error {
	c.once.Do(func() {
		if !c.linger.Load() {
			_ = c.Conn.Close()
			c.l.release(c)
			return
		}
		go func() {
			// Deadlines set here go straight to the socket: the reserve
			// bound must not shorten the linger.
			lingerClose(c.Conn)
			c.l.release(c)
		}()
	})
	return nil
}

// hostOf is the client address without its port.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
