package zhipuaitest

import (
	"cmp"
	"net/http"
	"sort"
	"strings"

	"github.com/glmkit/glmkit/zhipuai"
)

// tokenizer serves POST /tokenizer (docs/v4.md §11): the count is the
// server's own chat prompt estimate (promptTokens plus the tool
// definitions), so a test can tell a count forwarded from here from one a
// gateway estimated itself. An Error from the queue answers instead.
func (s *Server) tokenizer(w http.ResponseWriter, r *http.Request, req *Request) {
	var tr zhipuai.TokenizerRequest
	if err := unmarshal(req.Body, &tr); err != nil {
		s.record(req)
		writeError(w, http.StatusBadRequest, "1210", "API 调用参数有误，请检查文档。"+err.Error())
		return
	}
	s.record(req)
	if err := zhipuai.ValidateTokenizerRequest(&tr); err != nil {
		writeError(w, http.StatusBadRequest, "1214", err.Error())
		return
	}
	rep := s.take(req, Reply.forImages)
	if !s.preamble(w, r, rep, false) {
		return
	}
	n := promptTokens(&zhipuai.ChatCompletionRequest{Messages: tr.Messages})
	for _, t := range tr.Tools {
		n += tokens(string(marshal(t)))
	}
	id := s.newID()
	writeJSON(w, http.StatusOK, zhipuai.TokenizerResponse{ID: id, RequestID: cmp.Or(tr.RequestID, id), Created: s.now().Unix(),
		Usage: zhipuai.Usage{PromptTokens: n, TotalTokens: n}})
}

// rerank serves POST /rerank (docs/v4.md §11). A document's score is the
// share of the query's distinct words (or, for text without spaces, runes)
// it contains, so the order is predictable; ties keep the input order.
func (s *Server) rerank(w http.ResponseWriter, r *http.Request, req *Request) {
	var rr zhipuai.RerankRequest
	if err := unmarshal(req.Body, &rr); err != nil {
		s.record(req)
		writeError(w, http.StatusBadRequest, "1210", "API 调用参数有误，请检查文档。"+err.Error())
		return
	}
	s.record(req)
	if err := zhipuai.ValidateRerankRequest(&rr); err != nil {
		writeError(w, http.StatusBadRequest, "1214", err.Error())
		return
	}
	rep := s.take(req, Reply.forImages)
	if !s.preamble(w, r, rep, false) {
		return
	}
	results := make([]zhipuai.RerankResult, len(rr.Documents))
	n := tokens(rr.Query)
	for i, d := range rr.Documents {
		results[i] = zhipuai.RerankResult{Index: i, RelevanceScore: LexicalScore(rr.Query, d)}
		if rr.ReturnDocuments {
			results[i].Document = d
		}
		n += tokens(d)
	}
	sort.SliceStable(results, func(i, j int) bool { return results[i].RelevanceScore > results[j].RelevanceScore })
	if rr.TopN != nil && *rr.TopN > 0 && *rr.TopN < len(results) {
		results = results[:*rr.TopN]
	}
	id := s.newID()
	writeJSON(w, http.StatusOK, zhipuai.RerankResponse{ID: id, RequestID: cmp.Or(rr.RequestID, id), Created: s.now().Unix(),
		Results: results, Usage: zhipuai.Usage{PromptTokens: n, TotalTokens: n}})
}

// LexicalScore is the fake reranker's score of doc for query, in [0, 1]:
// the share of the query's distinct words (runes when the query has no
// space) found in doc, case-folded.
func LexicalScore(query, doc string) float64 {
	q, d := strings.ToLower(query), strings.ToLower(doc)
	var units []string
	if strings.ContainsAny(q, " \t\n") {
		units = strings.Fields(q)
	} else {
		for _, r := range q {
			units = append(units, string(r))
		}
	}
	seen := map[string]bool{}
	hit := 0
	for _, u := range units {
		if seen[u] {
			continue
		}
		seen[u] = true
		if strings.Contains(d, u) {
			hit++
		}
	}
	if len(seen) == 0 {
		return 0
	}
	return float64(hit) / float64(len(seen))
}
