package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// The upstream's behaviour is chosen per request by a marker in its
// prompt ("fault:MODE"), so one scripted upstream serves every fault and
// every concurrent request gets the answer its fault asks for.
var markerRE = regexp.MustCompile(`fault:([a-z0-9]+)`)

var words = []string{"alpha ", "beta ", "gamma ", "delta ", "epsilon"}

// script answers a request as its marker says.
func script(req *zhipuaitest.Request) zhipuaitest.Reply {
	ok := zhipuaitest.Text("").WithChunks(words...).WithUsage(60, 30)
	m := markerRE.FindSubmatch(req.Body)
	if m == nil {
		return ok
	}
	switch string(m[1]) {
	case "slow": // a latency spike on every chunk
		return ok.WithDelay(time.Duration(50+rand.IntN(250)) * time.Millisecond)
	case "err5xx":
		return zhipuaitest.Error(http.StatusServiceUnavailable, "500", "upstream overloaded")
	case "reset": // the connection dies before any answer byte
		return ok.CutAfter(0)
	case "cut": // the stream breaks after two chunks
		return ok.CutAfter(2)
	case "stall": // one chunk, then nothing
		return ok.StallAfter(1)
	case "big": // a stream larger than the socket buffers
		big := make([]string, 256)
		for i := range big {
			big[i] = strings.Repeat("x", 4096)
		}
		return zhipuaitest.Text("").WithChunks(big...).WithUsage(60, 2000)
	}
	return ok
}

// outcome is what one client saw.
type outcome struct {
	reqID string // the client request_id sent ("" when no body was sent)
	// sent says the whole request reached the server, so it must be
	// logged.
	sent bool
	// key classifies the answer: "200" (sync), "200/done" (a stream to
	// [DONE]), "200/CODE" (a stream ended by an in-band error), "STATUS/CODE"
	// (an error envelope), "left" (the client went away on purpose),
	// "closed" (the server closed without an answer), "timeout".
	key  string
	task string // the async task id a submit returned
}

// client makes the fault suite's requests to one server.
type client struct {
	base string
	key  string
	hc   *http.Client
}

// clientTransport is shared by every client, so closing its idle
// connections leaves the servers with none from the suite.
var clientTransport = &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}

func newClient(base, key string) *client {
	return &client{base: base, key: key, hc: &http.Client{Timeout: 60 * time.Second, Transport: clientTransport}}
}

func (c *client) body(reqID, mode string, stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": "glm-4", "stream": stream, "request_id": reqID, "max_tokens": 400,
		"messages": []map[string]string{{"role": "user", "content": "fault:" + mode + " say something"}},
	})
	return b
}

func (c *client) post(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/paas/v4"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json")
	return c.hc.Do(req)
}

// envelopeKey reads a V4 error envelope: "STATUS/CODE", or "STATUS/?"
// when the body is not one.
func envelopeKey(status int, body []byte) string {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error.Code == "" || env.Error.Message == "" {
		return fmt.Sprintf("%d/?", status)
	}
	return fmt.Sprintf("%d/%s", status, env.Error.Code)
}

// transportKey names a request that got no answer.
func transportKey(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "closed"
}

// sync sends a non-stream chat.
func (c *client) sync(ctx context.Context, reqID, mode string) outcome {
	o := outcome{reqID: reqID}
	resp, err := c.post(ctx, "/chat/completions", c.body(reqID, mode, false))
	if err != nil {
		o.key = transportKey(err)
		return o
	}
	defer resp.Body.Close()
	o.sent = true
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		o.key = transportKey(err)
	case resp.StatusCode == http.StatusOK && !bytes.Contains(b, []byte(`"error"`)):
		o.key = "200"
	default:
		o.key = envelopeKey(resp.StatusCode, b)
	}
	return o
}

// readMode says how a stream client reads.
type readMode int

const (
	readAll    readMode = iota // read every event at once
	readSlowly                 // read in small pieces with pauses
	readFirst                  // read the first event, then hang up
	readNone                   // read nothing after the headers, then hang up late
)

// stream sends a stream chat and reads it as rm says.
func (c *client) stream(ctx context.Context, reqID, mode string, rm readMode) outcome {
	o := outcome{reqID: reqID}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.post(ctx, "/chat/completions", c.body(reqID, mode, true))
	if err != nil {
		o.key = transportKey(err)
		return o
	}
	defer resp.Body.Close()
	o.sent = true
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		o.key = envelopeKey(resp.StatusCode, b)
		return o
	}
	switch rm {
	case readFirst:
		_, _ = bufio.NewReader(resp.Body).ReadString('\n')
		o.key = "left"
		return o
	case readNone:
		// Long past --write-timeout: the server must cut it on its own.
		time.Sleep(3 * time.Second)
		o.key = "left"
		return o
	}
	var r io.Reader = resp.Body
	if rm == readSlowly {
		r = &slowReader{r: resp.Body}
	}
	o.key = "200/" + streamEnd(r)
	return o
}

// streamEnd reads SSE events to the end: "done" after [DONE], the code of
// an in-band error, or "cut" when the body ends without either.
func streamEnd(r io.Reader) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			return "done"
		}
		if strings.HasPrefix(data, `{"error"`) {
			k := envelopeKey(200, []byte(data))
			return strings.TrimPrefix(k, "200/")
		}
	}
	return "cut"
}

// slowReader reads at most 2 KiB at a time with a pause between reads.
type slowReader struct{ r io.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 2048)])
}

// submit sends an async chat; the task id is kept for the task checks.
func (c *client) submit(ctx context.Context, reqID, mode string) outcome {
	o := outcome{reqID: reqID}
	resp, err := c.post(ctx, "/async/chat/completions", c.body(reqID, mode, false))
	if err != nil {
		o.key = transportKey(err)
		return o
	}
	defer resp.Body.Close()
	o.sent = true
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		o.key = envelopeKey(resp.StatusCode, b)
		return o
	}
	var t struct {
		ID         string `json:"id"`
		TaskStatus string `json:"task_status"`
	}
	if json.Unmarshal(b, &t) != nil || t.ID == "" {
		o.key = "200/?"
		return o
	}
	o.key, o.task = "200/task", t.ID
	o.sent = false // the task row, not a request-log row, is the submit's record
	return o
}

// silentBody sends complete headers announcing a body and then nothing;
// the server must answer or close within its body bound.
func (c *client) silentBody(ctx context.Context) outcome {
	u, _ := url.Parse(c.base)
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return outcome{key: transportKey(err)}
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("POST /api/paas/v4/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + c.key +
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"))
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return outcome{key: transportKey(err)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return outcome{key: envelopeKey(resp.StatusCode, b)}
}

// run calls do for i in [0, n) with at most par at once and collects the
// outcomes.
func run(n, par int, do func(i int) outcome) []outcome {
	out := make([]outcome, n)
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = do(i)
		}()
	}
	wg.Wait()
	return out
}
