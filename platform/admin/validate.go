package admin

// One validator for what the operator's two doors (the admin HTTP API and
// the glm commands) both accept: package grants, top-ups, prices and limit
// rules. Errors are *platform.Error with 1213 (missing) or 1214 (bad
// value); the API answers them as they are (HTTP 400), the commands print
// their message.

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/envelope"
)

func missing(format string, args ...any) error {
	return platform.Errorf(platform.CodeMissingField, format, args...)
}

func invalid(format string, args ...any) error {
	return platform.Errorf(platform.CodeInvalidField, format, args...)
}

// ValidAccountID: ids go into URLs, CSV files and logs; keep them plain.
func ValidAccountID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// ParseTime reads a time field: RFC 3339, or a date / "YYYY-MM-DD
// hh:mm:ss" in Beijing time (the billing zone).
func ParseTime(field, s string) (time.Time, error) {
	if t, ok := billing.ParseTime(s); ok {
		return t, nil
	}
	return time.Time{}, invalid("%s %s: want RFC 3339, YYYY-MM-DD or \"YYYY-MM-DD hh:mm:ss\" (Beijing time)", field, envelope.Quote(s))
}

// Amount is an amount in CNY as the operator wrote it: "0.1" or 0.1 in
// JSON, a flag's text on the command line. The literal text is parsed
// exactly by billing.ParseCNY, so a JSON number never passes through a
// float.
type Amount struct {
	Raw string
	Set bool
}

// CNY is an Amount given as text (a command-line flag); "" is not set.
func CNY(s string) Amount { return Amount{Raw: s, Set: s != ""} }

// UnmarshalJSON keeps the literal text of a string or number.
func (c *Amount) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	c.Set = true
	if len(b) > 0 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return fmt.Errorf("amount %s is not a string", b)
		}
		c.Raw = s
		return nil
	}
	c.Raw = string(b)
	return nil
}

// Micros parses the amount; field names the input in the 1214 message.
func (c Amount) Micros(field string) (billing.Micros, error) {
	v, err := billing.ParseCNY(c.Raw)
	if err != nil {
		return 0, invalid("%s %s: want CNY with at most 6 decimals, e.g. \"0.1\"", field, envelope.Quote(c.Raw))
	}
	if v < 0 {
		return 0, invalid("%s must not be negative", field)
	}
	return v, nil
}

// MaxGrantDays bounds a package's validity (100 years), so an expiry is
// always a representable time.
const MaxGrantDays = 36500

// MaxNameBytes bounds package and account names.
const MaxNameBytes = 200

// GrantInput is a package grant as the operator wrote it.
type GrantInput struct {
	AccountID   string
	Tokens      *int64
	Days        *int
	ExpiresAt   string
	EffectiveAt string
	Models      []string
	Name        string
	Type        string
}

// Grant validates the input and returns the grant, effective at now unless
// EffectiveAt says otherwise.
func (in GrantInput) Grant(now time.Time) (billing.Grant, error) {
	switch {
	case in.Tokens == nil:
		return billing.Grant{}, missing("tokens is required")
	case *in.Tokens <= 0:
		return billing.Grant{}, invalid("tokens must be positive")
	case in.Days == nil && in.ExpiresAt == "":
		return billing.Grant{}, missing("days (or expires_at) is required")
	case in.Days != nil && in.ExpiresAt != "":
		return billing.Grant{}, invalid("give days or expires_at, not both")
	case in.Days != nil && (*in.Days <= 0 || *in.Days > MaxGrantDays):
		return billing.Grant{}, invalid("days must be between 1 and %d", MaxGrantDays)
	case in.Type != "" && in.Type != billing.KindGift && in.Type != billing.KindPurchased:
		return billing.Grant{}, invalid("type %s: want gift or purchased", envelope.Quote(in.Type))
	case len(in.Name) > MaxNameBytes:
		return billing.Grant{}, invalid("name: at most %d bytes", MaxNameBytes)
	}
	for _, m := range in.Models {
		if strings.TrimSpace(m) == "" || strings.Contains(m, ",") {
			return billing.Grant{}, invalid("models: each entry is one model name")
		}
	}
	g := billing.Grant{AccountID: in.AccountID, Name: in.Name, Kind: in.Type, Tokens: *in.Tokens, Models: in.Models,
		PurchasedAt: now, EffectiveAt: now}
	var err error
	if in.EffectiveAt != "" {
		if g.EffectiveAt, err = ParseTime("effective_at", in.EffectiveAt); err != nil {
			return billing.Grant{}, err
		}
	}
	if in.Days != nil {
		g.ExpiresAt = g.EffectiveAt.AddDate(0, 0, *in.Days)
	} else if g.ExpiresAt, err = ParseTime("expires_at", in.ExpiresAt); err != nil {
		return billing.Grant{}, err
	}
	if !g.ExpiresAt.After(g.EffectiveAt) {
		return billing.Grant{}, invalid("expires_at must be after effective_at")
	}
	return g, nil
}

// MaxTopUp bounds one top-up (¥1e9) so sums stay far from int64 limits.
const MaxTopUp = billing.Micros(1_000_000_000) * billing.MicrosPerCNY

// MaxNoteBytes bounds a top-up's note.
const MaxNoteBytes = 500

// TopUp validates a top-up and returns its amount.
func TopUp(cny Amount, note string) (billing.Micros, error) {
	if !cny.Set {
		return 0, missing("cny is required")
	}
	amount, err := cny.Micros("cny")
	if err != nil {
		return 0, err
	}
	if amount == 0 || amount > MaxTopUp {
		return 0, invalid("cny must be positive and at most %s", MaxTopUp)
	}
	if len(note) > MaxNoteBytes {
		return 0, invalid("note: at most %d bytes", MaxNoteBytes)
	}
	return amount, nil
}

// ValidModel checks a model name of the price table ('*' included).
func ValidModel(model string) error {
	if model == "" || len(model) > 128 || strings.ContainsAny(model, " \t\r\n,") {
		return invalid("model %s: not a model name", envelope.Quote(model))
	}
	return nil
}

// PriceInput is a price change: Price sets input and output; fields left
// out keep their current value. CachedInput is per 1K prompt tokens served
// from the upstream's cache (0 = the input price) and PerCall per billed
// tool call (docs/design.md §7 "Tiers").
type PriceInput struct {
	Price, Input, CachedInput, Output, PerCall, Image Amount
}

// Check validates the shape of the change (which fields), before the
// current price is read.
func (in PriceInput) Check(model string) error {
	if err := ValidModel(model); err != nil {
		return err
	}
	if !in.Price.Set && !in.Input.Set && !in.CachedInput.Set && !in.Output.Set && !in.PerCall.Set && !in.Image.Set {
		return missing("price, input, cached_input, output, per_call or image is required")
	}
	if in.Price.Set && (in.Input.Set || in.Output.Set) {
		return invalid("give price, or input and output, not both")
	}
	return nil
}

// Apply validates the change and returns cur with it applied.
func (in PriceInput) Apply(cur billing.Price) (billing.Price, error) {
	if err := in.Check(cur.Model); err != nil {
		return billing.Price{}, err
	}
	if in.Price.Set {
		in.Input, in.Output = in.Price, in.Price
	}
	for _, f := range []struct {
		name string
		v    Amount
		dst  *billing.Micros
	}{{"input", in.Input, &cur.Input}, {"cached_input", in.CachedInput, &cur.CachedInput}, {"output", in.Output, &cur.Output},
		{"per_call", in.PerCall, &cur.PerCall}, {"image", in.Image, &cur.Image}} {
		if !f.v.Set {
			continue
		}
		v, err := f.v.Micros(f.name)
		if err != nil {
			return billing.Price{}, err
		}
		*f.dst = v
	}
	return cur, nil
}
