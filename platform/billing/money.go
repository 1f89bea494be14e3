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

// Price is the list price of one model (docs/v4.md §7). Token
// prices are per 1,000 tokens, the unit the tutorial's price table uses
// ("0.1元 / 千tokens"); Image is per generated image (CogView). Embedding
// models have Output 0: they are billed on input only (docs/v4.md §7).
type Price struct {
	Model  string
	Input  Micros // per 1K prompt tokens
	Output Micros // per 1K completion tokens
	Image  Micros // per image
}

// Free reports whether nothing about the model costs money. Free models
// (glm-4-flash, the builtin embedder) never touch packages or cash: a free
// call must not drain a resource package.
func (p Price) Free() bool { return p.Input == 0 && p.Output == 0 && p.Image == 0 }

// TokenCost is the list price of in prompt and out completion tokens,
// rounded UP to the micro once per request. Rounding once per request, not per token, keeps a cheap model
// cheap (one embedding-2 token is 0.5 µ¥) while never charging less than
// the list price.
func (p Price) TokenCost(in, out int64) Micros {
	// ceil((in*Input + out*Output) / 1000) computed without overflow: the
	// two products are summed as 128-bit numbers.
	if in < 0 {
		in = 0
	}
	if out < 0 {
		out = 0
	}
	h1, l1 := bits.Mul64(uint64(in), uint64(max(p.Input, 0)))
	h2, l2 := bits.Mul64(uint64(out), uint64(max(p.Output, 0)))
	lo, carry := bits.Add64(l1, l2, 0)
	hi := h1 + h2 + carry
	if hi >= 1000 {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, 1000)
	if r != 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return Micros(q)
}

// ImageCost is the price of n images.
func (p Price) ImageCost(n int64) Micros {
	return Micros(mulDivCeil(n, int64(p.Image), 1))
}
