package h1client

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// conn is one connection to a backend. Idle, it is the socket alone: its
// read buffer is taken from a pool when a round trip starts and given
// back when the reply's body ends.
type conn struct {
	t      *Transport
	nc     net.Conn
	raw    syscall.RawConn // for the idle check; nil when the conn has none
	key    string
	reused bool      // it served a request before this one
	idleAt time.Time // when it entered the pool

	br       *bufio.Reader // while a round trip runs
	limit    int64         // bytes reads may still take (the header bound)
	limitHit bool
	nwritten int64

	ctx       context.Context
	stop      func() bool // stops the cancellation hook
	interrupt func()      // c.cut, made once: no closure per request
	wasCut    atomic.Bool
	peekFn    func(fd uintptr) bool
	peekGone  bool
}

func (t *Transport) newConn(nc net.Conn, key string) *conn {
	c := &conn{t: t, nc: nc, key: key, limit: math.MaxInt64}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.peekFn = c.peek
		}
	}
	c.interrupt = c.cut
	return c
}

// Read reads from the socket within the header bound.
func (c *conn) Read(p []byte) (int, error) {
	if c.limit <= 0 {
		c.limitHit = true
		return 0, ErrHeadersTooLarge
	}
	if int64(len(p)) > c.limit {
		p = p[:c.limit]
	}
	n, err := c.nc.Read(p)
	c.limit -= int64(n)
	return n, err
}

// Write writes to the socket, counting what was written.
func (c *conn) Write(p []byte) (int, error) {
	n, err := c.nc.Write(p)
	c.nwritten += int64(n)
	return n, err
}

// armCancel makes the request's context end its I/O at once when it is
// cancelled: a deadline in the past wakes any read or write on the socket.
// It is a callback, not a goroutine per request.
func (c *conn) armCancel(ctx context.Context) {
	c.wasCut.Store(false)
	c.stop = nil
	if ctx.Done() != nil {
		c.stop = context.AfterFunc(ctx, c.interrupt)
	}
}

func (c *conn) cut() {
	c.wasCut.Store(true)
	_ = c.nc.SetDeadline(time.Unix(1, 0))
}

// cancelled is the context's cause once the hook has cut the connection:
// the error a round trip or a body read returns then, as http.Transport's
// (callers test it with errors.Is(err, context.Canceled)).
func (c *conn) cancelled() error {
	if !c.wasCut.Load() {
		return nil
	}
	return context.Cause(c.ctx)
}

// disarm stops the cancellation hook; false when it has already run.
func (c *conn) disarm() bool {
	if c.stop == nil {
		return !c.wasCut.Load()
	}
	ok := c.stop()
	c.stop = nil
	return ok
}

// wrapWriteErr marks a write that put no byte on the connection.
func (c *conn) wrapWriteErr(err error) error {
	if c.nwritten == 0 {
		return nothingWrittenError{err}
	}
	return err
}

// fail closes the connection after a failed round trip; a cancelled one
// returns the context's cause instead of the socket's timeout.
func (c *conn) fail(err error) error {
	c.disarm()
	cerr := c.cancelled()
	c.close()
	if cerr != nil {
		return cerr
	}
	return err
}

// done ends a round trip: the connection goes back to the pool when keep
// holds, nothing is left in its buffer and it was not cancelled.
func (c *conn) done(keep bool) {
	ok := c.disarm() && keep && c.br.Buffered() == 0
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
	c.ctx = nil
	if !ok {
		c.close()
		return
	}
	c.reused = true
	c.t.pool.put(c)
}

// abort closes the connection while a read may still use its buffer (a
// body closed before its end): the buffer is left to the collector.
func (c *conn) abort() {
	c.disarm()
	c.close()
}

func (c *conn) close() { _ = c.nc.Close() }

// getConn takes the most recently idle connection to key that the server
// has not closed, or dials one.
func (t *Transport) getConn(ctx context.Context, key string) (*conn, error) {
	for {
		c := t.pool.take(key)
		if c == nil {
			break
		}
		if c.alive() {
			return c, nil
		}
		c.close()
	}
	dial := t.DialContext
	if dial == nil {
		dial = defaultDialer.DialContext
	}
	nc, err := dial(ctx, "tcp", key)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("h1client: dial: %w", err)
	}
	return t.newConn(nc, key), nil
}

var defaultDialer net.Dialer

// alive reports whether an idle connection may carry a request: the server
// has not closed it (servers such as uvicorn close idle connections after a
// few seconds) and has sent nothing unasked. http.Transport learns this from
// its reader goroutine, blocked on the idle connection; here the socket is
// asked without blocking (a peek of one byte).
func (c *conn) alive() bool {
	if c.raw == nil {
		return true
	}
	c.peekGone = false
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	return !c.peekGone
}
