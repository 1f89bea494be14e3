package h1client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestServerClosedIdleConnection(t *testing.T) {
	closeNext := make(chan struct{}, 1)
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			if _, _, ok := s.readReq(br); !ok {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			select {
			case <-closeNext: // the idle close of uvicorn or vLLM
				return
			default:
			}
		}
	})
	tr, _ := newTransport()
	closeNext <- struct{}{}
	resp, err := post(t, tr, context.Background(), s.url, "{}")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	waitClosedByPeer(t, tr, hostKey(strings.TrimPrefix(s.url, "http://")))
	resp, err = post(t, tr, context.Background(), s.url, "{}")
	if err != nil {
		t.Fatalf("call after the server closed the idle connection: %v", err)
	}
	if got := readAll(t, resp); got != "ok" {
		t.Fatalf("body: got %q, want ok", got)
	}
	if got := s.conns.Load(); got != 2 {
		t.Fatalf("connections: got %d, want 2", got)
	}
}

// waitClosedByPeer waits until the pooled connection to key sees the
// server's close (the FIN travels through the kernel's loopback) and puts
// it back.
func waitClosedByPeer(t *testing.T, tr *Transport, key string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		c := tr.pool.take(key)
		if c == nil {
			t.Fatal("no idle connection")
		}
		gone := !c.alive()
		tr.pool.put(c)
		if gone {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the server's close never reached the client")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A server that reads a request and closes without replying fails the
// call, on a new or a reused connection, and the request is not sent
// again: it may have run.
func TestClosedWithoutReplyIsNotRetried(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			req, _, ok := s.readReq(br)
			if !ok || req.URL.Path == "/drop" {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr, _ := newTransport()
	if _, err := post(t, tr, context.Background(), s.url+"/drop", "{}"); err == nil {
		t.Fatal("new connection closed without a reply: got no error")
	}
	resp, err := post(t, tr, context.Background(), s.url+"/ok", "{}")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	_, err = post(t, tr, context.Background(), s.url+"/drop", "{}")
	if err == nil || !strings.Contains(err.Error(), "read reply headers") {
		t.Fatalf("reused connection closed without a reply: got %v, want a read reply headers error", err)
	}
	if got := s.reqs.Load(); got != 3 {
		t.Fatalf("requests the server read: got %d, want 3 (none sent twice)", got)
	}
}

// failingConn fails its writes, with nothing written, once armed.
type failingConn struct {
	*net.TCPConn
	fail *atomic.Bool
}

func (c failingConn) Write(p []byte) (int, error) {
	if c.fail.CompareAndSwap(true, false) {
		return 0, errors.New("broken pipe (test)")
	}
	return c.TCPConn.Write(p)
}

// A request none of whose bytes could be written on a reused connection
// is sent once more, on a new one.
func TestNothingWrittenIsRetried(t *testing.T) {
	s := newRawServer(t, replyAll("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	var fail atomic.Bool
	var dials atomic.Int64
	tr, _ := newTransport()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return failingConn{c.(*net.TCPConn), &fail}, nil
	}
	for i := range 2 {
		if i == 1 {
			fail.Store(true)
		}
		resp, err := post(t, tr, context.Background(), s.url, `{"a":1}`)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got := readAll(t, resp); got != "ok" {
			t.Fatalf("body: got %q, want ok", got)
		}
	}
	if got := dials.Load(); got != 2 {
		t.Fatalf("dials: got %d, want 2", got)
	}
	if got := s.reqs.Load(); got != 2 {
		t.Fatalf("requests the server read: got %d, want 2", got)
	}
}

// Cancelling the request's context unblocks a call waiting for headers
// and a read waiting for the body, with the context's error, and the
// connection is not reused.
func TestCancel(t *testing.T) {
	gotReq := make(chan struct{}, 2)
	release := make(chan struct{})
	defer close(release)
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotReq <- struct{}{}
		if r.URL.Path == "/body" {
			w.Write([]byte("first"))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	tr, _ := newTransport()

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := post(t, tr, ctx, s.URL+"/headers", "{}")
		errc <- err
	}()
	<-gotReq
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled before headers: got %v, want context.Canceled", err)
		}
	case <-time.After(wait):
		t.Fatal("cancel did not unblock the wait for headers")
	}

	ctx, cancel2 := context.WithCancelCause(context.Background())
	resp, err := post(t, tr, ctx, s.URL+"/body", "{}")
	if err != nil {
		t.Fatal(err)
	}
	<-gotReq
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first bytes: got %q, %v", buf, err)
	}
	go func() { _, err := resp.Body.Read(buf); errc <- err }()
	cause := errors.New("the client left")
	cancel2(cause)
	select {
	case err := <-errc:
		if !errors.Is(err, cause) {
			t.Fatalf("cancelled mid-body: got %v, want the cause", err)
		}
	case <-time.After(wait):
		t.Fatal("cancel did not unblock the body read")
	}
	resp.Body.Close()
	if got := tr.pool.n; got != 0 {
		t.Fatalf("idle connections after cancels: got %d, want 0", got)
	}
}

// A body closed before its end closes the connection, without reading the
// rest (here an endless body).
func TestCloseBeforeEOF(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write(bytes.Repeat([]byte("x"), 1024)); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-release:
				return
			default:
			}
		}
	})
	tr, _ := newTransport()
	for range 2 {
		resp, err := post(t, tr, context.Background(), s.URL, "{}")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := resp.Body.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if err := resp.Body.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if _, err := resp.Body.Read(make([]byte, 10)); err == nil || err.Error() != errReadOnClosedBody.Error() {
			t.Fatalf("read after close: got %v, want %v", err, errReadOnClosedBody)
		}
	}
	if got := s.conns.Load(); got != 2 {
		t.Fatalf("connections: got %d, want 2 (a body closed early is not reused)", got)
	}
}

func TestIdleLimits(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) })
	tr, _ := newTransport()
	tr.MaxIdleConnsPerHost = 1
	// Two calls in flight at once, then both done: one connection is kept.
	r1, err := post(t, tr, context.Background(), s.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := post(t, tr, context.Background(), s.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, r1)
	readAll(t, r2)
	tr.pool.mu.Lock()
	n := tr.pool.n
	tr.pool.mu.Unlock()
	if n != 1 {
		t.Fatalf("idle connections with a per-host limit of 1: got %d, want 1", n)
	}
	tr.CloseIdleConnections()
	waitFor(t, "the server sees both connections closed", func() bool { return s.closed.Load() == 2 })

	tr.IdleConnTimeout = 20 * time.Millisecond
	resp, err := post(t, tr, context.Background(), s.URL, "{}")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	waitFor(t, "the idle timeout closes the connection", func() bool { return s.closed.Load() == 3 })
	tr.pool.mu.Lock()
	n, armed := tr.pool.n, tr.pool.armed
	tr.pool.mu.Unlock()
	if n != 0 || armed {
		t.Fatalf("pool after the timeout: got %d idle, timer armed %v, want 0 and false", n, armed)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for: %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A dial failure names the dial; a cancelled dial returns the context's
// error.
func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tr, _ := newTransport()
	_, err = post(t, tr, context.Background(), "http://"+addr, "{}")
	if err == nil || !strings.Contains(err.Error(), "h1client: dial") {
		t.Fatalf("dial to a closed port: got %v, want a dial error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = post(t, tr, ctx, "http://"+addr, "{}")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before the call: got %v, want context.Canceled", err)
	}
}

// FuzzReply feeds reply bytes from a raw server: the transport never
// panics or hangs, and it agrees with http.ReadResponse reading the same
// bytes (interim 1xx replies skipped as the transport skips them).
