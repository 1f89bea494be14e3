package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// countingUpstream is a loopback server that answers every POST with the
// given SSE events (or, for a non-stream request, sync) and counts the
// connections opened to it.
type countingUpstream struct {
	*httptest.Server
	conns atomic.Int64
}

func newCountingUpstream(t *testing.T, h http.HandlerFunc) *countingUpstream {
	t.Helper()
	u := &countingUpstream{Server: httptest.NewUnstartedServer(h)}
	u.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

// sseHandler writes events one by one, flushed, then returns (which ends
// the chunked body right after [DONE], as V4 servers do).
func sseHandler(events ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !bytes.Contains(mustRead(r), []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range events {
			fmt.Fprintf(w, "data: %s\n\n", e)
			w.(http.Flusher).Flush()
		}
	}
}

func mustRead(r *http.Request) []byte {
	var b bytes.Buffer
	_, _ = b.ReadFrom(r.Body)
	return b.Bytes()
}

var v4Events = []string{
	`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"你好"}}]}`,
	`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":" world"}}]}`,
	`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant","content":""}}],"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}`,
	`[DONE]`,
}

// Streams that end with [DONE] give their connection back: N streams one
// after another use one connection (and the sync calls between them one)
// (notes/load.md finding 2: glm serve dialled again after ~4 in 10).
func TestZhipuStreamsReuseTheConnection(t *testing.T) {
	u := newCountingUpstream(t, sseHandler(v4Events...))
	z, err := NewZhipu(ZhipuOptions{BaseURL: u.URL, APIKey: "id.secret"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		s, err := z.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
		if err != nil {
			t.Fatal(err)
		}
		_, chunks, err := drain(t, s)
		if err != nil || len(chunks) != 3 || chunks[2].Usage == nil || chunks[2].Usage.TotalTokens != 6 {
			t.Fatalf("stream %d: %d chunks, %v", i, len(chunks), err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
		if i%5 == 0 {
			if _, _, err := z.Chat(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// One connection for the streams and one for the sync calls: streams
	// have a client of their own (NewStreamHTTPClient).
	if got := u.conns.Load(); got != 2 {
		t.Fatalf("%d streams and %d sync calls opened %d connections to the upstream, want 2", n, n/5, got)
	}
}

// The same for an OpenAI-compatible engine's translated stream.
func TestOpenAIStreamsReuseTheConnection(t *testing.T) {
	u := newCountingUpstream(t, sseHandler(
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"glm4","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"glm4","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":1,"model":"glm4","choices":[],"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}`,
		`[DONE]`))
	b, err := NewOpenAI(OpenAIOptions{BaseURL: u.URL, Flavor: FlavorVLLM})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := range n {
		s, err := b.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm4", "x")})
		if err != nil {
			t.Fatal(err)
		}
		_, chunks, err := drain(t, s)
		if err != nil || len(chunks) != 2 || chunks[1].Usage == nil || chunks[1].Usage.TotalTokens != 3 {
			t.Fatalf("stream %d: %d chunks, %v", i, len(chunks), err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
	if got := u.conns.Load(); got != 1 {
		t.Fatalf("%d streams opened %d connections to the engine, want 1", n, got)
	}
}

// An upstream that keeps the body open after [DONE] must not hold Close:
// the drain is bounded, the connection is given up, the next stream dials
// again and works.
func TestStreamCloseDoesNotWaitForAnEndlessBody(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	u := newCountingUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, e := range v4Events {
			fmt.Fprintf(w, "data: %s\n\n", e)
		}
		w.(http.Flusher).Flush()
		select { // the body stays open until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	})
	z, err := NewZhipu(ZhipuOptions{BaseURL: u.URL, APIKey: "id.secret"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		s, err := z.ChatStream(context.Background(), platform.ChatRequest{Req: userChat("glm-4", "x")})
		if err != nil {
			t.Fatal(err)
		}
		if _, chunks, err := drain(t, s); err != nil || len(chunks) != 3 {
			t.Fatalf("stream %d: %d chunks, %v", i, len(chunks), err)
		}
		_ = s.Close() // returns: that is the check
	}
	if got := u.conns.Load(); got != 2 {
		t.Fatalf("connections = %d, want 2 (a body left open cannot be reused)", got)
	}
}

// scanContentChunk is a shortcut for the full decode: whenever it accepts
// a chunk and v4Stream lets it pass, the full path must also have passed
// the bytes through unchanged, with the same token estimate.
func TestScanAgreesWithFullDecode(t *testing.T) {
	cases := []struct {
		line string
		pass bool // the scan path takes it
	}{
		{`{"id":"1","created":1,"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"下午好"}}]}`, true},
		{` { "id" : "1" , "model":"glm-4", "choices" : [ { "index" : 0 , "delta" : { "role" : "assistant" , "content" : "a b" } } ] } `, true},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"line\nbreak \u4f60\"q\""}}]}`, true},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"想一想","content":""}}]}`, true},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}},{"index":1,"delta":{"role":"assistant","content":"yy"}}]}`, true},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}],"content_filter":[{"role":"assistant","level":3}],"x":[1,-2.5e3,true,null,{"a":[]}]}`, true},
		// The OpenAI-style shapes: nulls, no role, another model name
		// (spliced, never decoded).
		{`{"id":"1","object":"chat.completion.chunk","created":1,"model":"glm-4","system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"no role"},"logprobs":null,"finish_reason":null}],"usage":null}`, true},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"content":"no role"}}]}`, true},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"reasoning_content":"想","tool_calls":null}}]}`, true},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"content":"x"}},{"index":1,"delta":{"role":"assistant","content":"y"}},{"index":2,"delta":{ "content":"z"}}]}`, true},
		{`{"id":"1","model":"other","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}`, true},
		{`{"id":"1","model":"o\u0074her","choices":[{"index":0,"delta":{"content":"x"}}],"error":null}`, true},
		{`{"id":"1","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]}`, true},
		{`{"choices":[{"delta":{"content":"x"}}]}`, true},
		// Need the full path: rewrites of chunks without text, usage,
		// errors, tool calls, nulls where text is expected.
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"content":""}}]}`, false},
		{`{"id":"1","model":"other","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"","content":"x"}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}},{"index":2,"delta":{"content":"c"}},{"index":3,"delta":{"content":"d"}},{"index":4,"delta":{"content":"e"}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"content":"x"}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant","content":""}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":""}}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`, false},
		{`{"error":{"code":"1301","message":"sensitive"}}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":null}}]}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}]} trailing`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"x"}}],"n":01}`, false},
		{`{"id":"1","model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"x`, false},
		{`not json`, false},
	}
	for _, c := range cases {
		s := &v4Stream{model: "glm-4", id: "1", req: userChat("glm-4", "x")}
		cc, ok := scanContentChunk([]byte(c.line))
		var got []byte
		if ok {
			got, ok = s.splice([]byte(c.line), &cc)
		}
		if ok != c.pass {
			t.Errorf("%s: scan path %v, want %v", c.line, ok, c.pass)
			continue
		}
		if !ok {
			continue
		}
		got = bytes.Clone(got)
		full := new(zhipuai.ChatCompletionChunk)
		if err := json.Unmarshal([]byte(c.line), full); err != nil {
			t.Errorf("%s: scan accepted what does not decode: %v", c.line, err)
			continue
		}
		want, keep, tokens, err := s.shape([]byte(c.line), full)
		if err != nil || !keep || tokens != cc.tokens {
			t.Errorf("%s: full path keep=%v tokens=%d, scan tokens %d, err=%v", c.line, keep, tokens, cc.tokens, err)
			continue
		}
		// The splice keeps keys the full path's re-encoding drops; what a
		// V4 client decodes must be the same, and an unchanged chunk the
		// same bytes.
		if bytes.Equal(want, []byte(c.line)) && !bytes.Equal(got, want) {
			t.Errorf("%s: scan path changed a chunk the full path passes: got %s", c.line, got)
		}
		var g, w zhipuai.ChatCompletionChunk
		if err := json.Unmarshal(got, &g); err != nil {
			t.Errorf("%s: splice made invalid JSON %s: %v", c.line, got, err)
			continue
		}
		if err := json.Unmarshal(want, &w); err != nil {
			t.Fatalf("full path made invalid JSON %s: %v", want, err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %s\nwant %s", c.line, got, want)
		}
	}
}
