package anthropic

import (
	"fmt"
	"path"
	"strings"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
)

// Mapping maps the model names an agent sends that match Pattern (a glob:
// * ? [a-z], as in path.Match) to the served model Model.
type Mapping struct {
	Pattern string
	Model   string
}

// ParseMapping parses "PATTERN=MODEL" (the --anthropic-model flag).
func ParseMapping(s string) (Mapping, error) {
	p, m, ok := strings.Cut(s, "=")
	p, m = strings.TrimSpace(p), strings.TrimSpace(m)
	if !ok || p == "" || m == "" {
		return Mapping{}, fmt.Errorf("%q: want PATTERN=MODEL, e.g. claude-sonnet-*=glm-4.6", s)
	}
	if _, err := path.Match(p, ""); err != nil {
		return Mapping{}, fmt.Errorf("%q: bad pattern %q: %w", s, p, err)
	}
	return Mapping{Pattern: p, Model: m}, nil
}

// Models resolves the model an Anthropic request names to a served model
// (docs/anthropic.md §6): the first mapping whose pattern matches, else
// the name itself when the platform serves it (GLM names pass through),
// else, for any claude-* name, the default chat model — so an agent works
// with no mapping configured.
type Models struct {
	Mappings []Mapping
	// Default is the chat model claude-* names map to when no mapping
	// matches; empty: such names are unknown models.
	Default   string
	Catalogue platform.Catalogue
}

// Resolve returns the served model for name, or a 1211 error.
func (m *Models) Resolve(name string) (platform.ModelInfo, error) {
	if name == "" {
		return platform.ModelInfo{}, platform.Errorf(platform.CodeMissingField, "model is required")
	}
	target := ""
	for _, mp := range m.Mappings {
		if ok, _ := path.Match(mp.Pattern, name); ok {
			target = mp.Model
			break
		}
	}
	if target == "" {
		if _, ok := m.Catalogue.Model(name); ok {
			target = name
		} else if strings.HasPrefix(name, "claude-") {
			target = m.Default
		}
	}
	if target == "" {
		return platform.ModelInfo{}, platform.Errorf(platform.CodeUnknownModel,
			"model %s is not served or mapped here; GET /v1/models lists the names this endpoint answers", v4.Quote(name))
	}
	info, ok := m.Catalogue.Model(target)
	if !ok {
		return platform.ModelInfo{}, platform.Errorf(platform.CodeUnknownModel,
			"model %s maps to %s, which this server does not serve", v4.Quote(name), v4.Quote(target))
	}
	if info.Kind != platform.KindChat && info.Kind != platform.KindVision {
		return platform.ModelInfo{}, platform.Errorf(platform.CodeUnsupportedMode,
			"model %s maps to %s, a %s model, which does not answer messages", v4.Quote(name), info.ID, info.Kind)
	}
	return info, nil
}

// List is what GET /v1/models shows: each mapping (its pattern, and the
// model it maps to in the display name), the claude-* default, then the
// served chat models under their own names.
func (m *Models) List(created string) []ModelInfo {
	var out []ModelInfo
	for _, mp := range m.Mappings {
		out = append(out, ModelInfo{Type: "model", ID: mp.Pattern, DisplayName: mp.Pattern + " → " + mp.Model, CreatedAt: created})
	}
	if m.Default != "" {
		out = append(out, ModelInfo{Type: "model", ID: "claude-*", DisplayName: "claude-* → " + m.Default, CreatedAt: created})
	}
	for _, info := range m.Catalogue.Models() {
		if info.Kind == platform.KindChat || info.Kind == platform.KindVision {
			out = append(out, ModelInfo{Type: "model", ID: info.ID, DisplayName: info.ID, CreatedAt: created})
		}
	}
	return out
}

// DefaultChatModel picks the chat model claude-* names map to when the
// operator named none: the first of preferred that is served as a chat
// model, else the first chat model the catalogue lists.
func DefaultChatModel(cat platform.Catalogue, preferred ...string) string {
	for _, name := range preferred {
		if info, ok := cat.Model(name); ok && info.Kind == platform.KindChat {
			return info.ID
		}
	}
	for _, info := range cat.Models() {
		if info.Kind == platform.KindChat {
			return info.ID
		}
	}
	return ""
}
