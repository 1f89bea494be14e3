package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"

	"github.com/glmkit/glmkit/platform/upstream"
)

// heldUpstream is a real loopback upstream that sends the first two
// events of a stream, then holds it until release is closed, then sends
// the rest: a stream held open like a slow model's. sent is told once
// per stream when its head is out.
type heldUpstream struct {
	events  []byte
	release chan struct{}
	sent    chan struct{}
}

func (u *heldUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	cut := 0
	for range 2 {
		cut += bytes.Index(u.events[cut:], []byte("\n\n")) + 2
	}
	release := u.release
	w.Header().Set("Content-Type", "text/event-stream")
	w.Write(u.events[:cut])
	w.(http.Flusher).Flush()
	u.sent <- struct{}{}
	<-release
	w.Write(u.events[cut:])
}

// BenchmarkHeldStreamMemory holds n streams open in the handler, each on
// its own goroutine as net/http runs them, with a loopback upstream
// silent after its second event, and reports what one held stream keeps
// after two GCs: stack-B/stream (the handler goroutine's stack, which a
// GC shrinks only when less than a quarter of it is in use, plus the
// upstream connection's: its transport goroutines and, in this process,
// the upstream's own) and heap-B/stream (live heap, the upstream's side
// of the connection included). A process holding thousands of slow
// streams pays for both, about twice over once the GC goal counts them.
func BenchmarkHeldStreamMemory(b *testing.B) { benchHeld(b, streamEvents()) }

// BenchmarkHeldStreamMemoryOpenAIShape is the same with OpenAI-shaped chunks.
func BenchmarkHeldStreamMemoryOpenAIShape(b *testing.B) { benchHeld(b, openAIEvents()) }

// serveFrames is about the stack net/http's connection goroutine and glm
// serve's listener guard use above the API handler (net/http.(*conn).serve
// alone has a 1,120-byte frame): the benchmark's handler runs that deep.
const serveFrames = 1500

// underServe runs f below a frame of serveFrames bytes.
//
//go:noinline
func underServe(f func()) {
	var pad [serveFrames]byte
	touch(&pad)
	f()
}

//go:noinline
func touch(p *[serveFrames]byte) { p[0] = 1 }

func benchHeld(b *testing.B, events []byte) {
	const n = 500
	tr := &heldUpstream{events: events, sent: make(chan struct{}, n)}
	up := httptest.NewServer(tr)
	defer up.Close()
	z, err := upstream.NewZhipu(upstream.ZhipuOptions{BaseURL: up.URL + "/v4", APIKey: "id.secret"})
	if err != nil {
		b.Fatal(err)
	}
	api, k := benchServerWith(b, zhipuRouter{z}, nil)
	body := strings.Replace(benchBody, `"model":"glm-4",`, `"model":"glm-4","stream":true,`, 1)
	var stack, heap float64
	for b.Loop() {
		b.StopTimer()
		tr.release = make(chan struct{})
		var before, held runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		var wg sync.WaitGroup
		bad := make(chan string, n)
		for range n {
			wg.Go(func() {
				req := httptest.NewRequest("POST", DefaultPrefix+"/chat/completions", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+k.Full())
				w := httptest.NewRecorder()
				underServe(func() { api.ServeHTTP(w, req) })
				if w.Code != 200 || !bytes.HasSuffix(w.Body.Bytes(), []byte("data: [DONE]\n\n")) {
					bad <- w.Body.String()
				}
			})
		}
		for range n {
			<-tr.sent
		}
		b.StopTimer()
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&held)
		if f := os.Getenv("HELD_HEAP_PROFILE"); f != "" {
			// What the held streams keep, for go tool pprof -sample_index=inuse_space.
			out, _ := os.Create(f)
			pprof.Lookup("heap").WriteTo(out, 0)
			out.Close()
		}
		close(tr.release)
		wg.Wait()
		close(bad)
		for s := range bad {
			b.Fatalf("a held stream ended badly: %.300s", s)
		}
		stack += float64(held.StackInuse) - float64(before.StackInuse)
		heap += float64(held.HeapAlloc) - float64(before.HeapAlloc)
		b.StartTimer()
	}
	b.ReportMetric(stack/float64(b.N)/n, "stack-B/stream")
	b.ReportMetric(heap/float64(b.N)/n, "heap-B/stream")
}
