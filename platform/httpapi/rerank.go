package httpapi

import (
	"net/http"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// Header that says how a tokenizer count was made (docs/v4.md §11): "exact"
// when a backend counted with the model's tokenizer, "estimate" when glm
// serve estimated it locally (the body says so too, in "estimated").
const headerTokenCount = "X-Glmkit-Token-Count"

// handleTokenizer serves POST /tokenizer: the prompt tokens of a chat
// model's messages and tools. Counting is not billed; a model none of
// whose backends can count gets the local estimate, labelled as one.
func (s *Server) handleTokenizer(x *exchange) {
	var req zhipuai.TokenizerRequest
	if _, ok := x.readJSON(&req); !ok {
		return
	}
	x.call.Row.Model, x.call.Row.RequestID = req.Model, req.RequestID
	if _, err := s.lookupModel(req.Model, "tokenizer", platform.KindChat, platform.KindVision); err != nil {
		x.fail(err)
		return
	}
	if err := zhipuai.ValidateTokenizerRequest(&req); err != nil {
		x.fail(validationError(err))
		return
	}
	estimate := platform.EstimateChatPromptTokens(&zhipuai.ChatCompletionRequest{Model: req.Model, Messages: req.Messages, Tools: req.Tools})
	resp, err := x.call.Tokenize(x.r.Context(), &req, estimate)
	if err != nil {
		x.callFailed(err)
		return
	}
	resp.ID, resp.Created, resp.RequestID = s.stamp(resp.ID, resp.Created, req.RequestID)
	resp.Model = req.Model
	resp.Usage.CompletionTokens = 0
	resp.Usage.TotalTokens = resp.Usage.PromptTokens
	how := "exact"
	if resp.Estimated {
		how = "estimate"
	}
	x.w.Header().Set(headerTokenCount, how)
	if writeJSON(x.w, x.id, http.StatusOK, resp) == nil {
		x.ok(http.StatusOK)
	}
}

// handleRerank serves POST /rerank: a rerank model scores the documents
// against the query, metered on its input like embeddings.
func (s *Server) handleRerank(x *exchange) {
	var req zhipuai.RerankRequest
	if _, ok := x.readJSON(&req); !ok {
		return
	}
	x.call.Row.Model, x.call.Row.RequestID = req.Model, req.RequestID
	if _, err := s.lookupModel(req.Model, "rerank", platform.KindRerank); err != nil {
		x.fail(err)
		return
	}
	if err := zhipuai.ValidateRerankRequest(&req); err != nil {
		x.fail(validationError(err))
		return
	}
	// A cross-encoder reads the query with every document.
	prompt := platform.EstimateTokens(req.Query) * len(req.Documents)
	for _, d := range req.Documents {
		prompt += platform.EstimateTokens(d)
	}
	resp, err := x.call.Rerank(x.r.Context(), &req, prompt)
	if err != nil {
		x.callFailed(err)
		return
	}
	resp.ID, resp.Created, resp.RequestID = s.stamp(resp.ID, resp.Created, req.RequestID)
	resp.Model = req.Model
	if resp.Results == nil {
		resp.Results = []zhipuai.RerankResult{}
	}
	if writeJSON(x.w, x.id, http.StatusOK, resp) == nil {
		x.ok(http.StatusOK)
	}
}

// stamp fills what a backend's reply may leave out: its id and creation
// time, and the request id (the client's, else the reply's id).
func (s *Server) stamp(id string, created int64, requestID string) (string, int64, string) {
	now := s.now()
	if id == "" {
		id = platform.NewID(now)
	}
	if created == 0 {
		created = now.Unix()
	}
	if requestID == "" {
		requestID = id
	}
	return id, created, requestID
}
