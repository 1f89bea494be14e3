// Package v4auth owns the V4 API key and token formats, both sides of the
// wire: splitting an "id.secret" key, signing the tutorial's JWT, and
// verifying whatever the real clients send (docs/v4.md §2, §10).
//
// Signing is hand-built so that the bytes match what the tutorial's PyJWT
// code produces; verification goes through golang-jwt restricted to HS256.
package v4auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Errors of key and token handling. Each maps to one V4 code (docs/v4.md §2):
// ErrMissing → 1001, ErrMalformed and ErrUnknownKey → 1002, ErrExpired →
// 1003, ErrSignature → 1004.
var (
	ErrMissing    = errors.New("no authorization")
	ErrMalformed  = errors.New("malformed api key or token")
	ErrUnknownKey = errors.New("unknown api key")
	ErrExpired    = errors.New("token expired")
	ErrSignature  = errors.New("token signature invalid")
)

// Code returns the V4 error code for an error of this package ("1000" for
// anything else).
func Code(err error) string {
	switch {
	case errors.Is(err, ErrMissing):
		return "1001"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrUnknownKey):
		return "1002"
	case errors.Is(err, ErrExpired):
		return "1003"
	case errors.Is(err, ErrSignature):
		return "1004"
	}
	return "1000"
}

// SplitKey splits "id.secret". It never echoes the key in its error.
func SplitKey(key string) (id, secret string, err error) {
	id, secret, ok := strings.Cut(key, ".")
	if !ok || id == "" || secret == "" || strings.Contains(secret, ".") ||
		strings.ContainsAny(key, " \t\r\n") {
		return "", "", fmt.Errorf("%w: an API key has the form id.secret", ErrMalformed)
	}
	return id, secret, nil
}

// header is what PyJWT writes for the tutorial's generate_token: it adds
// "typ" itself and sorts the header keys.
var header = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","sign_type":"SIGN","typ":"JWT"}`))

// Sign returns the tutorial's token: claims api_key, exp and timestamp, both
// times in milliseconds, in that order, HS256 keyed with the secret.
func Sign(id, secret string, now time.Time, ttl time.Duration) string {
	nowMS := now.UnixMilli()
	payload := make([]byte, 0, 96)
	payload = append(payload, `{"api_key":`...)
	idJSON, _ := json.Marshal(id) // a string always marshals
	payload = append(payload, idJSON...)
	payload = append(payload, `,"exp":`...)
	payload = strconv.AppendInt(payload, nowMS+ttl.Milliseconds(), 10)
	payload = append(payload, `,"timestamp":`...)
	payload = strconv.AppendInt(payload, nowMS, 10)
	payload = append(payload, '}')

	signing := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// Credential is what an Authorization header carried.
type Credential struct {
	// ID is the key id (the api_key claim for a JWT).
	ID string
	// Secret is set for a raw key; empty for a JWT.
	Secret string
	// Token is the JWT, empty for a raw key.
	Token string
}

// IsJWT reports whether the credential is a token.
func (c Credential) IsJWT() bool { return c.Token != "" }

// ParseAuthorization reads the four forms of docs/v4.md §8.1: "Bearer <key>",
// "Bearer <jwt>", "<jwt>" and "<key>". It checks shape only.
func ParseAuthorization(h string) (Credential, error) {
	h = strings.TrimSpace(h)
	if len(h) >= 7 && strings.EqualFold(h[:7], "bearer ") {
		h = strings.TrimSpace(h[7:])
	} else if strings.EqualFold(h, "bearer") {
		// "Bearer " with nothing after it (the space already trimmed): no
		// credential at all, 1001 rather than a malformed key.
		h = ""
	}
	if h == "" {
		return Credential{}, ErrMissing
	}
	if strings.Count(h, ".") == 2 {
		id, err := tokenKeyID(h)
		if err != nil {
			return Credential{}, err
		}
		return Credential{ID: id, Token: h}, nil
	}
	id, secret, err := SplitKey(h)
	if err != nil {
		return Credential{}, err
	}
	return Credential{ID: id, Secret: secret}, nil
}

// tokenKeyID reads the api_key claim without verifying anything, so the
// caller can look up the secret.
func tokenKeyID(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	// The algorithm is checked here, before any key lookup, so "none" and
	// RS/ES tokens are malformed (1002) rather than a bad signature (1004).
	hdr, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[0], "="))
	if err != nil {
		return "", fmt.Errorf("%w: token header is not base64url", ErrMalformed)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "HS256" {
		return "", fmt.Errorf("%w: token must be signed with HS256", ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("%w: token payload is not base64url", ErrMalformed)
	}
	var claims struct {
		APIKey any `json:"api_key"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", fmt.Errorf("%w: token payload is not JSON", ErrMalformed)
	}
	id, ok := claims.APIKey.(string)
	if !ok || id == "" {
		return "", fmt.Errorf("%w: token has no api_key claim", ErrMalformed)
	}
	return id, nil
}

// Verify checks a credential against the key's secret at time now. For a raw
// key it compares in constant time; for a JWT it checks HS256 only (alg
// "none" and every other algorithm are refused) and exp read as
// milliseconds. The JS clients send exp in microseconds (ms×1000, docs/v4.md §10)
// and a few third-party SDKs in seconds; both are normalised. timestamp and
// iat are not checked: the JS values are 1000× too large.
func Verify(c Credential, secret string, now time.Time) error {
	if !c.IsJWT() {
		if subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
			return ErrUnknownKey
		}
		return nil
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(c.Token, claims, func(*jwt.Token) (any, error) {
		return []byte(secret), nil
	}, jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation(), jwt.WithJSONNumber())
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrSignature
	default:
		return fmt.Errorf("%w: token rejected", ErrMalformed)
	}
	expNum, ok := claims["exp"].(json.Number)
	if !ok {
		return fmt.Errorf("%w: token has no numeric exp claim", ErrMalformed)
	}
	exp, err := expNum.Float64()
	if err != nil {
		return fmt.Errorf("%w: token exp is not a number", ErrMalformed)
	}
	var ts float64
	if tsNum, ok := claims["timestamp"].(json.Number); ok {
		ts, _ = tsNum.Float64() // a malformed timestamp only loses the µs correction
	}
	if TokenExpiryMillis(exp, ts) < float64(now.UnixMilli()) {
		return ErrExpired
	}
	return nil
}

// TokenExpiryMillis is a token's expiry in milliseconds from its exp and
// timestamp claims. zhipuai-sdk-nodejs-v4 and LangChain JS sign
// timestamp = Date.now()*1000 and exp = timestamp + 180*1000: a clock in
// microseconds plus a lifetime in milliseconds, and reuse the token for
// 150 s (docs/v4.md §2, §10). Reading exp alone as µs would let the token live
// 180 ms, so when both claims are in µs the lifetime exp − timestamp is
// taken as milliseconds from timestamp/1000 — unless it would be longer
// than a day: then both claims are plain microseconds (a client that
// multiplied its whole ms clock by 1000), and the expiry is exp/1000.
// Otherwise ExpiryMillis(exp).
func TokenExpiryMillis(exp, timestamp float64) float64 {
	if exp > 1e14 && timestamp > 1e14 && exp >= timestamp {
		if life := exp - timestamp; life <= dayMillis {
			return timestamp/1000 + life
		}
		return exp / 1000
	}
	return ExpiryMillis(exp)
}

// dayMillis is one day in milliseconds.
const dayMillis = 24 * 60 * 60 * 1000

// ExpiryMillis normalises an exp claim to milliseconds: values past year
// 5138 in ms are microseconds (the JS ×1000 bug), values before 1973 in ms are
// seconds.
func ExpiryMillis(exp float64) float64 {
	switch {
	case exp > 1e14:
		return exp / 1000
	case exp < 1e11:
		return exp * 1000
	}
	return exp
}
