package httpapi

import (
	"net/http"

	"github.com/glmkit/glmkit/zhipuai"
)

// handleModels serves GET /models: the models this server serves.
func (s *Server) handleModels(x *exchange) {
	models := s.catalogue.Models()
	out := zhipuai.ModelList{Object: "list", Data: make([]zhipuai.Model, 0, len(models))}
	for _, m := range models {
		owner := m.OwnedBy
		if owner == "" {
			owner = "glmkit"
		}
		out.Data = append(out.Data, zhipuai.Model{ID: m.ID, Object: "model", Created: s.started, OwnedBy: owner})
	}
	if writeJSON(x.w, x.id, http.StatusOK, out) == nil {
		x.ok(http.StatusOK)
	}
}
