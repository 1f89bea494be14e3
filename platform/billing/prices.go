package billing

import (
	"sort"

	"github.com/glmkit/glmkit/platform"
)

// DefaultPrices is the shipped price table, seeded into billing_prices by
// the store's billing migration (TestSeedMatchesDefaultPrices holds the
// two equal) and editable afterwards (`glm prices set`). Sources:
// the tutorial's price table (glm-4, glm-4v, glm-3-turbo at 0.1 / 0.1 /
// 0.005 CNY per 1K tokens) and docs/v4.md §7 (embedding-2/-3 0.0005 per 1K on
// input only; glm-4-plus 5 CNY/M, glm-4-air 1/M, glm-4-airx 10/M,
// glm-4-flash free; cogview-3 believed 0.25 CNY per image; charglm-3
// believed 0.015 per 1K). Input and output share one price, as the
// tutorial says "输入输出都进行计费" at a single unit price.
func DefaultPrices() []Price {
	k := func(model, perK string) Price {
		m := mustCNY(perK)
		return Price{Model: model, Input: m, Output: m}
	}
	ps := []Price{
		k("glm-4", "0.1"),
		k("glm-4-0520", "0.1"),
		k("glm-4v", "0.1"),
		k("glm-3-turbo", "0.005"),
		k("glm-4-plus", "0.005"),
		k("glm-4-air", "0.001"),
		k("glm-4-airx", "0.01"),
		k("glm-4-flash", "0"),
		k("glm-4v-flash", "0"),
		k("charglm-3", "0.015"),
		{Model: "embedding-2", Input: mustCNY("0.0005")},
		{Model: "embedding-3", Input: mustCNY("0.0005")},
		{Model: "cogview-3", Image: mustCNY("0.25")},
		{Model: "cogview-3-flash"},
		{Model: platform.BuiltinEmbedModel},
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Model < ps[j].Model })
	return ps
}

// FallbackModel is the price-table row used for a model that has no row of
// its own. It is not shipped: without it an unpriced model (say a local
// vLLM model the operator added) is free, which is what a self-hosted
// engine costs; an operator who wants every unknown model billed sets
// `glm prices set '*' …`.
const FallbackModel = "*"

func mustCNY(s string) Micros {
	m, err := ParseCNY(s)
	if err != nil {
		panic(err)
	}
	return m
}
