package admin

// Validators of the operator's corrections (a package revoked or shrunk,
// cash adjusted, an account disabled, a price row deleted), shared by the
// admin API and the glm commands: the same rules and messages on both
// doors. Field names in messages are the API's; the CLI maps them to its
// flags (cmd/glm).

import (
	"strings"

	"github.com/glmkit/glmkit/platform/billing"
)

// MaxReasonBytes bounds a correction's reason.
const MaxReasonBytes = 500

// Reason checks a correction's reason: required, at most MaxReasonBytes.
func Reason(reason string) (string, error) {
	r := strings.TrimSpace(reason)
	if r == "" {
		return "", missing("reason is required: say why the correction is made")
	}
	if len(r) > MaxReasonBytes {
		return "", invalid("reason: at most %d bytes", MaxReasonBytes)
	}
	return r, nil
}

// CashAdjustment checks a signed cash correction: "-5" takes 5 CNY away,
// "5" adds it; zero is refused, and so is more than MaxTopUp either way.
func CashAdjustment(cny Amount) (billing.Micros, error) {
	if !cny.Set {
		return 0, missing("cny is required")
	}
	raw := strings.TrimSpace(cny.Raw)
	neg := strings.HasPrefix(raw, "-")
	v, err := Amount{Raw: strings.TrimPrefix(raw, "-"), Set: true}.Micros("cny")
	if err != nil {
		return 0, err
	}
	if v == 0 || v > MaxTopUp {
		return 0, invalid("cny must not be 0 and at most %s either way", MaxTopUp)
	}
	if neg {
		v = -v
	}
	return v, nil
}

// PackageAdjustment checks a signed token correction of a package.
func PackageAdjustment(tokens *int64) (int64, error) {
	if tokens == nil {
		return 0, missing("tokens is required")
	}
	if *tokens == 0 {
		return 0, invalid("tokens must not be 0: negative shrinks the package, positive grows it")
	}
	return *tokens, nil
}

// Models checks model names against the models served: known reports
// whether this platform serves a name. "*" (every model) is always
// accepted. With force the names are taken as given (a model a backend
// will serve later).
func Models(field string, names []string, known func(string) bool, force bool) error {
	if force || known == nil {
		return nil
	}
	var unknown []string
	for _, n := range names {
		if n != "*" && !known(n) {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		return invalid("%s: no model %s is served here (check the name, or force it for a model a backend will serve later)",
			field, strings.Join(unknown, ", "))
	}
	return nil
}
