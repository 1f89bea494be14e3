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
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
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
	// DefaultReserve connections beyond a cap may be open for Reserved
	// requests, so that a health probe gets through a flood.
	DefaultReserve = 16
	// DefaultReserveTimeout bounds a reserve connection's whole life.
	DefaultReserveTimeout = 2 * time.Second
	// refusers bounds the connections beyond a cap being read or refused,
	// and those closing lingering, at one time; past it a connection is
	// closed without an answer or linger, so none of this ever costs more
	// than this many descriptors.
	refusers = 128
	// lingerTime is how long a connection closed with an unread body, or
	// refused, keeps reading what the client still sends, so that the
	// close is a FIN after the answer and not a reset that could destroy
	// the answer in the client's buffer.
	lingerTime = 500 * time.Millisecond
	// lingerQuiet is the lull after which a lingering close stops reading.
	lingerQuiet = 50 * time.Millisecond
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
	// Reserved says which requests a connection beyond a cap may still
	// make (the health probe), by the method and path of its request
	// line; nil: none.
	Reserved func(method, path string) bool
	// Reserve is how many such connections may be open at once.
	// Negative: none; 0: DefaultReserve.
	Reserve int
	// ReserveTimeout bounds a connection beyond a cap: the time to send
	// its request line and, on the reserve, its whole life (default
	// DefaultReserveTimeout).
	ReserveTimeout time.Duration
	Metrics        *Metrics
	Logger         *slog.Logger
}

// Listener is a net.Listener that admits connections within its caps.
// The request line of a connection beyond a cap is read aside, by one of a
// bounded set of goroutines: a Reserved request goes to the HTTP server on
// the reserve, anything else gets a canned 429 with code 1302 and is
// closed. Past that bound a connection is closed at once. Accepting never
// waits for any of it, so a flood from one address cannot delay the
// connections of another.
type Listener struct {
	net.Listener
	o    Options
	logs *logLimiter

	ready chan net.Conn
	errc  chan error
	done  chan struct{}
	close sync.Once

	mu       sync.Mutex
	total    int
	byIP     map[string]int
	reserved int

	refusing chan struct{}     // slots of the connections beyond a cap and of lingering closes
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
		refusing: make(chan struct{}, refusers), refusals: map[string][]byte{},
		ready: make(chan net.Conn), errc: make(chan error), done: make(chan struct{})}
	for _, reason := range []string{ReasonMaxConns, ReasonMaxConnsPerIP} {
		l.refusals[reason] = cannedRefusal(reason)
	}
	go l.pump()
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

// Accept returns the next connection within the caps or on the reserve.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; open connections stay.
func (l *Listener) Close() error {
	err := net.ErrClosed
	l.close.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// pump accepts connections and sorts them: within the caps to Accept,
// beyond them to overflow.
func (l *Listener) pump() {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			// The HTTP server backs off on a temporary error before it
			// asks again, which paces this loop too.
			select {
			case l.errc <- err:
			case <-l.done:
				return
			}
			continue
		}
		ip := hostOf(nc.RemoteAddr())
		if reason := l.admit(ip); reason != "" {
			select {
			case l.refusing <- struct{}{}:
				go l.overflow(nc, ip, reason)
			default:
				l.refused(ip, reason, "closed")
				_ = nc.Close()
			}
			continue
		}
		l.hand(&conn{Conn: nc, l: l, ip: ip})
	}
}

// hand gives an admitted connection to Accept.
func (l *Listener) hand(c *conn) {
	l.o.Metrics.open.WithLabelValues(l.o.Name).Inc()
	select {
	case l.ready <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// overflow reads the request line of a connection beyond a cap: a
// Reserved request goes on the reserve, anything else is refused.
func (l *Listener) overflow(nc net.Conn, ip, reason string) {
	defer func() { <-l.refusing }()
	until := time.Now().Add(l.o.ReserveTimeout)
	_ = nc.SetReadDeadline(until)
	br := bufio.NewReaderSize(nc, 4<<10)
	line, err := br.ReadSlice('\n')
	if err != nil {
		// No request line in time (or too long): nothing to answer.
		l.refused(ip, reason, "closed")
		_ = nc.Close()
		return
	}
	method, rest, _ := strings.Cut(string(line), " ")
	path, _, _ := strings.Cut(rest, " ")
	path, _, _ = strings.Cut(path, "?")
	if l.o.Reserved != nil && l.o.Reserved(method, path) && l.takeReserve() {
		pre := make([]byte, len(line)+br.Buffered())
		n := copy(pre, line)
		_, _ = io.ReadFull(br, pre[n:])
		c := &conn{Conn: nc, l: l, ip: ip, reserve: reason, until: until, pre: pre}
		_ = nc.SetDeadline(until)
		l.hand(c)
		return
	}
	l.refused(ip, reason, "429")
	_ = nc.SetWriteDeadline(time.Now().Add(lingerTime))
	_, _ = nc.Write(l.refusals[reason])
	// No lingering: the request head is already out of the socket (in br),
	// so the close is a FIN after the answer, and the slot is free at once.
	_ = nc.Close()
}

// refused counts and logs a connection refused by a cap.
func (l *Listener) refused(ip, reason, how string) {
	l.o.Metrics.refused.WithLabelValues(l.o.Name, reason).Inc()
	l.logs.warn(reason, "connection refused", "listener", l.o.Name, "reason", reason, "remote", ip, "answer", how)
}

// admit counts a new connection from ip within the caps and returns "",
// or returns the cap it is beyond and counts nothing.
func (l *Listener) admit(ip string) (reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.o.MaxConns > 0 && l.total >= l.o.MaxConns:
		return ReasonMaxConns
	case l.o.MaxPerIP > 0 && l.byIP[ip] >= l.o.MaxPerIP:
		return ReasonMaxConnsPerIP
	}
	l.total++
	l.byIP[ip]++
	return ""
}

// takeReserve counts a connection on the reserve, when it has room.
func (l *Listener) takeReserve() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserved >= l.o.Reserve {
		return false
	}
	l.reserved++
	return true
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

// lingerClose half-closes nc, reads what the client still sends, then
// closes it (see lingerTime). It stops at the first lull of lingerQuiet:
// once the client has stopped sending, the receive buffer is empty and the
// close is a clean FIN; a client that never closes costs only the lull.
func lingerClose(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	end := time.Now().Add(lingerTime)
	buf := make([]byte, 4<<10)
	for read := 0; read < lingerBytes; {
		d := time.Now().Add(lingerQuiet)
		if d.After(end) {
			d = end
		}
		_ = nc.SetReadDeadline(d)
		n, err := nc.Read(buf)
		read += n
		if err != nil {
			break
		}
	}
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
	pre     []byte // bytes read before the HTTP server got the connection

	state     atomic.Int32 // http.ConnState
	readSince atomic.Int64 // bytes read since the last state change
	cut       atomic.Bool  // a timeout was counted
	linger    atomic.Bool  // close gently: a body was left unread
	once      sync.Once

	// The Guard's body deadline goes on the socket only when a read needs
	// the socket (deferReadDeadline): a small body arrives with its
	// headers, in the HTTP server's buffer, and then costs no deadline at
	// all (two timer updates per request otherwise). dl orders the
	// handler's reads, the server's background read and the deadline's
	// removal (clearDeferred), whichever goroutine comes first.
	dl       sync.Mutex
	deferred atomic.Bool // pending is set
	pending  time.Time   // the deadline the next socket read puts on
	armed    bool        // a read put pending on the socket
}

func (c *conn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	if c.deferred.Load() {
		c.arm()
	}
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

// deferReadDeadline makes t the read deadline of the socket from the next
// read that reaches it on, until clearDeferred or another read deadline.
func (c *conn) deferReadDeadline(t time.Time) {
	c.dl.Lock()
	c.pending, c.armed = t, false
	c.deferred.Store(true)
	c.dl.Unlock()
}

// arm puts a deferred deadline on the socket before a read.
func (c *conn) arm() {
	c.dl.Lock()
	if c.deferred.Load() {
		_ = c.Conn.SetReadDeadline(c.bound(c.pending))
		c.armed = true
		c.deferred.Store(false)
	}
	c.dl.Unlock()
}

// clearDeferred drops a deferred deadline, and lifts it from the socket if
// a read had put it on.
func (c *conn) clearDeferred() {
	c.dl.Lock()
	c.deferred.Store(false)
	if c.armed {
		c.armed = false
		_ = c.Conn.SetReadDeadline(c.bound(time.Time{}))
	}
	c.dl.Unlock()
}

// SetReadDeadline keeps a reserve connection within its bound. It replaces
// a deferred deadline.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.dl.Lock()
	defer c.dl.Unlock()
	c.deferred.Store(false)
	c.armed = false
	return c.Conn.SetReadDeadline(c.bound(t))
}

// SetWriteDeadline keeps a reserve connection within its bound.
func (c *conn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.bound(t)) }

// SetDeadline keeps a reserve connection within its bound. It replaces a
// deferred read deadline.
func (c *conn) SetDeadline(t time.Time) error {
	c.dl.Lock()
	defer c.dl.Unlock()
	c.deferred.Store(false)
	c.armed = false
	return c.Conn.SetDeadline(c.bound(t))
}

func (c *conn) bound(t time.Time) time.Time {
	if c.reserve != "" && (t.IsZero() || t.After(c.until)) {
		return c.until
	}
	return t
}

// Close closes the connection once and uncounts it. One left with an
// unread body lingers in the background (see lingerTime) when a lingering
// slot is free; lingering counts against the refusals' bound, not the
// caps, so that a flood of refused requests cannot fill the reserve.
func (c *conn) Close() error {
	c.once.Do(func() {
		c.l.release(c)
		if c.linger.Load() {
			select {
			case c.l.refusing <- struct{}{}:
				go func() {
					defer func() { <-c.l.refusing }()
					// Straight to the socket: the reserve bound must not
					// shorten the linger.
					lingerClose(c.Conn)
				}()
				return
			default:
			}
		}
		_ = c.Conn.Close()
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

// Name is the listener's label.
func (l *Listener) Name() string { return l.o.Name }
