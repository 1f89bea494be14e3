package h1client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/benchcpu"
)

// BenchmarkRoundTrip compares a sync call through this transport with the
// same call through Go's, against one loopback server in the process, one
// caller at a time (as glmload's c1): ns/op, allocations, and cpu-µs/op,
// the process's CPU per call, the server's share included.
func BenchmarkRoundTrip(b *testing.B) {
	reply := strings.Repeat("x", 600)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, reply)
	}))
	defer s.Close()
	body := strings.Repeat("y", 400)
	run := func(b *testing.B, rt http.RoundTripper) {
		c := &http.Client{Transport: rt}
		call := func() {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/v4/chat/completions", strings.NewReader(body))
			req.Header["Content-Type"] = []string{"application/json"}
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n != int64(len(reply)) {
				b.Fatalf("body: got %d bytes, want %d", n, len(reply))
			}
		}
		call()
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := benchcpu.Now(b)
		for b.Loop() {
			call()
		}
		benchcpu.Report(b, cpu0, b.N, "cpu-µs/op")
	}
	b.Run("h1client", func(b *testing.B) {
		run(b, &Transport{Fallback: http.DefaultTransport, MaxIdleConnsPerHost: 8})
	})
	b.Run("go", func(b *testing.B) {
		run(b, &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true})
	})
}
