package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// connHang guards every wait of these tests against a hang; it is far
// above every bound they configure and asserts no speed.
const connHang = 20 * time.Second

// rawExchange sends head on a new connection to base's host, reads one
// answer, and reports whether the server then closed the connection.
func rawExchange(t *testing.T, base, head string) (status int, code string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(connHang))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer to %.60q: %v", head, err)
	}
	b, _ := io.ReadAll(resp.Body)
	var env zhipuai.ErrorEnvelope
	_ = json.Unmarshal(b, &env)
	_, err = br.ReadByte()
	return resp.StatusCode, string(env.Error.Code), errors.Is(err, io.EOF)
}

// silentPost is complete request headers whose 1000-byte body never comes.
func silentPost(path, authz string) string {
	h := "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
	if authz != "" {
		h += "Authorization: Bearer " + authz + "\r\n"
	}
	return h + "\r\n"
}

// A client that sends headers and then no body gets an answer and a closed
// connection: at once when the headers are enough to refuse it (no key, a
// bad key, the admin API, an unknown path), after --body-timeout when it
// is authenticated.
func TestServeSilentBodyIsBounded(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := startInProcess(t, data, writeConfig(t, dir, up), "--body-timeout", "300ms")
	chat := "/api/paas/v4/chat/completions"
	for _, c := range []struct {
		name, path, authz string
		status            int
		code              string
	}{
		{"no key", chat, "", 401, platform.CodeNoAuth},
		{"bad key", chat, "nope.nope", 401, ""},
		{"admin API without token", "/admin/v1/accounts", "", 401, platform.CodeNoAuth},
		{"admin API with a bad token", "/admin/v1/accounts", "nope", 401, platform.CodeInvalidToken},
		{"unknown path", "/nowhere", "", 404, platform.CodeAPINotFound},
		{"valid key", chat, s.key, 408, platform.CodeBadParams},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, code, closed := rawExchange(t, s.base, silentPost(c.path, c.authz))
			if status != c.status || (c.code != "" && code != c.code) || !closed {
				t.Errorf("got %d %s closed %v, want %d %s and the connection closed", status, code, closed, c.status, c.code)
			}
		})
	}
	want := `glm_conns_cut_total{listener="public",reason="body_timeout"} 1`
	if _, m := status(t, "GET", s.base+"/metrics", ""); !strings.Contains(m, want) {
		t.Errorf("metrics lack %s", want)
	}
}

// 2,000 connections from one address, each holding complete
// headers and no body, neither exhaust the server nor keep /healthz from
// answering: beyond --max-conns-per-ip they are refused at once (429 with
// 1302, or a close), and the health probe gets through on the reserve.
func TestServeConnectionFloodKeepsHealth(t *testing.T) {
	up := zhipuaitest.NewServer()
	defer up.Close()
	dir := t.TempDir()
	s := startInProcess(t, filepath.Join(dir, "data"), writeConfig(t, dir, up),
		"--max-conns-per-ip", "64", "--body-timeout", "1m")
	const flood = 2000
	held := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	head := silentPost("/api/paas/v4/chat/completions", s.key)
	for range flood {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		_, _ = io.WriteString(c, head)
		held = append(held, c)
	}
	// The last connection of the flood got the 429 envelope (or, past the
	// refusals under way, a plain close), never a hang: the server has
	// seen the whole flood.
	last := held[len(held)-1]
	_ = last.SetReadDeadline(time.Now().Add(connHang))
	b, err := io.ReadAll(last)
	if err != nil && !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("the last flood connection: got %v, want an answer or a close", err)
	}
	if len(b) > 0 && (!strings.HasPrefix(string(b), "HTTP/1.1 429") || !strings.Contains(string(b), `"1302"`)) {
		t.Fatalf("the last flood connection got %q, want 429 with 1302", b)
	}
	for i := range 3 {
		resp, err := http.Get(s.base + "/healthz")
		if err != nil {
			t.Fatalf("healthz %d during the flood: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
			t.Fatalf("healthz %d during the flood: got %d %s, want 200", i, resp.StatusCode, b)
		}
	}
	// Once the flood is gone the server serves everything again, and its
	// metrics count the refusals.
	for _, c := range held {
		c.Close()
	}
	poll(t, "the refusals counted on /metrics", func() bool {
		resp, err := http.Get(s.base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		m, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(m), `glm_conns_refused_total{listener="public",reason="max_conns_per_ip"}`)
	})
}

// A stream whose client stops reading does not hold the shutdown past the
// drain timeout: every connection is closed, the process part returns,
// and the request is settled and logged once.
func TestServeShutdownCutsNonReadingStream(t *testing.T) {
	upstreamGone := make(chan struct{})
	var once sync.Once
	text := strings.Repeat("x", 8<<10)
	flood := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream;charset=UTF-8")
		sw := sse.NewWriter(w)
		for r.Context().Err() == nil {
			if sw.WriteData(fmt.Appendf(nil, `{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":%q}}]}`, text)) != nil {
				break
			}
		}
		once.Do(func() { close(upstreamGone) })
	}))
	defer flood.Close()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "backends.json")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `{"backends":[{"name":"flood","type":"zhipu","base_url":%q,"api_key":"0123456789abcdef0123456789abcdef.abcdefghijklmnop","models":["glm-4"]}]}`,
		flood.URL+"/api/paas/v4"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The write timeout is far away: only the drain may end this stream.
	s := startInProcess(t, data, cfg, "--drain-timeout", "300ms", "--write-timeout", "1h")
	c, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
	body := `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(c, "POST /api/paas/v4/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		s.key, len(body), body)
	// Wait until the stream is under way (the first bytes are in), then
	// stop reading and shut down.
	_ = c.SetReadDeadline(time.Now().Add(connHang))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("no stream: %v", err)
	}
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(connHang):
		t.Fatal("the shutdown waited for the client that does not read")
	}
	select {
	case <-upstreamGone:
	case <-time.After(connHang):
		t.Fatal("the upstream stream was not cancelled")
	}
	rows, err := openData(t, data).ListRequestLogs(context.Background(), platform.RequestLogFilter{})
	if err != nil || len(rows) != 1 || !rows[0].Estimated || rows[0].Usage.CompletionTokens < 1 {
		t.Fatalf("got rows %+v (%v), want one row settled on the estimate of what was relayed", rows, err)
	}
}
