package zhipuaitest

import (
	"bytes"
	"hash/fnv"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"strings"
	"sync"
	"unicode"

	"github.com/glmkit/glmkit/zhipuai"
)

// Embedding dimensions (docs/v4.md §5): embedding-2 is fixed at 1024,
// embedding-3 takes 256/512/1024/2048 and defaults to 2048. Other model
// names (a test's own) get `dimensions` or 1024.
const (
	dimsEmbedding2     = 1024
	dimsEmbedding3     = 2048
	dimsOther          = 1024
	maxEmbeddingInputs = 64
)

// wireEmbedding is one data item; Embedding holds a zhipuai.Vector (float
// form) or a string (base64 form).
type wireEmbedding struct {
	Index     int    `json:"index"`
	Object    string `json:"object"`
	Embedding any    `json:"embedding"`
}

type wireEmbeddingResponse struct {
	Model  string          `json:"model"`
	Object string          `json:"object"`
	Data   []wireEmbedding `json:"data"`
	Usage  zhipuai.Usage   `json:"usage"`
}

// embeddings serves POST /embeddings.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request, req *Request) {
	var er zhipuai.EmbeddingRequest
	if err := unmarshal(req.Body, &er); err != nil {
		s.record(req)
		writeError(w, http.StatusBadRequest, "1210", "API 调用参数有误，请检查文档。"+err.Error())
		return
	}
	req.Embedding = &er
	s.record(req)

	dims := dimsOther
	if er.Dimensions != nil {
		dims = *er.Dimensions
	}
	switch er.Model {
	case "embedding-2":
		dims = dimsEmbedding2
	case "embedding-3":
		if er.Dimensions == nil {
			dims = dimsEmbedding3
		}
		switch dims {
		case 256, 512, 1024, 2048:
		default:
			writeError(w, http.StatusBadRequest, "1214", "dimensions 参数非法：embedding-3 支持 256、512、1024、2048。")
			return
		}
	}
	switch {
	case er.Model == "":
		writeError(w, http.StatusBadRequest, "1213", "未正常接收到model参数。")
		return
	case len(er.Input) == 0:
		writeError(w, http.StatusBadRequest, "1213", "未正常接收到input参数。")
		return
	case len(er.Input) > maxEmbeddingInputs:
		writeError(w, http.StatusBadRequest, "1214", "input 数组最多 64 条。")
		return
	case dims <= 0:
		writeError(w, http.StatusBadRequest, "1214", "dimensions 参数非法。")
		return
	case er.EncodingFormat != "" && er.EncodingFormat != zhipuai.EncodingFloat && er.EncodingFormat != zhipuai.EncodingBase64:
		writeError(w, http.StatusBadRequest, "1214", "encoding_format 参数非法。")
		return
	}

	rep := s.take(req, Reply.forEmbeddings)
	if !s.preamble(w, r, rep, false) {
		return
	}
	var vectors [][]float64
	if rep.kind == kindEmbeddings {
		vectors = rep.vectors
	} else {
		for _, text := range er.Input {
			vectors = append(vectors, HashVector(text, dims))
		}
	}
	resp := wireEmbeddingResponse{Model: er.Model, Object: "list", Data: make([]wireEmbedding, len(vectors))}
	for i, v := range vectors {
		var e any = zhipuai.Vector(v)
		if er.EncodingFormat == zhipuai.EncodingBase64 {
			// The OpenAI SDKs' form: base64 of little-endian float32 (docs/v4.md §5).
			e = zhipuai.EncodeBase64Vector(v)
		}
		resp.Data[i] = wireEmbedding{Index: i, Object: "embedding", Embedding: e}
	}
	p := 0
	for _, text := range er.Input {
		p += tokens(text)
	}
	p = max(p, 1)
	resp.Usage = zhipuai.Usage{PromptTokens: p, TotalTokens: p}
	if rep.usage != nil {
		resp.Usage = *rep.usage
	}
	writeJSON(w, http.StatusOK, resp)
}

// HashVector is the fake's embedding of text: deterministic, L2-normalised,
// dims long. It hashes the text's features (lower-cased words, single Han
// characters and Han bigrams) into signed buckets, so equal texts give
// equal vectors and texts that share words score a higher cosine
// similarity, which lets retrieval tests rank documents meaningfully. Every
// value is exactly representable as float32, so the float and base64 forms
// of one vector decode to identical numbers.
func HashVector(text string, dims int) []float64 {
	v := make([]float64, dims)
	if dims <= 0 {
		return v
	}
	add := func(feature string) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		sum := h.Sum64()
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		v[(sum&(1<<63-1))%uint64(dims)] += sign
	}
	n := 0
	var word strings.Builder
	var prevHan rune
	flush := func() {
		if word.Len() > 0 {
			add("w:" + word.String())
			word.Reset()
			n++
		}
	}
	for _, c := range text {
		switch {
		case unicode.Is(unicode.Han, c):
			flush()
			add("h:" + string(c))
			if prevHan != 0 {
				add("b:" + string(prevHan) + string(c))
			}
			prevHan = c
			n++
			continue
		case unicode.IsLetter(c) || unicode.IsDigit(c):
			word.WriteRune(unicode.ToLower(c))
		default:
			flush()
		}
		prevHan = 0
	}
	flush()
	if n == 0 {
		add("t:" + text) // no words: still a non-zero, text-specific vector
	}
	norm := 0.0
	for _, x := range v {
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float64(float32(v[i] / norm))
	}
	return v
}

// imagePathPrefix is where generated "images" are served, outside the V4
// base and without auth, like the platform's CDN links.
const imagePathPrefix = "/fake-images/"

// images serves POST /images/generations with an absolute URL on this
// server (docs/v4.md §5, §8.14).
func (s *Server) images(w http.ResponseWriter, r *http.Request, req *Request) {
	var ir zhipuai.ImageRequest
	if err := unmarshal(req.Body, &ir); err != nil {
		s.record(req)
		writeError(w, http.StatusBadRequest, "1210", "API 调用参数有误，请检查文档。"+err.Error())
		return
	}
	req.Image = &ir
	s.record(req)
	switch {
	case ir.Model == "":
		writeError(w, http.StatusBadRequest, "1213", "未正常接收到model参数。")
		return
	case ir.Prompt == "":
		writeError(w, http.StatusBadRequest, "1213", "未正常接收到prompt参数。")
		return
	}
	rep := s.take(req, Reply.forImages)
	if !s.preamble(w, r, rep, false) {
		return
	}
	writeJSON(w, http.StatusOK, zhipuai.ImagesResponse{
		Created: s.now().Unix(),
		Data:    []zhipuai.Image{{URL: s.ts.URL + imagePathPrefix + s.newID() + ".png"}},
	})
}

var (
	pngOnce  sync.Once
	pngBytes []byte
)

// serveImageFile answers any image URL with one small PNG.
func (s *Server) serveImageFile(w http.ResponseWriter, _ *http.Request) {
	pngOnce.Do(func() {
		img := image.NewRGBA(image.Rect(0, 0, 4, 4))
		for i := range 16 {
			img.Set(i%4, i/4, color.RGBA{R: 0x33, G: 0x66, B: 0x99, A: 0xff})
		}
		var buf bytes.Buffer
		_ = png.Encode(&buf, img)
		pngBytes = buf.Bytes()
	})
	w.Header().Set("Content-Type", "image/png")
	_, _ = w.Write(pngBytes)
}

// knownModels is what GET /models lists.
var knownModels = []string{
	"glm-4", "glm-4-plus", "glm-4-air", "glm-4-airx", "glm-4-flash", "glm-4-long",
	"glm-4v", "glm-4v-plus", "glm-4v-flash", "glm-3-turbo", "charglm-3",
	"embedding-2", "embedding-3", "cogview-3", "cogview-3-plus",
}

// models serves GET /models (OpenAI shape).
func (s *Server) models(w http.ResponseWriter, _ *http.Request, req *Request) {
	s.record(req)
	list := zhipuai.ModelList{Object: "list"}
	created := s.now().Unix()
	for _, m := range knownModels {
		list.Data = append(list.Data, zhipuai.Model{ID: m, Object: "model", Created: created, OwnedBy: "zhipuai"})
	}
	writeJSON(w, http.StatusOK, list)
}
