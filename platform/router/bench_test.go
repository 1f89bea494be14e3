package router

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// BenchmarkPlan: choosing the backend order for one call (3 backends, two
// priorities, weighted).
func BenchmarkPlan(b *testing.B) {
	cfg, err := ParseConfig([]byte(`{"backends":[
		{"name":"a","type":"openai","base_url":"http://127.0.0.1:1/v1","priority":1,"weight":3,"models":["glm-4"]},
		{"name":"b","type":"openai","base_url":"http://127.0.0.1:2/v1","priority":1,"weight":1,"models":["glm-4"]},
		{"name":"c","type":"openai","base_url":"http://127.0.0.1:3/v1","models":["glm-4"]}]}`))
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(context.Background(), cfg, WithRand(rand.New(rand.NewPCG(1, 2))))
	if err != nil {
		b.Fatal(err)
	}
	rt := r.routes["glm-4"]
	b.ReportAllocs()
	for b.Loop() {
		if len(r.plan(rt, 0, nil)) != 3 {
			b.Fatal("plan")
		}
	}
}

// BenchmarkRouterBuiltinEmbedding: a whole router call to the builtin model.
func BenchmarkRouterBuiltinEmbedding(b *testing.B) {
	r, err := New(context.Background(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	req := &zhipuai.EmbeddingRequest{Model: platform.BuiltinEmbedModel, Input: zhipuai.EmbeddingInput{"GLM-4 是智谱AI发布的新一代基座大模型"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Embeddings(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}
