package billing

import (
	"errors"
	"math"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

func TestParseCNY(t *testing.T) {
	good := map[string]Micros{
		"0.1": 100_000, "0.005": 5000, "0.0005": 500, "0.25": 250_000, "12": 12_000_000,
		"¥1.4610": 1_461_000, " 0.000001 ": 1, "0": 0, ".5": 500_000, "3.": 3_000_000, "0.1000000": 100_000,
	}
	for in, want := range good {
		got, err := ParseCNY(in)
		if err != nil || got != want {
			t.Errorf("ParseCNY(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "0.0000001", "1e3", "abc", "1.2.3", "99999999999999999999"} {
		if _, err := ParseCNY(in); !errors.Is(err, ErrBadAmount) {
			t.Errorf("ParseCNY(%q) err %v, want ErrBadAmount", in, err)
		}
	}
	if s := Micros(1_461_000).String(); s != "1.461000" {
		t.Errorf("String = %q", s)
	}
	if s := Micros(-5).String(); s != "-0.000005" {
		t.Errorf("String = %q", s)
	}
}

// The rounding rule: once per request, up to the micro.
func TestTokenCostRounding(t *testing.T) {
	emb := Price{Input: 500}                       // embedding-2: 0.0005 CNY/1K = 0.5 µ¥/token
	glm4 := Price{Input: 100_000, Output: 100_000} // 0.1 CNY/1K
	cases := []struct {
		p       Price
		in, out int64
		want    Micros
	}{
		{emb, 1, 0, 1},    // 0.5 → 1
		{emb, 2, 0, 1},    // exactly 1
		{emb, 3, 0, 2},    // 1.5 → 2
		{emb, 3, 100, 2},  // output is free for embeddings
		{glm4, 1, 0, 100}, // 100 µ¥ per token
		{glm4, 200, 800, 100_000},
		{Price{Input: 1, Output: 3}, 1, 1, 1}, // (1+3)/1000 → 1
		{Price{}, 1 << 40, 1 << 40, 0},
	}
	for _, c := range cases {
		if got := c.p.TokenCost(c.in, c.out); got != c.want {
			t.Errorf("%+v.TokenCost(%d, %d) = %d, want %d", c.p, c.in, c.out, got, c.want)
		}
	}
	huge := Price{Input: math.MaxInt64, Output: math.MaxInt64}
	if got := huge.TokenCost(math.MaxInt64, math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("overflow not clamped: %d", got)
	}
	if got := (Price{Image: 250_000}).ImageCost(3); got != 750_000 {
		t.Errorf("ImageCost = %d", got)
	}
}

// Package parts are valued so that they sum to the discount exactly,
// whatever the rounding.
func TestChargeOfPartsSumExactly(t *testing.T) {
	p := Price{Input: 333, Output: 777}
	for covered := int64(0); covered <= 30; covered++ {
		u := Usage{PromptTokens: 13, CompletionTokens: 17}
		a := &account{}
		var takes []hold
		left := covered
		for i := 0; left > 0; i++ {
			n := min(left, int64(i%3+1))
			takes = append(takes, hold{&lease{pkg: &pkgScope{id: "p"}}, n})
			left -= n
		}
		_ = a
		need := cashFor(p, u, covered)
		takes = append(takes, hold{&lease{}, need})
		c := chargeOf(p, u, plan{takes: takes, covered: covered, cashNeed: need}, nil)
		var sum Micros
		for _, part := range c.Parts {
			if part.Source != PartCash {
				sum += part.Micros
			}
		}
		if sum != c.Discount || c.Amount != c.Discount+c.Cash+c.Shortfall || c.Amount != p.TokenCost(13, 17) {
			t.Errorf("covered %d: %+v (parts %d)", covered, c, sum)
		}
	}
}

func TestDefaultPrices(t *testing.T) {
	want := map[string]Price{
		"glm-4":                    {Input: 100_000, Output: 100_000},
		"glm-4v":                   {Input: 100_000, Output: 100_000},
		"glm-3-turbo":              {Input: 5000, Output: 5000},
		"embedding-2":              {Input: 500},
		"embedding-3":              {Input: 500},
		"glm-4-plus":               {Input: 5000, Output: 5000},
		"glm-4-air":                {Input: 1000, Output: 1000},
		"glm-4-airx":               {Input: 10_000, Output: 10_000},
		"glm-4-flash":              {},
		"cogview-3":                {Image: 250_000},
		platform.BuiltinEmbedModel: {},
	}
	got := map[string]Price{}
	for _, p := range DefaultPrices() {
		m := p.Model
		p.Model = ""
		got[m] = p
	}
	for m, w := range want {
		if g, ok := got[m]; !ok || g != w {
			t.Errorf("%s: %+v, want %+v", m, g, w)
		}
	}
}
