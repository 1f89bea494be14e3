package httpapi

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/benchcpu"
	"github.com/glmkit/glmkit/platform/upstream"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

// embedRouter serves chat and the catalogue as the other benchmarks do,
// and embeddings from a real zhipu backend.
type embedRouter struct {
	instantUpstream
	z *upstream.Zhipu
}

func (r embedRouter) Embeddings(ctx context.Context, req *zhipuai.EmbeddingRequest) (*zhipuai.EmbeddingResponse, error) {
	return r.z.Embeddings(ctx, req)
}

// BenchmarkEmbeddingsHTTP is an embeddings call end to end over loopback
// HTTP: client → glm's handler → the zhipu backend → an instant upstream
// that sends the reply chunked (no Content-Length), then the reply back.
// cpu-µs/op is the whole process's CPU per call, the upstream and the
// client included (the same on both sides of a before/after).
func BenchmarkEmbeddingsHTTP(b *testing.B) {
	for _, format := range []string{"float", "base64"} {
		b.Run(format, func(b *testing.B) {
			reply := zhipuaitest.EmbeddingsBody("embedding-2", 1024) // what glmload's instant upstream sends
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/json; charset=UTF-8")
				w.Write(reply)
			}))
			defer up.Close()
			z, err := upstream.NewZhipu(upstream.ZhipuOptions{BaseURL: up.URL + "/api/paas/v4", APIKey: "bench.secret"})
			if err != nil {
				b.Fatal(err)
			}
			api, k := benchServerWith(b, embedRouter{z: z}, nil)
			srv := httptest.NewServer(api)
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			url := srv.URL + DefaultPrefix + "/embeddings"
			body := `{"model":"embedding-2","input":"你好，介绍一下你自己。"}`
			want := `"embedding":[`
			if format == "base64" {
				body = `{"model":"embedding-2","input":"你好，介绍一下你自己。","encoding_format":"base64"}`
				want = `"embedding":"`
			}
			b.ReportAllocs()
			start, cpu0 := time.Now(), benchcpu.Now(b)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest("POST", url, strings.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+k.Full())
					resp, err := client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					got, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || !bytes.Contains(got, []byte(want)) {
						b.Fatalf("got status %d, %.200s; want 200 with %s", resp.StatusCode, got, want)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			benchcpu.Report(b, cpu0, b.N, "cpu-µs/op")
		})
	}
}
