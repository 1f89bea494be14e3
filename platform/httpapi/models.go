package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// handleModels serves GET /models: the models this server serves, each with
// its kind, context window, output limit, capabilities and list price
// (docs/v4.md §11).
func (s *Server) handleModels(x *exchange) {
	models := s.catalogue.Models()
	out := zhipuai.ModelList{Object: "list", Data: make([]zhipuai.Model, 0, len(models))}
	for _, m := range models {
		owner := m.OwnedBy
		if owner == "" {
			owner = "glmkit"
		}
		e := zhipuai.Model{ID: m.ID, Object: "model", Created: s.started, OwnedBy: owner,
			Kind: string(m.Kind), ContextWindow: m.ContextTokens, MaxOutputTokens: m.MaxOutput}
		if m.Chat() {
			e.Capabilities = &zhipuai.ModelCapabilities{Thinking: m.Caps.Thinking, Tools: m.Caps.Tools, Vision: m.Caps.Vision}
		}
		if s.opts.Prices != nil {
			if p, ok := s.opts.Prices.ModelPrice(m.ID); ok {
				e.Pricing = pricing(p)
			}
		}
		out.Data = append(out.Data, e)
	}
	if writeJSON(x.w, x.id, http.StatusOK, out) == nil {
		x.ok(http.StatusOK)
	}
}

// pricing writes a price in CNY; an image model shows its image price, a
// token model its token prices (0 shown as "0": free is a price).
func pricing(p platform.ModelPrice) *zhipuai.ModelPricing {
	out := &zhipuai.ModelPricing{Currency: "CNY"}
	if p.Image != 0 {
		out.Image = cny(p.Image)
	}
	if p.Image == 0 || p.Input != 0 || p.Output != 0 {
		out.Input, out.Output = cny(p.Input), cny(p.Output)
		if p.CachedInput != 0 {
			out.CachedInput = cny(p.CachedInput)
		}
	}
	return out
}

// cny formats 1e-6 CNY as a decimal string without trailing zeros.
func cny(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	frac := strings.TrimRight(fmt.Sprintf("%06d", micros%1_000_000), "0")
	if frac == "" {
		return fmt.Sprintf("%s%d", sign, micros/1_000_000)
	}
	return fmt.Sprintf("%s%d.%s", sign, micros/1_000_000, frac)
}
