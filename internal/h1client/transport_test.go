package h1client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wait is the generous bound a test waits for something that should be
// prompt; it guards against a hang, it does not measure speed.
const wait = 10 * time.Second

// countingServer is an httptest server counting the connections made to it.
type countingServer struct {
	*httptest.Server
	conns  atomic.Int64
	closed atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{Server: httptest.NewUnstartedServer(h)}
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closed.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// recorder is a fallback that records the requests handed to it.
type recorder struct{ n atomic.Int64 }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n.Add(1)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: http.StatusTeapot, Body: http.NoBody, Request: req}, nil
}

func newTransport() (*Transport, *recorder) {
	f := &recorder{}
	return &Transport{Fallback: f, MaxIdleConns: 16, MaxIdleConnsPerHost: 8}, f
}

func post(t *testing.T, tr http.RoundTripper, ctx context.Context, u, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return tr.RoundTrip(req)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatalf("close body: %v", err)
	}
	return string(b)
}

// Content-Length and chunked replies (with trailers) arrive whole, with
// the fields http.ReadResponse sets, and the one connection serves them all.
func TestRepliesAndReuse(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/chunked" {
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("part1 "))
			w.(http.Flusher).Flush()
			fmt.Fprintf(w, "echo %s", b)
			w.Header().Set("X-Sum", "42")
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)+5))
		fmt.Fprintf(w, "echo %s", b)
	})
	tr, fb := newTransport()
	for i := range 10 {
		resp, err := post(t, tr, context.Background(), s.URL+"/fixed", fmt.Sprintf(`{"n":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := readAll(t, resp), fmt.Sprintf(`echo {"n":%d}`, i); got != want {
			t.Fatalf("fixed body: got %q, want %q", got, want)
		}
		if resp.ContentLength != int64(len(fmt.Sprintf(`echo {"n":%d}`, i))) || resp.Status != "200 OK" || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.Close {
			t.Fatalf("fixed reply fields: got %d %q %s close=%v", resp.ContentLength, resp.Status, resp.Proto, resp.Close)
		}
		resp, err = post(t, tr, context.Background(), s.URL+"/chunked", "x")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := readAll(t, resp), "part1 echo x"; got != want {
			t.Fatalf("chunked body: got %q, want %q", got, want)
		}
		if got := resp.Trailer.Get("X-Sum"); got != "42" {
			t.Fatalf("trailer X-Sum: got %q, want 42", got)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" || resp.ContentLength != -1 {
			t.Fatalf("chunked reply fields: got %v %d", resp.TransferEncoding, resp.ContentLength)
		}
		if resp.Request == nil || resp.Request.URL.Path != "/chunked" {
			t.Fatalf("resp.Request: got %v", resp.Request)
		}
	}
	if got := s.conns.Load(); got != 1 {
		t.Fatalf("20 sequential calls opened %d connections, want 1", got)
	}
	if got := fb.n.Load(); got != 0 {
		t.Fatalf("fallback served %d requests, want 0", got)
	}
}

// rawServer accepts connections and runs handle on each: a server that
// misbehaves on purpose.
type rawServer struct {
	ln    net.Listener
	url   string
	conns atomic.Int64
	reqs  atomic.Int64
}

func newRawServer(t *testing.T, handle func(s *rawServer, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, url: "http://" + ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close() // ends handlers waiting on a client's idle connection
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			s.conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				handle(s, c, bufio.NewReader(c))
			})
		}
	})
	return s
}

// readReq reads one request and its body; false when the client is gone.
func (s *rawServer) readReq(br *bufio.Reader) (*http.Request, []byte, bool) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, false
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, nil, false
	}
	s.reqs.Add(1)
	return req, b, true
}

// replyAll serves every request on a connection with reply.
func replyAll(reply string) func(*rawServer, net.Conn, *bufio.Reader) {
	return func(s *rawServer, c net.Conn, br *bufio.Reader) {
		for {
			if _, _, ok := s.readReq(br); !ok {
				return
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	}
}

// Replies that end their connection: close-delimited, Connection: close,
// HTTP/1.0. Each is read whole; the next call dials again.
func TestRepliesThatEndTheConnection(t *testing.T) {
	cases := []struct{ name, reply, body string }{
		{"close-delimited", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", "until the end"},
		{"connection-close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok"},
		{"http-1.0", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", "old"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newRawServer(t, func(s *rawServer, conn net.Conn, br *bufio.Reader) {
				if _, _, ok := s.readReq(br); ok {
					io.WriteString(conn, c.reply)
				}
			})
			tr, _ := newTransport()
			for range 2 {
				resp, err := post(t, tr, context.Background(), s.url, "{}")
				if err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, resp); got != c.body {
					t.Fatalf("body: got %q, want %q", got, c.body)
				}
				if !resp.Close {
					t.Fatalf("resp.Close: got false, want true")
				}
			}
			if got := s.conns.Load(); got != 2 {
				t.Fatalf("connections: got %d, want 2", got)
			}
			if got := tr.pool.n; got != 0 {
				t.Fatalf("idle connections: got %d, want 0", got)
			}
		})
	}
}

// Interim 1xx replies are skipped; the final reply is returned.
func TestInterimRepliesSkipped(t *testing.T) {
	s := newRawServer(t, replyAll("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"))
	tr, _ := newTransport()
	for range 2 {
		resp, err := post(t, tr, context.Background(), s.url, "{}")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("status: got %d, want 201", resp.StatusCode)
		}
		if got := readAll(t, resp); got != "done" {
			t.Fatalf("body: got %q, want done", got)
		}
	}
	if got := s.conns.Load(); got != 1 {
		t.Fatalf("connections: got %d, want 1", got)
	}
}

// An idle connection the server closed is found before a request is sent
// on it: the call dials instead and succeeds.
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

// Many goroutines share the transport (run with -race).
func TestConcurrentUse(t *testing.T) {
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	tr, _ := newTransport()
	tr.MaxIdleConnsPerHost = 16 // every goroutine's connection fits
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				want := fmt.Sprintf(`{"g":%d,"i":%d}`, g, i)
				resp, err := post(t, tr, context.Background(), s.URL, want)
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != want {
					errs <- fmt.Errorf("got %q, %v, want %q", b, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := s.conns.Load(); got > 16 {
		t.Fatalf("connections: got %d, want at most 16", got)
	}
}

// https, a proxy, a body of unknown length, Expect and Upgrade go to the
// fallback; plain http does not.
func TestFallback(t *testing.T) {
	tr, fb := newTransport()
	tr.Proxy = func(r *http.Request) (*url.URL, error) {
		if r.URL.Host == "proxied.example:80" || r.URL.Host == "proxied.example" {
			return url.Parse("http://proxy.example:3128")
		}
		return nil, nil
	}
	reqs := map[string]func() *http.Request{
		"https": func() *http.Request {
			r, _ := http.NewRequest("POST", "https://open.bigmodel.cn/x", strings.NewReader("{}"))
			return r
		},
		"proxy": func() *http.Request {
			r, _ := http.NewRequest("POST", "http://proxied.example/x", strings.NewReader("{}"))
			return r
		},
		"unknown length": func() *http.Request {
			r, _ := http.NewRequest("POST", "http://127.0.0.1:1/x", io.MultiReader(strings.NewReader("{}")))
			return r
		},
		"expect": func() *http.Request {
			r, _ := http.NewRequest("POST", "http://127.0.0.1:1/x", strings.NewReader("{}"))
			r.Header.Set("Expect", "100-continue")
			return r
		},
		"upgrade": func() *http.Request {
			r, _ := http.NewRequest("GET", "http://127.0.0.1:1/x", nil)
			r.Header.Set("Upgrade", "websocket")
			return r
		},
	}
	for name, mk := range reqs {
		before := fb.n.Load()
		resp, err := tr.RoundTrip(mk())
		if err != nil || resp.StatusCode != http.StatusTeapot || fb.n.Load() != before+1 {
			t.Fatalf("%s: got %v %v, want the fallback's reply", name, resp, err)
		}
	}
	s := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	resp, err := post(t, tr, context.Background(), s.URL, "{}")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("plain http: got %v %v, want 200 from the server", resp, err)
	}
	if got := fb.n.Load(); got != int64(len(reqs)) {
		t.Fatalf("fallback calls: got %d, want %d", got, len(reqs))
	}
}

// A reply whose headers pass the bound is refused, not read on.
func TestOversizedHeadersRefused(t *testing.T) {
	big := strings.Repeat("a", 8<<10)
	s := newRawServer(t, replyAll("HTTP/1.1 200 OK\r\nX-Big: "+big+"\r\nContent-Length: 0\r\n\r\n"))
	tr, _ := newTransport()
	tr.MaxResponseHeaderBytes = 4 << 10
	_, err := post(t, tr, context.Background(), s.url, "{}")
	if !errors.Is(err, ErrHeadersTooLarge) {
		t.Fatalf("8 KB of headers past a 4 KB bound: got %v, want ErrHeadersTooLarge", err)
	}
	tr.MaxResponseHeaderBytes = 0 // the 1 MB default takes them
	resp, err := post(t, tr, context.Background(), s.url, "{}")
	if err != nil || len(resp.Header.Get("X-Big")) != len(big) {
		t.Fatalf("8 KB of headers under the default bound: got %v", err)
	}
}

// The backend receives what Go's transport sends, less Accept-Encoding:
// gzip (replies are not decompressed on the direct path).
func TestWireMatchesGoTransport(t *testing.T) {
	raw := make(chan []byte, 2)
	s := newRawServer(t, func(s *rawServer, c net.Conn, br *bufio.Reader) {
		var got bytes.Buffer
		tee := bufio.NewReader(io.TeeReader(br, &got))
		if _, _, ok := s.readReq(tee); !ok {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		raw <- got.Bytes()
	})
	send := func(rt http.RoundTripper) []byte {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/paas/v4/chat/completions?x=1", strings.NewReader(`{"model":"glm-4"}`))
		req.Header["Content-Type"] = []string{"application/json; charset=UTF-8"}
		req.Header["Accept"] = []string{"text/event-stream"}
		req.Header["Authorization"] = []string{"Bearer id.secret"}
		resp, err := (&http.Client{Transport: rt}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, resp)
		select {
		case b := <-raw:
			return b
		case <-time.After(wait):
			t.Fatal("the server saw no request")
			return nil
		}
	}
	tr, _ := newTransport()
	got := send(tr)
	want := send(&http.Transport{})
	want = bytes.Replace(want, []byte("Accept-Encoding: gzip\r\n"), nil, 1)
	if !bytes.Equal(got, want) {
		t.Fatalf("request bytes:\n got %q\nwant %q", got, want)
	}
}

// Idle connections are closed after IdleConnTimeout and by
// CloseIdleConnections; over MaxIdleConnsPerHost they are not kept.
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
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n2\r\nok\r\n0\r\nX: y\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
		"HTTP/1.0 404 Not Found\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
		"garbage",
	} {
		f.Add([]byte(s))
	}
	replies := make(chan []byte)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			data := <-replies
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				c.Write(data)
			}()
		}
	}()
	u := "http://" + ln.Addr().String()
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantBody, wantErr := reference(data)
		tr, _ := newTransport()
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		errc := make(chan error, 1)
		var resp *http.Response
		go func() {
			var err error
			resp, err = tr.RoundTrip(req)
			errc <- err
		}()
		replies <- data
		err := <-errc
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("headers: got error %v, ReadResponse's %v", err, wantErr)
		}
		if err != nil {
			return
		}
		body, berr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ctx.Err() != nil {
			t.Fatal("the round trip hung")
		}
		if resp.StatusCode != want.StatusCode || !bytes.Equal(body, wantBody.b) || (berr != nil) != (wantBody.err != nil) {
			t.Fatalf("got %d %q %v, ReadResponse %d %q %v", resp.StatusCode, body, berr, want.StatusCode, wantBody.b, wantBody.err)
		}
	})
}

type bodyRead struct {
	b   []byte
	err error
}

// reference reads data as http.ReadResponse does, skipping 1xx replies.
func reference(data []byte) (*http.Response, bodyRead, error) {
	br := bufio.NewReader(bytes.NewReader(data))
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	for range max1xxReplies + 1 {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, bodyRead{}, err
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, bodyRead{}, errors.New("101")
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			b, err := io.ReadAll(resp.Body)
			return resp, bodyRead{b, err}, nil
		}
	}
	return nil, bodyRead{}, errors.New("too many 1xx")
}
