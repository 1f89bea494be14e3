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
