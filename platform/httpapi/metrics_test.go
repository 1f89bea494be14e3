package httpapi

import (
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// TestMetricsSeriesMadeWhenCounted: the kept series count into the
// vectors' own series, and a series still appears only once counted (no
// zero series for a kind or a status never seen).
func TestMetricsSeriesMadeWhenCounted(t *testing.T) {
	m := NewMetrics()
	m.Tokens("glm-4", platform.Usage{PromptTokens: 3})
	m.Tokens("glm-4", platform.Usage{PromptTokens: 2})
	m.Tokens("glm-4-plus", platform.Usage{CompletionTokens: 7})
	ok := platform.RequestLog{Endpoint: platform.EndpointChat, HTTPStatus: 200}
	bad := platform.RequestLog{Endpoint: platform.EndpointChat, HTTPStatus: 400, ErrorCode: platform.CodeInvalidField}
	m.observe(&ok, 0)
	m.observe(&ok, 0)
	m.observe(&bad, 0)
	got := map[string]float64{}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			name := f.GetName()
			for _, l := range s.GetLabel() {
				name += " " + l.GetName() + "=" + l.GetValue()
			}
			if c := s.GetCounter(); c != nil {
				got[name] = c.GetValue()
			}
		}
	}
	want := map[string]float64{
		"glm_tokens_total kind=prompt model=glm-4":                                                                 5,
		"glm_tokens_total kind=completion model=glm-4-plus":                                                        7,
		"glm_requests_total code= route=" + platform.EndpointChat + " status=200":                                  2,
		"glm_requests_total code=" + platform.CodeInvalidField + " route=" + platform.EndpointChat + " status=400": 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %v, want %v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && (strings.HasPrefix(k, "glm_tokens_total") || strings.HasPrefix(k, "glm_requests_total")) {
			t.Errorf("series %s: got it, want none (never counted)", k)
		}
	}
}
