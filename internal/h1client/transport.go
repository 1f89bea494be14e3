// Package h1client is an HTTP/1.1 client transport for plain http://
// backends that runs each round trip in the calling goroutine.
//
// Go's http.Transport runs two goroutines per connection (a reader and a
// writer) and keeps a read and a write buffer for the connection's life;
// a round trip hands the request to one goroutine and the reply back from
// the other, and a body read to its end returns its connection to the
// idle pool asynchronously. Transport writes the request, reads the reply
// and returns the connection from the caller's goroutine, and a
// connection holds a buffer only while a round trip uses it
// (docs/design.md §6 "The upstream transport").
//
// The HTTP itself is Go's: requests are written by (*http.Request).Write
// and replies read by http.ReadResponse, the code http.Transport uses.
// Anything this transport does not do the same way — https, a proxy, a
// body of unknown length, Expect, Upgrade, trailers — goes to Fallback.
package h1client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Defaults of the zero fields of Transport.
const (
	// DefaultMaxResponseHeaderBytes bounds a reply's header block (and
	// its interim 1xx replies'), smaller than http.Transport's 10 MB: a
	// model backend's headers are a few hundred bytes, and a block past
	// 1 MB is a broken or hostile server, not a reply.
	DefaultMaxResponseHeaderBytes = 1 << 20
	readBufferSize                = 4 << 10 // http.Transport's default
	// writeBufferSize is the pooled request buffer: a request's headers
	// and a usual body go out in one write. It is held only while the
	// request is written, so it can be larger than http.Transport's 4 KB.
	writeBufferSize = 8 << 10
	// max1xxReplies is how many interim replies one request may get, as
	// http.Transport allows.
	max1xxReplies = 5
)

// Transport is an http.RoundTripper; its exported fields are read-only
// once it is in use.
type Transport struct {
	// Fallback serves every request Transport does not serve itself
	// (nil: http.DefaultTransport).
	Fallback http.RoundTripper
	// Proxy is consulted as http.Transport would (nil: no proxy); a
	// request that would go through a proxy goes to Fallback.
	Proxy func(*http.Request) (*url.URL, error)
	// DialContext opens connections (nil: a net.Dialer with defaults).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Idle pool limits, as http.Transport's (0: 100 total, 2 per host,
	// no timeout).
	MaxIdleConns        int
	MaxIdleConnsPerHost int
	IdleConnTimeout     time.Duration
	// MaxResponseHeaderBytes bounds a reply's headers (0: the default).
	MaxResponseHeaderBytes int64

	pool pool
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}
)

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.direct(req) {
		if t.Fallback == nil {
			return http.DefaultTransport.RoundTrip(req)
		}
		return t.Fallback.RoundTrip(req)
	}
	ctx := req.Context()
	key := hostKey(req.URL.Host)
	for retried := false; ; retried = true {
		if err := ctx.Err(); err != nil {
			closeBody(req)
			return nil, context.Cause(ctx)
		}
		c, err := t.getConn(ctx, key)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := c.roundTrip(ctx, req)
		if err == nil {
			return resp, nil
		}
		// Retry once, on a new connection, a request none of whose bytes
		// reached a connection the pool handed out: the server closed it
		// while it was idle, between the pool's check and the write. This
		// is http.Transport's rule for a POST (its nothingWrittenError);
		// a request written, even partly, is never sent again — a
		// non-idempotent call may have run (RFC 9110 §9.2.2).
		var nw nothingWrittenError
		if retried || !c.reused || !errors.As(err, &nw) || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
			return nil, err
		}
		if req, err = rewind(req); err != nil {
			return nil, err
		}
	}
}

// direct reports whether Transport serves req itself: plain http to a
// named host, no proxy, a body of known length, nothing that needs a
// second exchange or a chunked request.
func (t *Transport) direct(req *http.Request) bool {
	u := req.URL
	if u == nil || u.Scheme != "http" || u.Host == "" || req.Method == http.MethodConnect || !ascii(u.Host) {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.ContentLength <= 0 {
		return false // unknown length: written chunked
	}
	if len(req.TransferEncoding) != 0 || req.Trailer != nil || req.Cancel != nil {
		return false
	}
	h := req.Header
	if h["Expect"] != nil || h["Upgrade"] != nil {
		return false
	}
	if t.Proxy != nil {
		p, err := t.Proxy(req)
		if p != nil || err != nil {
			return false
		}
	}
	return true
}

// roundTrip sends req on c and reads the reply's headers. On success the
// reply's body owns c; on failure c is closed.
func (c *conn) roundTrip(ctx context.Context, req *http.Request) (*http.Response, error) {
	c.ctx = ctx
	c.armCancel(ctx)
	c.nwritten = 0
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		return nil, c.fail(fmt.Errorf("h1client: write request: %w", c.wrapWriteErr(err)))
	}
	c.br = readers.Get().(*bufio.Reader)
	c.br.Reset(c)
	resp, err := c.readReply(req)
	if err != nil {
		return nil, c.fail(err)
	}
	keep := !resp.Close && !wantsClose(req)
	if resp.Body == http.NoBody || req.Method == http.MethodHead {
		// No body to read: the connection is free now.
		if resp.Body != http.NoBody {
			resp.Body = http.NoBody
		}
		c.done(keep)
		return resp, nil
	}
	resp.Body = &body{rc: resp.Body, c: c, keep: keep}
	return resp, nil
}

// readReply reads the final reply's headers, skipping interim 1xx replies
// as http.Transport does; the headers are bounded by the transport's limit.
func (c *conn) readReply(req *http.Request) (*http.Response, error) {
	for range max1xxReplies + 1 {
		c.limit = c.t.maxHeaderBytes()
		resp, err := http.ReadResponse(c.br, req)
		c.limit = math.MaxInt64
		if err != nil {
			if c.limitHit {
				return nil, fmt.Errorf("h1client: read reply headers: %w", ErrHeadersTooLarge)
			}
			return nil, fmt.Errorf("h1client: read reply headers: %w", err)
		}
		code := resp.StatusCode
		if code == http.StatusSwitchingProtocols {
			return nil, errors.New("h1client: read reply headers: 101 Switching Protocols to a request without Upgrade")
		}
		if code >= 200 || code < 100 {
			return resp, nil
		}
	}
	return nil, fmt.Errorf("h1client: read reply headers: more than %d interim replies", max1xxReplies)
}

// ErrHeadersTooLarge is the error of a reply whose headers pass
// MaxResponseHeaderBytes.
var ErrHeadersTooLarge = errors.New("reply headers too large")

func (t *Transport) maxHeaderBytes() int64 {
	if t.MaxResponseHeaderBytes > 0 {
		return t.MaxResponseHeaderBytes
	}
	return DefaultMaxResponseHeaderBytes
}

// CloseIdleConnections closes the idle connections of Transport and of its
// fallback (http.Client calls it).
func (t *Transport) CloseIdleConnections() {
	t.pool.closeAll()
	if f, ok := t.Fallback.(interface{ CloseIdleConnections() }); ok {
		f.CloseIdleConnections()
	}
}

// nothingWrittenError marks a write that failed before any byte of the
// request reached the connection.
type nothingWrittenError struct{ error }

func (e nothingWrittenError) Unwrap() error { return e.error }

// rewind gives a request to send again its body anew.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	b, err := req.GetBody()
	if err != nil {
		return nil, fmt.Errorf("h1client: rewind request body: %w", err)
	}
	r := *req
	r.Body = b
	return &r, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// wantsClose reports whether the request asked for the connection to end.
func wantsClose(req *http.Request) bool {
	if req.Close {
		return true
	}
	for _, v := range req.Header["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "close") {
				return true
			}
		}
	}
	return false
}

// hostKey is the address a URL host is dialled at: host:port, port 80
// when none is given (the pool's key too).
func hostKey(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || i < strings.LastIndexByte(host, ']') {
		return host + ":80"
	}
	if i == len(host)-1 {
		return host + "80"
	}
	return host
}

// ascii reports whether s is ASCII: a host that is not goes to the
// fallback, which converts it to its IDNA form.
func ascii(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// errReadOnClosedBody is http.Transport's error for a read after Close.
var errReadOnClosedBody = errors.New("http: read on closed response body")

// body is a reply's body: at its end the connection goes back to the
// pool, in the reading goroutine; closed before its end, the connection
// is closed (the rest of a stream is not read for nothing).
type body struct {
	rc   io.ReadCloser // http.ReadResponse's body, reading from c's buffer
	c    *conn
	keep bool // the reply and the request allow another request

	mu     sync.Mutex
	ended  bool // the connection is released or closed
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	closed, ended := b.closed, b.ended
	b.mu.Unlock()
	if closed {
		return 0, errReadOnClosedBody
	}
	if ended {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == nil {
		return n, nil
	}
	if err == io.EOF {
		b.end(true)
		return n, io.EOF
	}
	if cerr := b.c.cancelled(); cerr != nil {
		err = cerr
	}
	b.end(false)
	return n, err
}

// end releases the connection once: to the pool after a clean EOF, else
// closed. A Close racing a read's end closes it.
func (b *body) end(eof bool) {
	b.mu.Lock()
	if b.ended {
		b.mu.Unlock()
		return
	}
	b.ended = true
	b.mu.Unlock()
	b.c.done(eof && b.keep)
}

// Close before the end closes the connection (http.Transport does the
// same); it does not read the rest. It may run while a Read waits: closing
// the connection ends that read.
func (b *body) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ended := b.ended
	b.ended = true
	b.mu.Unlock()
	if !ended {
		b.c.abort()
	}
	return nil
}
