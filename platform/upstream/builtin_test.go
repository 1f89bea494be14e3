package upstream

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestEmbedNgramProperties(t *testing.T) {
	for _, dims := range BuiltinDimensions {
		v := EmbedNgram("GLM-4 是智谱AI的大模型", dims)
		if len(v) != dims {
			t.Fatalf("len %d, want %d", len(v), dims)
		}
		if n := math.Sqrt(dot(v, v)); math.Abs(n-1) > 1e-9 {
			t.Fatalf("norm %v", n)
		}
		w := EmbedNgram("GLM-4 是智谱AI的大模型", dims)
		for i := range v {
			if v[i] != w[i] {
				t.Fatal("not deterministic")
			}
		}
	}
	// Normalisation: case and fullwidth forms do not matter.
	a, b := EmbedNgram("Hello World", 1024), EmbedNgram("ｈｅｌｌｏ　ｗｏｒｌｄ", 1024)
	if s := dot(a, b); s < 0.999 {
		t.Fatalf("case/fullwidth folding: cos %v", s)
	}
	// Similar texts are closer than unrelated ones, in both scripts.
	q := EmbedNgram("北京天气预报", 1024)
	if dot(q, EmbedNgram("北京今天的天气晴朗", 1024)) <= dot(q, EmbedNgram("红烧肉的做法", 1024)) {
		t.Fatal("Chinese: related text not closer")
	}
	q = EmbedNgram("embedding vectors", 1024)
	if dot(q, EmbedNgram("an embedding model produces vectors", 1024)) <= dot(q, EmbedNgram("bake bread overnight", 1024)) {
		t.Fatal("English: related text not closer")
	}
	// Empty text gives a zero vector (no NaN).
	for _, x := range EmbedNgram("", 256) {
		if x != 0 {
			t.Fatal("empty text not zero")
		}
	}
	if v, err := json.Marshal(zhipuai.Vector(EmbedNgram("！？", 256))); err != nil || len(v) == 0 {
		t.Fatalf("punctuation-only text does not encode: %v", err)
	}
}

func TestBuiltinBackend(t *testing.T) {
	b := NewBuiltin()
	resp, err := b.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "embedding-2", Input: zhipuai.EmbeddingInput{"你好", "hello world"}, Dimensions: zhipuai.Ptr(512)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Object != "list" || len(resp.Data) != 2 || resp.Data[1].Index != 1 || resp.Data[1].Object != "embedding" ||
		len(resp.Data[0].Embedding) != 512 || resp.Usage.PromptTokens != 2+3 || resp.Usage.TotalTokens != 5 {
		t.Fatalf("resp %+v", resp.Usage)
	}
	_, err = b.Embeddings(context.Background(), &zhipuai.EmbeddingRequest{Model: "m", Input: zhipuai.EmbeddingInput{"x"}, Dimensions: zhipuai.Ptr(300)})
	wantCode(t, err, "1214")
	// The builtin model only embeds: it implements no other capability, so
	// the router refuses a chat or image model on it at configuration time
	// (the router's tests show the 1212 a client then gets).
	var be platform.Backend = b
	for _, kind := range []platform.ModelKind{platform.KindChat, platform.KindVision, platform.KindImage} {
		if platform.Serves(be, kind) {
			t.Errorf("builtin serves %s models; got true, want false", kind)
		}
	}
	if !platform.Serves(be, platform.KindEmbedding) {
		t.Error("builtin serves embedding models: got false, want true")
	}
}

type retrievalSet struct {
	Docs []struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"docs"`
	Queries []struct {
		Q        string   `json:"q"`
		Relevant []string `json:"relevant"`
	} `json:"queries"`
}

// retrievalScores ranks every document for every query by cosine
// similarity and returns recall@1, recall@5 (share of relevant documents
// found in the top k, averaged over queries) and MRR (reciprocal rank of
// the first relevant document).
func retrievalScores(t testing.TB, set *retrievalSet, dims int) (r1, r5, mrr float64) {
	docs := make([][]float64, len(set.Docs))
	for i, d := range set.Docs {
		docs[i] = EmbedNgram(d.Text, dims)
	}
	for _, q := range set.Queries {
		qv := EmbedNgram(q.Q, dims)
		order := make([]int, len(docs))
		for i := range order {
			order[i] = i
		}
		sims := make([]float64, len(docs))
		for i, d := range docs {
			sims[i] = dot(qv, d)
		}
		sort.SliceStable(order, func(a, b int) bool { return sims[order[a]] > sims[order[b]] })
		rel := map[string]bool{}
		for _, id := range q.Relevant {
			rel[id] = true
		}
		hits1, hits5 := 0, 0
		first := 0
		for rank, i := range order {
			if !rel[set.Docs[i].ID] {
				continue
			}
			if first == 0 {
				first = rank + 1
			}
			if rank < 1 {
				hits1++
			}
			if rank < 5 {
				hits5++
			}
		}
		r1 += float64(hits1) / float64(min(1, len(rel)))
		r5 += float64(hits5) / float64(min(5, len(rel)))
		if first > 0 {
			mrr += 1 / float64(first)
		}
	}
	n := float64(len(set.Queries))
	return r1 / n, r5 / n, mrr / n
}

// TestBuiltinRetrievalQuality measures the builtin model on the labelled
// set in testdata/retrieval.json and asserts a floor. Two queries have a
// relevant document in the other language, which a lexical model cannot
// find: the ceiling of recall@5 is below 1 on purpose.
func TestBuiltinRetrievalQuality(t *testing.T) {
	b, err := os.ReadFile("testdata/retrieval.json")
	if err != nil {
		t.Fatal(err)
	}
	var set retrievalSet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Docs) < 40 || len(set.Queries) < 40 {
		t.Fatalf("set too small: %d docs, %d queries", len(set.Docs), len(set.Queries))
	}
	for _, dims := range []int{1024, 256} {
		r1, r5, mrr := retrievalScores(t, &set, dims)
		t.Logf("builtin %s, %d dims, %d docs / %d queries (zh+en): recall@1 %.3f  recall@5 %.3f  MRR %.3f",
			platform.BuiltinEmbedModel, dims, len(set.Docs), len(set.Queries), r1, r5, mrr)
		floor1, floor5, floorMRR := 0.80, 0.90, 0.85
		if dims == 256 {
			floor1, floor5, floorMRR = 0.70, 0.85, 0.78
		}
		if r1 < floor1 || r5 < floor5 || mrr < floorMRR {
			t.Errorf("%d dims below the floor: recall@1 %.3f (≥%.2f), recall@5 %.3f (≥%.2f), MRR %.3f (≥%.2f)",
				dims, r1, floor1, r5, floor5, mrr, floorMRR)
		}
	}
}

func BenchmarkEmbedNgram(b *testing.B) {
	texts := map[string]string{
		"zh-60":  "GLM-4 是智谱AI发布的新一代基座大模型，支持 128K 上下文，具备工具调用、网页检索和代码执行能力。",
		"en-100": "Async chat completions return a task id; poll the async-result endpoint until the task status is SUCCESS or FAIL.",
		"mix-1k": strings.Repeat("流式输出时服务端以 SSE 格式逐块返回内容 streaming chunks end with usage. ", 15),
	}
	for name, text := range texts {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				EmbedNgram(text, 1024)
			}
		})
	}
}
