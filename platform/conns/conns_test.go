package conns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// hangGuard bounds every wait of these tests: it is far above every bound
// they configure, so reaching it means the bound did not hold.
const hangGuard = 20 * time.Second

// served is an http.Server on loopback behind a Listener and a Guard, as
// cmd/glm builds each listener.
type served struct {
	addr string
	ln   *Listener
	reg  *prometheus.Registry
}

func serve(t *testing.T, o Options, g GuardOptions, h http.Handler) *served {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o.Name, o.Metrics, o.Logger = "public", m, log
	g.Name, g.Metrics, g.Logger = "public", m, log
	ln := Listen(raw, o)
	srv := &http.Server{Handler: NewGuard(h, g), ReadHeaderTimeout: 5 * time.Second,
		ConnState: ln.ConnState, ConnContext: ln.ConnContext}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &served{addr: raw.Addr().String(), ln: ln, reg: reg}
}

// count reads one series of the registry (0 when absent).
func (s *served) count(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// dial opens a raw connection and sends head (and whatever follows it).
func dial(t *testing.T, addr, head string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if head != "" {
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// answer reads one HTTP answer and then waits for the server to close
// the connection; closed is false when it stayed open past hangGuard.
func answer(t *testing.T, c net.Conn) (resp *http.Response, body string, closed bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer's body: %v", err)
	}
	_, err = br.ReadByte()
	return resp, string(b), errors.Is(err, io.EOF)
}

const silentPost = "POST /api/paas/v4/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"

// refuse401 answers without reading the body, as an auth failure does.
var refuse401 = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, `{"error":{"code":"1001"}}`)
})

// A request answered without reading its body gets the answer at once and
// the connection closed, while the body never comes; the body deadline is
// far away, so it is not what ends the wait.
func TestGuardUnreadBodyAnswersAndCloses(t *testing.T) {
	s := serve(t, Options{}, GuardOptions{BodyTimeout: time.Hour}, refuse401)
	for _, head := range []string{silentPost,
		// Half of the body sent: the rest of it is not waited for either.
		silentPost + strings.Repeat("x", 500)} {
		c := dial(t, s.addr, head)
		resp, _, closed := answer(t, c)
		if resp.StatusCode != 401 || !closed {
			t.Errorf("got status %d closed %v, want 401 and the connection closed", resp.StatusCode, closed)
		}
	}
	if got := s.count(t, "glm_conns_cut_total", map[string]string{"reason": ReasonUnreadBody}); got != 2 {
		t.Errorf("got %v unread_body cuts, want 2", got)
	}
}

// A body that stops arriving fails the handler's read with a deadline
// error after BodyTimeout; its answer goes out and the connection closes.
func TestGuardBodyTimeout(t *testing.T) {
	var readErr atomic.Value
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr.Store(fmt.Sprint(errors.Is(err, os.ErrDeadlineExceeded)))
		w.WriteHeader(http.StatusRequestTimeout)
	})
	s := serve(t, Options{}, GuardOptions{BodyTimeout: 200 * time.Millisecond}, h)
	c := dial(t, s.addr, silentPost+"{")
	resp, _, closed := answer(t, c)
	if resp.StatusCode != 408 || !closed || readErr.Load() != "true" {
		t.Errorf("got status %d closed %v deadline error %v, want 408, closed, true", resp.StatusCode, closed, readErr.Load())
	}
	if got := s.count(t, "glm_conns_cut_total", map[string]string{"reason": ReasonBodyTimeout}); got != 1 {
		t.Errorf("got %v body_timeout cuts, want 1", got)
	}
	if got := s.count(t, "glm_conns_cut_total", map[string]string{"reason": ReasonUnreadBody}); got != 0 {
		t.Errorf("got %v unread_body cuts, want 0 (the body timed out)", got)
	}
}

// A body that arrived in full lifts the deadline: a handler that runs past
// it (a long stream) is not cut, and the connection stays for the next
// request.
func TestGuardBodyReadKeepsConnection(t *testing.T) {
	const timeout = 100 * time.Millisecond
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(3 * timeout)
		if r.Context().Err() != nil {
			w.WriteHeader(http.StatusGone)
			return
		}
		io.WriteString(w, string(b))
	})
	s := serve(t, Options{}, GuardOptions{BodyTimeout: timeout}, h)
	c := dial(t, s.addr, "")
	br := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprintf(c, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
		_ = c.SetReadDeadline(time.Now().Add(hangGuard))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "hi" {
			t.Fatalf("request %d: got %d %q, want 200 \"hi\"", i, resp.StatusCode, b)
		}
	}
}

// Connections beyond the caps, with no reserve, get the canned 429 with
// 1302 and are closed; closing one makes room again.
func TestListenerCaps(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	for _, c := range []struct {
		name   string
		o      Options
		reason string
	}{
		{"per-ip", Options{MaxPerIP: 2, Reserve: -1}, ReasonMaxConnsPerIP},
		{"total", Options{MaxConns: 2, Reserve: -1}, ReasonMaxConns},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := serve(t, c.o, GuardOptions{}, ok)
			held := []net.Conn{dial(t, s.addr, ""), dial(t, s.addr, "")}
			waitFor(t, "two connections open", func() bool { return s.ln.Open() == 2 })
			extra := dial(t, s.addr, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, body, closed := answer(t, extra)
			if resp.StatusCode != 429 || !strings.Contains(body, `"1302"`) || !closed {
				t.Errorf("got %d %s closed %v, want 429 with 1302 and closed", resp.StatusCode, body, closed)
			}
			if got := s.count(t, "glm_conns_refused_total", map[string]string{"reason": c.reason}); got != 1 {
				t.Errorf("got %v refusals for %s, want 1", got, c.reason)
			}
			held[0].Close()
			waitFor(t, "a connection closed", func() bool { return s.ln.Open() == 1 })
			again := dial(t, s.addr, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if resp, body, _ := answer(t, again); resp.StatusCode != 200 || body != "ok" {
				t.Errorf("after a close: got %d %q, want 200 ok", resp.StatusCode, body)
			}
		})
	}
}

// A connection beyond a cap is served when it asks for the reserved
// request, the health probe, once; anything else gets 429 with 1302.
func TestListenerReserve(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	s := serve(t, Options{MaxPerIP: 1, Reserve: 4, ReserveTimeout: 300 * time.Millisecond,
		Reserved: func(method, path string) bool { return method == "GET" && path == "/healthz" }},
		GuardOptions{BodyTimeout: time.Hour}, ok)
	dial(t, s.addr, "")
	waitFor(t, "one connection open", func() bool { return s.ln.Open() == 1 })
	health := dial(t, s.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body, closed := answer(t, health); resp.StatusCode != 200 || body != "ok" || !closed {
		t.Errorf("health on the reserve: got %d %q closed %v, want 200 ok and closed", resp.StatusCode, body, closed)
	}
	post := dial(t, s.addr, silentPost)
	if resp, body, closed := answer(t, post); resp.StatusCode != 429 || !strings.Contains(body, `"1302"`) || !closed {
		t.Errorf("POST on the reserve: got %d %s closed %v, want 429 with 1302 and closed", resp.StatusCode, body, closed)
	}
	// A connection beyond the cap that sends nothing is closed within its
	// bound.
	silent := dial(t, s.addr, "")
	_ = silent.SetReadDeadline(time.Now().Add(hangGuard))
	if _, err := silent.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("silent reserve connection: got %v, want EOF (closed by the server)", err)
	}
}

// A connection that never completes its headers is cut by the server's
// header timeout and counted as such.
func TestListenerCountsHeaderTimeout(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	ln := Listen(raw, Options{Name: "public", Metrics: NewMetrics(reg), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 100 * time.Millisecond, ConnState: ln.ConnState}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	s := &served{addr: raw.Addr().String(), ln: ln, reg: reg}
	c := dial(t, s.addr, "GET / HTTP/1.1\r\nHost")
	_ = c.SetReadDeadline(time.Now().Add(hangGuard))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("got %v, want the server to close the connection", err)
	}
	waitFor(t, "the connection released", func() bool { return ln.Open() == 0 })
	if got := s.count(t, "glm_conns_cut_total", map[string]string{"reason": ReasonHeaderTimeout}); got != 1 {
		t.Errorf("got %v header_timeout cuts, want 1", got)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(hangGuard); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
