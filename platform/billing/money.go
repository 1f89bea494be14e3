package billing

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Micros is an amount of money in 1e-6 CNY ("µ¥"). Money is an exact
// integer everywhere (docs/design.md §3 "Money"): no float ever
// holds an amount, a price or a charge. One micro is the finest unit a bill
// shows, so every charge is a whole number of micros.
type Micros int64

// MicrosPerCNY is the number of micros in one yuan.
const MicrosPerCNY Micros = 1_000_000

// ErrBadAmount is returned for a decimal string that is not an exact,
// non-negative amount of at most six decimals.
var ErrBadAmount = errors.New("billing: bad amount")

// ParseCNY parses a decimal yuan amount such as "0.1", "12", "0.0005" or
// "¥1.4610" into micros. It is exact: more than six decimals (finer than a
// micro) or a negative sign is an error rather than a silent rounding, so a
// price typed by an operator is stored as typed.
func ParseCNY(s string) (Micros, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(t, "¥")
	t = strings.TrimSpace(t)
	if t == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadAmount)
	}
	whole, frac, _ := strings.Cut(t, ".")
	if whole == "" {
		whole = "0"
	}
	if strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %q", ErrBadAmount, s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 6 {
		return 0, fmt.Errorf("%w: %q has more than 6 decimals (finer than 1e-6 CNY)", ErrBadAmount, s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/int64(MicrosPerCNY)-1 {
		return 0, fmt.Errorf("%w: %q too large", ErrBadAmount, s)
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	return Micros(w)*MicrosPerCNY + Micros(f), nil
}

// String formats m as yuan with all six decimals ("0.100000"), so a bill
// printed and parsed back is the same number.
func (m Micros) String() string {
	sign := ""
	v := int64(m)
	if v < 0 {
		sign = "-"
		v = -v
	}
	return fmt.Sprintf("%s%d.%06d", sign, v/int64(MicrosPerCNY), v%int64(MicrosPerCNY))
}

// mulDivCeil returns ceil(a*b/d) for non-negative a, b and positive d,
// using 128-bit intermediates so a large token count times a price cannot
// overflow silently; a result beyond int64 is clamped (it cannot be paid
// anyway).
func mulDivCeil(a, b, d int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(d) {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, uint64(d))
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// addSat adds without wrapping past int64 (amounts are clamped, never
// wrapped to negative).
func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Price is the list price of one model (docs/v4.md §7, docs/design.md §7
// "Tiers"). Token prices are per 1,000 tokens, the unit the tutorial's
// price table uses ("0.1元 / 千tokens"); Image is per generated image
// (CogView) and PerCall per use of a tool the cloud bills per call
// (web_search). Embedding models have Output 0: they are billed on input
// only (docs/v4.md §7).
type Price struct {
	Model string
	Input Micros // per 1K prompt tokens not served from the prompt cache
	// CachedInput is per 1K prompt tokens served from the upstream's
	// prompt cache; 0 means the input price (platform.ModelPrice's rule),
	// so a row written before cached prices existed never bills them lower.
	CachedInput Micros
	Output      Micros // per 1K completion tokens, reasoning tokens included
	PerCall     Micros // per billed tool call
	Image       Micros // per image
}

// Cached is the price per 1K cached prompt tokens: CachedInput, or Input
// when unset.
func (p Price) Cached() Micros {
	if p.CachedInput == 0 {
		return p.Input
	}
	return p.CachedInput
}

// Free reports whether nothing about the model costs money. Free models
// (glm-4-flash, the builtin embedder) never touch packages or cash: a free
// call must not drain a resource package.
func (p Price) Free() bool {
	return p.Input == 0 && p.Output == 0 && p.Image == 0 && p.PerCall == 0 && p.Cached() == 0
}

// Scaled is p at percent of its list price, each price rounded up to the
// micro: the batch price (docs/design.md §7 "Batch price"). Rounding each
// per-1K price up keeps a batch call never below percent of the list, and
// the row keeps the scaled prices, so its charge is recomputed from it.
func (p Price) Scaled(percent int64) Price {
	if percent == 100 {
		return p
	}
	s := func(m Micros) Micros { return Micros(mulDivCeil(int64(m), percent, 100)) }
	q := Price{Model: p.Model, Input: s(p.Input), Output: s(p.Output), PerCall: s(p.PerCall), Image: s(p.Image)}
	if p.CachedInput != 0 {
		q.CachedInput = s(p.CachedInput)
		if q.CachedInput == 0 {
			// A cached price that scales to nothing stays one micro per
			// 1K, not "same as input".
			q.CachedInput = 1
		}
	}
	return q
}

// Nanos is an amount in 1e-9 CNY: a token count times a price per 1K
// tokens in micros is an exact number of nanos, so the parts of a charge
// by tier are exact before the request's one rounding up to the micro.
type Nanos int64

// String formats n as yuan with nine decimals.
func (n Nanos) String() string {
	sign := ""
	v := int64(n)
	if v < 0 {
		sign = "-"
		v = -v
	}
	return fmt.Sprintf("%s%d.%09d", sign, v/1_000_000_000, v%1_000_000_000)
}

// TierCost is a request's list price by tier, exact in nanos, before the
// one rounding up to the micro (docs/design.md §7 "Tiers").
type TierCost struct {
	Input       Nanos `json:"input_nanos"`        // uncached prompt tokens
	CachedInput Nanos `json:"cached_input_nanos"` // cached prompt tokens
	Output      Nanos `json:"output_nanos"`       // completion tokens, reasoning included
	PerCall     Nanos `json:"per_call_nanos"`     // billed tool calls
	Image       Nanos `json:"image_nanos"`        // images
	// Unsplit is the amount of rows charged before prices had tiers.
	Unsplit Nanos `json:"unsplit_nanos,omitempty"`
}

func (t *TierCost) add(o TierCost) {
	t.Input += o.Input
	t.CachedInput += o.CachedInput
	t.Output += o.Output
	t.PerCall += o.PerCall
	t.Image += o.Image
	t.Unsplit += o.Unsplit
}

// Sum is the tiers added up.
func (t TierCost) Sum() Nanos {
	n := int64(0)
	for _, v := range []Nanos{t.Input, t.CachedInput, t.Output, t.PerCall, t.Image, t.Unsplit} {
		n = addSat(n, int64(v))
	}
	return Nanos(n)
}

// Tiers splits the list price of u by tier. Cached tokens are a part of
// PromptTokens (docs/v4.md §11), so the input tier counts only the rest
// and no cached token is billed twice; reasoning tokens are a part of
// CompletionTokens and billed as output.
func (p Price) Tiers(u Usage) TierCost {
	cached := min(max(u.CachedTokens, 0), max(u.PromptTokens, 0))
	return TierCost{
		Input:       Nanos(mulSat(max(u.PromptTokens, 0)-cached, int64(p.Input))),
		CachedInput: Nanos(mulSat(cached, int64(p.Cached()))),
		Output:      Nanos(mulSat(max(u.CompletionTokens, 0), int64(p.Output))),
		PerCall:     Nanos(mulSat(mulSat(max(u.Calls, 0), int64(p.PerCall)), 1000)),
		Image:       Nanos(mulSat(mulSat(max(u.Images, 0), int64(p.Image)), 1000)),
	}
}

// Cost is the list price of u, rounded UP to the micro once per request:
// (prompt − cached) × input + cached × cached + completion × output per
// 1K tokens, plus calls and images. Rounding once per request, not per
// token or tier, keeps a cheap model cheap (one embedding-2 token is
// 0.5 µ¥) while never charging less than the list price.
func (p Price) Cost(u Usage) Micros {
	n := int64(p.Tiers(u).Sum())
	if n == math.MaxInt64 {
		return math.MaxInt64
	}
	return Micros(n/1000 + min(n%1000, 1))
}

// mulSat multiplies non-negative a and b, clamping at int64's maximum.
func mulSat(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// TokenCost is the list price of in prompt and out completion tokens
// (none cached), rounded up to the micro once (Cost).
func (p Price) TokenCost(in, out int64) Micros {
	return p.Cost(Usage{PromptTokens: in, CompletionTokens: out})
}

// ImageCost is the price of n images.
func (p Price) ImageCost(n int64) Micros {
	return Micros(mulDivCeil(n, int64(p.Image), 1))
}
