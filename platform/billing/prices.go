package billing

import (
	"sort"

	"github.com/glmkit/glmkit/platform"
)

// DefaultPrices is the shipped price table, seeded into billing_prices by
// the store's migrations 0002 and 0010 (TestSeedMatchesDefaultPrices holds
// them equal) and editable afterwards (`glm prices set`). Sources:
// the tutorial's price table (glm-4, glm-4v, glm-3-turbo at 0.1 / 0.1 /
// 0.005 CNY per 1K tokens) and docs/v4.md §7 (embedding-2/-3 0.0005 per 1K on
// input only; glm-4-plus 5 CNY/M, glm-4-air 1/M, glm-4-airx 10/M,
// glm-4-flash free; cogview-3 believed 0.25 CNY per image; charglm-3
// believed 0.015 per 1K). Input and output share one price, as the
// tutorial says "输入输出都进行计费" at a single unit price.
//
// The 2026 models (docs/v4.md §7 "Prices of the 2026 models"): prices
// taken on 2026-04-25 from the cloud's public price page as third-party
// price lists mirrored it, not read on the cloud's page itself, so every
// one of them is believed, not confirmed. The cloud prices these models by
// the prompt's length band; the rows hold the first band (prompt up to
// 32K tokens, short output), the one most calls fall in, so a long call is
// billed below the cloud's price. Cached input is the cloud's cache-hit
// price. No row has a per-call price: whether the cloud bills the chat
// web_search tool per search on top of its tokens is not confirmed, so an
// operator who wants it sets --per-call.
func DefaultPrices() []Price {
	k := func(model, perK string) Price {
		m := mustCNY(perK)
		return Price{Model: model, Input: m, Output: m}
	}
	// t is a 2026 row in CNY per million tokens, as the cloud states them.
	t := func(model, in, cached, out string) Price {
		return Price{Model: model, Input: perMillion(in), CachedInput: perMillion(cached), Output: perMillion(out)}
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
		// 2026 rows: believed (see above).
		t("glm-5.1", "6", "1.2", "24"),
		t("glm-5", "4", "1", "18"),
		t("glm-4.7", "2", "0.4", "8"),
		t("glm-4.6", "2", "0.4", "8"),
		t("glm-4.5", "2", "0.4", "8"),
		t("glm-4.5-x", "8", "1.6", "16"),
		t("glm-4.5-air", "0.8", "0.16", "2"),
		t("glm-4.5-airx", "4", "0.8", "12"),
		t("glm-4.6v", "1", "0.2", "3"),
		t("glm-4.5v", "2", "0.4", "6"),
		{Model: "glm-4.7-flash"},
		{Model: "glm-4.5-flash"},
		{Model: "cogview-4", Image: mustCNY("0.06")},
		{Model: "rerank", Input: perMillion("0.8")},
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Model < ps[j].Model })
	return ps
}

// perMillion converts a price in CNY per million tokens into micros per
// 1K tokens (the table's unit): 2 CNY/M is 0.002 CNY per 1K, 2,000 µ¥.
func perMillion(cny string) Micros { return mustCNY(cny) / 1000 }

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
