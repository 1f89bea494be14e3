package httpapi

import (
	"net/http"

	"github.com/glmkit/glmkit/zhipuai"
)

// handleEmbeddings serves POST /embeddings (docs/v4.md §5). Vectors are floats,
// or base64 of little-endian float32 when encoding_format is "base64" —
// the OpenAI Node SDK's default, which decodes floats into garbage
// (docs/v4.md §10).
func (s *Server) handleEmbeddings(x *exchange) {
	var req zhipuai.EmbeddingRequest
	if _, ok := x.readJSON(&req); !ok {
		return
	}
	x.call.Row.Model, x.call.Row.RequestID = req.Model, req.RequestID
	_, prompt, err := s.validateEmbeddings(&req)
	if err != nil {
		x.fail(err)
		return
	}
	// The call bills input only (docs/v4.md §7) and says so in resp.Usage.
	resp, err := x.call.Embeddings(x.r.Context(), &req, prompt)
	if err != nil {
		x.fail(err)
		return
	}
	if resp.Object == "" {
		resp.Object = "list"
	}
	if resp.Model == "" {
		resp.Model = req.Model
	}
	if req.EncodingFormat != zhipuai.EncodingBase64 {
		for i := range resp.Data {
			if resp.Data[i].Object == "" {
				resp.Data[i].Object = "embedding"
			}
		}
		if writeJSON(x.w, x.id, http.StatusOK, resp) == nil {
			x.ok(http.StatusOK)
		}
		return
	}
	type b64Embedding struct {
		Index     int    `json:"index"`
		Object    string `json:"object"`
		Embedding string `json:"embedding"`
	}
	out := struct {
		Model  string         `json:"model"`
		Object string         `json:"object"`
		Data   []b64Embedding `json:"data"`
		Usage  zhipuai.Usage  `json:"usage"`
	}{Model: resp.Model, Object: resp.Object, Usage: resp.Usage, Data: make([]b64Embedding, len(resp.Data))}
	for i, d := range resp.Data {
		out.Data[i] = b64Embedding{Index: d.Index, Object: "embedding", Embedding: zhipuai.EncodeBase64Vector(d.Embedding)}
	}
	if writeJSON(x.w, x.id, http.StatusOK, out) == nil {
		x.ok(http.StatusOK)
	}
}
