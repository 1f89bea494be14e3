package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glmkit/glmkit/internal/h1client"
	"github.com/glmkit/glmkit/internal/readsized"
)

// Limits on what is read from an upstream into memory.
const (
	maxReplyBytes = 64 << 20 // a sync reply (embeddings of 64 × 2048 floats fit easily)
	maxErrorBytes = 64 << 10 // an error body; only the envelope is needed
	maxGuessBytes = 1 << 20  // the largest buffer readBodySized allocates on a guess
	// maxDrainBytes bounds what is read after a stream's [DONE] to reach
	// the end of the body: normally only the chunked terminator is left.
	maxDrainBytes = 4 << 10
	// drainWait bounds how long Close waits for that end: a server that
	// keeps the body open after [DONE] costs its connection, not a hang.
	drainWait = 250 * time.Millisecond
)

// NewHTTPClient returns the client backends use when none is given: no
// overall timeout (streams run for minutes; the router bounds the wait for
// the first byte with the context), a bounded dial and TLS handshake so a
// dead host fails fast and can be failed over, and enough idle connections
// per host for a busy proxy: every stream in flight holds a connection, and
// when they end together all of them should fit in the idle pool rather
// than be closed and dialled again (a TCP + TLS handshake each against the
// cloud).
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: newTransport(newGoTransport())}
}

// streamWriteBuffer is the write buffer of a stream connection that goes
// through Go's transport (see NewStreamHTTPClient): a request's headers
// and a usual body fit, a longer body goes on in a second write.
const streamWriteBuffer = 1 << 10

// NewStreamHTTPClient returns the client backends open streams with when
// none is given: NewHTTPClient's, with connections of their own. Plain
// http:// backends are served by internal/h1client, whose connections hold
// no write buffer and no goroutine (docs/design.md §6); a stream that goes
// through Go's transport (https, a proxy) has a connection whose write
// buffer is 1 KB instead of 4 KB. An HTTP/1.1 connection there keeps its
// write buffer for its life, and a stream's connection is held for as long
// as the model writes: the buffer is used once, for the request, then
// waits with the stream. The read buffer stays 4 KB: the events of one
// read leave to the client in one write, and fewer per read would mean
// more writes on both sides.
func NewStreamHTTPClient() *http.Client {
	g := newGoTransport()
	g.WriteBufferSize = streamWriteBuffer
	return &http.Client{Transport: newTransport(g)}
}

// clients are a backend's sync and stream clients from its options: a
// client given for sync calls alone serves streams too.
func clients(sync, stream *http.Client) (*http.Client, *http.Client) {
	switch {
	case sync == nil && stream == nil:
		return NewHTTPClient(), NewStreamHTTPClient()
	case sync == nil:
		return NewHTTPClient(), stream
	case stream == nil:
		return sync, sync
	}
	return sync, stream
}

// newTransport serves plain http:// backends in the calling goroutine
// (internal/h1client: no reader and writer goroutines and no buffers per
// connection, the connection back in the pool as the body ends) and hands
// everything else — https, where the cloud negotiates HTTP/2, a proxy, a
// body of unknown length — to Go's transport g (docs/design.md §6). Both
// dial alike and keep as many idle connections.
func newTransport(g *http.Transport) *h1client.Transport {
	return &h1client.Transport{
		Fallback:            g,
		Proxy:               g.Proxy,
		DialContext:         g.DialContext,
		MaxIdleConns:        g.MaxIdleConns,
		MaxIdleConnsPerHost: g.MaxIdleConnsPerHost,
		IdleConnTimeout:     g.IdleConnTimeout,
	}
}

func newGoTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// joinURL appends path to base, tolerating a trailing slash on base
// (docs/v4.md §1: a custom base URL with or without trailing slash must work).
func joinURL(base, path string) string {
	return strings.TrimRight(base, "/") + path
}

// Header values every upstream request carries, made once: a request's
// header map then takes them without allocating (the transport only reads
// them, and http.Client copies the map before it changes anything).
var (
	contentTypeJSON = []string{"application/json; charset=UTF-8"}
	acceptJSON      = []string{"application/json"}
	acceptSSE       = []string{"text/event-stream"}
)

// bearer is a backend's Authorization header value, made once when the
// backend is built; nil when it has no key.
func bearer(key string) []string {
	if key == "" {
		return nil
	}
	return []string{"Bearer " + key}
}

// postJSON sends body (built from bytes, never a streamed inbound body:
// golang/go#40747, docs/design.md §3) with the Authorization value auth
// (bearer) and returns the response for the caller to read and close.
func postJSON(ctx context.Context, c *http.Client, url string, auth []string, body []byte, stream bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	h := req.Header
	h["Content-Type"] = contentTypeJSON
	if stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	if auth != nil {
		h["Authorization"] = auth
	}
	return c.Do(req)
}

// readBody reads at most limit bytes of a reply body and closes it.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	return readBodySized(resp, limit, nil, nil)
}

// readBodySized is readBody with the size of the previous reply of the
// same kind (last, updated here; nil for none): a reply that does not
// announce its length (chunked) is read into one buffer of about that
// size, not grown from 512 bytes in ~11 steps, copying each time — an
// embeddings reply is tens of KB (docs/design.md §6). The guess is capped
// at maxGuessBytes, so one large batch does not make every later small
// reply allocate as much; beyond it the buffer doubles, few steps.
//
// dst, when not nil, is a buffer kept from an earlier reply
// (platform.ReplyLease): the reply is read into it when it has room.
func readBodySized(resp *http.Response, limit int64, last *atomic.Int64, dst []byte) ([]byte, error) {
	defer resp.Body.Close()
	n := resp.ContentLength
	if (n < 0 || n > limit) && last != nil {
		n = min(last.Load(), limit, maxGuessBytes)
	}
	if n > limit {
		n = 0 // announced past the limit: read up to it and refuse
	}
	// The size is announced (or expected): one buffer of it, not
	// io.ReadAll's doubling from 512 bytes (internal/readsized).
	b, err := readsized.ReadAllInto(dst, resp.Body, n, limit)
	if errors.Is(err, readsized.ErrTooLarge) {
		return nil, errors.New("reply body too large")
	}
	if err != nil {
		return nil, err
	}
	if last != nil {
		last.Store(int64(len(b)))
	}
	return b, nil
}

// closeStream ends a stream's response body. Go's transport reuses a
// connection only when its body was read to EOF before Close, and drops it
// when the request's context is cancelled first. So a stream that reached
// [DONE] (docs/v4.md §8.6: [DONE], then the server ends the body) is read to its
// end — a bounded number of bytes for a bounded time — then closed, and
// only then is its context cancelled. A stream abandoned midway (client
// gone, upstream error) is cancelled first: draining it would mean reading
// the rest of a generation nobody wants.
func closeStream(body io.ReadCloser, cancel context.CancelFunc, finished bool) error {
	if finished {
		t := time.AfterFunc(drainWait, cancel)
		_, _ = io.CopyN(io.Discard, body, maxDrainBytes)
		t.Stop()
		err := body.Close()
		cancel()
		return err
	}
	cancel()
	return body.Close()
}

// isEventStream reports whether the reply is an SSE stream.
func isEventStream(h http.Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == "text/event-stream"
}

// clip shortens an upstream message for logs and client messages.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
