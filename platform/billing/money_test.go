package billing

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
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

// chargeOfEachStep is chargeOf as it was before the list price was priced
// once per settlement: every step priced again. The test below holds the
// two equal.
func chargeOfEachStep(p Price, u Usage, pl plan, parts []Part) Charge {
	c := Charge{Parts: parts[:0], Amount: p.Cost(u), PackageTokens: pl.covered}
	covered := int64(0)
	var cash int64
	for _, t := range pl.takes {
		if t.l.pkg == nil {
			cash += t.n
			continue
		}
		before := cashFor(p, u, covered)
		covered += t.n
		after := cashFor(p, u, covered)
		c.Parts = append(c.Parts, Part{Source: t.l.pkg.id, LeaseID: t.l.id, Tokens: t.n, Micros: Micros(before - after)})
	}
	if cash > 0 {
		tokens := u.PromptTokens + u.CompletionTokens - pl.covered
		if !tokenPriced(p) {
			tokens = 0
		}
		first := true
		for _, t := range pl.takes {
			if t.l.pkg != nil {
				continue
			}
			part := Part{Source: PartCash, LeaseID: t.l.id, Micros: Micros(t.n)}
			if first {
				part.Tokens = tokens
				first = false
			}
			c.Parts = append(c.Parts, part)
		}
	}
	if len(c.Parts) == 0 {
		c.Parts = nil
	}
	c.Cash = Micros(cash)
	c.Shortfall = Micros(pl.cashShort)
	c.Discount = c.Amount - Micros(pl.cashNeed)
	return c
}

// The charge of a settlement prices the request once (twice with
// packages) and is the same, part for part, as pricing every step: over
// prices with and without cached and per-call tiers, usages with cached
// tokens, calls and images, and plans of zero to three packages with cash.
func TestChargeOfPricesOnceSameCharge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	prices := []Price{
		{Input: 100_000, Output: 100_000},
		{Input: 333, Output: 777, CachedInput: 111},
		{Input: 500},
		{Image: 250_000},
		{Input: 1, Output: 3, PerCall: 10_000, CachedInput: 1},
	}
	for i := range 5000 {
		p := prices[i%len(prices)]
		u := Usage{PromptTokens: rng.Int64N(5000), CompletionTokens: rng.Int64N(5000), Calls: rng.Int64N(3), Images: rng.Int64N(3)}
		u.CachedTokens = rng.Int64N(u.PromptTokens + 1)
		var takes []hold
		left := int64(0)
		if tokenPriced(p) {
			left = rng.Int64N(u.PromptTokens + u.CompletionTokens + 1)
		}
		covered := left
		for k := 0; left > 0 && k < 3; k++ {
			n := left
			if k < 2 {
				n = 1 + rng.Int64N(left)
			}
			takes = append(takes, hold{&lease{id: "l", pkg: &pkgScope{id: "p"}}, n})
			left -= n
		}
		covered -= left
		need := cashFor(p, u, covered)
		short := rng.Int64N(need/2 + 1)
		if need-short > 0 {
			takes = append(takes, hold{&lease{id: "c"}, need - short})
		}
		pl := plan{takes: takes, covered: covered, cashNeed: need, cashShort: short}
		got, want := chargeOf(p, u, pl, nil), chargeOfEachStep(p, u, pl, nil)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("price %+v usage %+v covered %d: got %+v, want %+v", p, u, covered, got, want)
		}
	}
}

// BenchmarkChargeOf is the charge of a settlement paid by one package and
// cash, priced once (chargeOf) and at every step (chargeOfEachStep), in
// one process so the two compare at the same load.
func BenchmarkChargeOf(b *testing.B) {
	p := Price{Input: 333, Output: 777, CachedInput: 111}
	u := Usage{PromptTokens: 1200, CachedTokens: 300, CompletionTokens: 800}
	covered := int64(1500)
	need := cashFor(p, u, covered)
	pl := plan{takes: []hold{{&lease{id: "l", pkg: &pkgScope{id: "p"}}, covered}, {&lease{id: "c"}, need}},
		covered: covered, cashNeed: need}
	var parts [2]Part
	b.Run("once", func(b *testing.B) {
		for b.Loop() {
			_ = chargeOf(p, u, pl, parts[:0])
		}
	})
	b.Run("each-step", func(b *testing.B) {
		for b.Loop() {
			_ = chargeOfEachStep(p, u, pl, parts[:0])
		}
	})
}
