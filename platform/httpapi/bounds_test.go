package httpapi

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/conns"
	"github.com/glmkit/glmkit/platform/router"
	"github.com/glmkit/glmkit/zhipuai"
)

// guarded serves the env's root behind a conns.Listener and Guard, as
// glm serve's listeners are built, and returns the address.
func (e *env) guarded(g conns.GuardOptions) string {
	e.t.Helper()
	srv := httptest.NewUnstartedServer(conns.NewGuard(e.root, g))
	ln := conns.Listen(srv.Listener, conns.Options{})
	srv.Listener = ln
	srv.Config.ConnContext = ln.ConnContext
	srv.Config.ConnState = ln.ConnState
	srv.Start()
	e.t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// rawAnswer sends head on a new connection, reads one answer and reports
// whether the server then closed the connection. The read deadline only
// guards against a hang.
func rawAnswer(t *testing.T, addr, head string) (status int, env zhipuai.ErrorEnvelope, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("answer %d %s is no envelope: %v", resp.StatusCode, b, err)
	}
	_, err = br.ReadByte()
	return resp.StatusCode, env, errors.Is(err, io.EOF)
}

// silentHead is complete request headers whose body never comes.
func silentHead(path, authz string) string {
	h := "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n"
	if authz != "" {
		h += "Authorization: " + authz + "\r\n"
	}
	return h + "\r\n"
}

// Requests refused from their headers alone (no key, a bad key, an unknown
// path) are answered at once and their connection closed, though the body
// never comes and the body timeout is an hour away.
func TestRefusalsDoNotWaitForTheBody(t *testing.T) {
	e := newEnv(t)
	addr := e.guarded(conns.GuardOptions{BodyTimeout: time.Hour})
	for _, c := range []struct {
		name, path, authz string
		status            int
		code              string
	}{
		{"no key", DefaultPrefix + "/chat/completions", "", 401, platform.CodeNoAuth},
		{"bad key", DefaultPrefix + "/chat/completions", "Bearer nope.nope", 401, ""},
		{"unknown path", "/nowhere", "", 404, platform.CodeAPINotFound},
		{"wrong method", DefaultPrefix + "/models", "", 405, platform.CodeAPINotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, env, closed := rawAnswer(t, addr, silentHead(c.path, c.authz))
			if status != c.status || (c.code != "" && string(env.Error.Code) != c.code) || !closed {
				t.Errorf("got %d %s closed %v, want %d %s and the connection closed", status, env.Error.Code, closed, c.status, c.code)
			}
		})
	}
}

// With a valid key the body is waited for, up to the body timeout: then
// the answer is 408 with 1210, the connection is closed and the request
// is logged once.
func TestBodyTimeoutAnswers408(t *testing.T) {
	e := newEnv(t)
	addr := e.guarded(conns.GuardOptions{BodyTimeout: 200 * time.Millisecond})
	status, env, closed := rawAnswer(t, addr, silentHead(DefaultPrefix+"/chat/completions", "Bearer "+e.key.Full())+`{"model"`)
	if status != http.StatusRequestTimeout || string(env.Error.Code) != platform.CodeBadParams || !closed {
		t.Fatalf("got %d %s closed %v, want 408 1210 and the connection closed", status, env.Error.Code, closed)
	}
	var rows []platform.RequestLog
	waitFor(t, "the request-log row", func() bool { rows = e.logs(); return len(rows) > 0 })
	if len(rows) != 1 || rows[0].HTTPStatus != 408 || rows[0].ErrorCode != platform.CodeBadParams {
		t.Fatalf("got rows %+v, want one 408 row with 1210", rows)
	}
}

// floodUpstream streams big chunks without end until its client goes.
type floodUpstream struct {
	*httptest.Server
	cancelled chan struct{}
	once      sync.Once
}

func newFloodUpstream(t *testing.T) *floodUpstream {
	u := &floodUpstream{cancelled: make(chan struct{})}
	text := strings.Repeat("x", 8<<10)
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", contentSSE)
		sw := sse.NewWriter(w)
		for r.Context().Err() == nil {
			ev := fmt.Sprintf(`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":%q}}]}`, text)
			if sw.WriteData([]byte(ev)) != nil {
				break
			}
		}
		u.once.Do(func() { close(u.cancelled) })
	}))
	t.Cleanup(u.Close)
	return u
}

// A stream client that stops reading is cut after the write timeout: the
// upstream is cancelled, the request is settled as a client that left
// (499, estimated usage) and the cut is counted as write_timeout.
func TestStreamWriteTimeoutCutsNonReader(t *testing.T) {
	up := newFloodUpstream(t)
	e := newEnv(t, func(c *proxyConfig, o *Options, _ *taskOptions) {
		c.Backends = []router.BackendConfig{{Name: "flood", Type: router.TypeZhipu, BaseURL: up.URL + "/api/paas/v4",
			APIKey: "0123456789abcdef0123456789abcdef.abcdefghijklmnop", Models: []router.ModelConfig{{Name: "glm-4"}}}}
		o.WriteTimeout = 200 * time.Millisecond
	})
	addr := e.guarded(conns.GuardOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A small receive buffer, so that the server's writes block soon.
	_ = c.(*net.TCPConn).SetReadBuffer(4 << 10)
	body := `{"model":"glm-4","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	fmt.Fprintf(c, "POST %s/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		DefaultPrefix, e.key.Full(), len(body), body)
	select {
	case <-up.cancelled:
	case <-time.After(20 * time.Second): // hang guard
		t.Fatal("the upstream was not cancelled: the non-reading client was not cut")
	}
	var rows []platform.RequestLog
	waitFor(t, "the request-log row", func() bool { rows = e.logs(); return len(rows) > 0 })
	if len(rows) != 1 || rows[0].HTTPStatus != 499 || !rows[0].Estimated || rows[0].Usage.CompletionTokens < 1 {
		t.Fatalf("got rows %+v, want one 499 row with an estimated usage", rows)
	}
	if got := counter(t, e.api.Metrics().Registry, "glm_streams_cut_total", "reason", cutWriteTimeout); got != 1 {
		t.Errorf("got %v write_timeout cuts, want 1", got)
	}
}

// counter reads one labelled counter of reg (0 when absent).
func counter(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
