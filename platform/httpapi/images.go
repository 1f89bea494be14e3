package httpapi

import (
	"net/http"

	"github.com/glmkit/glmkit/zhipuai"
)

// handleImages serves POST /images/generations (CogView, docs/v4.md §5).
func (s *Server) handleImages(x *exchange) {
	var req zhipuai.ImageRequest
	if _, ok := x.readJSON(&req); !ok {
		return
	}
	x.call.Row.Model, x.call.Row.RequestID = req.Model, req.RequestID
	if _, err := s.validateImages(&req); err != nil {
		x.fail(err)
		return
	}
	resp, err := x.call.Images(x.r.Context(), &req)
	if err != nil {
		x.fail(err)
		return
	}
	if resp.Created == 0 {
		resp.Created = s.now().Unix() // Vercel requires a numeric created (docs/v4.md §5)
	}
	if writeJSON(x.w, x.id, http.StatusOK, resp) == nil {
		x.ok(http.StatusOK)
	}
}
