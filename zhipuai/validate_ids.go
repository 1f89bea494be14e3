package zhipuai

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of the bookkeeping strings every request may carry. The server
// stores them (the request-log row, the task row) and echoes request_id,
// so each has a length and a character set (docs/v4.md §3).
const (
	// MaxRequestIDLen: request_id is at most 128 visible ASCII characters
	// (0x21–0x7E). The platform documents only "unique per call"; ids seen
	// are numbers, UUIDs and prefixed hex, all well inside this.
	MaxRequestIDLen = 128
	// MinUserIDLen and MaxUserIDLen: user_id has 6 to 128 characters, as
	// the platform documents, and none of them a control character.
	MinUserIDLen = 6
	MaxUserIDLen = 128
	// MaxModelLen: a model name is at most 128 bytes; longer names exist on
	// no platform and would only be stored or echoed.
	MaxModelLen = 128
)

// validateCommon checks what every request shares: model (present, at
// most MaxModelLen bytes), request_id and user_id.
func validateCommon(model, requestID, userID string) error {
	if model == "" {
		return missing("model", "is required")
	}
	if len(model) > MaxModelLen {
		return invalid("model", "must be at most %d bytes, got %d", MaxModelLen, len(model))
	}
	if err := validateRequestID(requestID); err != nil {
		return err
	}
	return validateUserID(userID)
}

// validateRequestID checks request_id: absent, or 1–128 visible ASCII
// characters. The reason never repeats the value: it may be megabytes.
func validateRequestID(id string) error {
	if id == "" {
		return nil
	}
	if len(id) > MaxRequestIDLen {
		return invalid("request_id", "must be at most %d characters, got %d", MaxRequestIDLen, len(id))
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return invalid("request_id", "must be visible ASCII characters (letters, digits, punctuation), got byte 0x%02x at %d", c, i)
		}
	}
	return nil
}

// validateUserID checks user_id: absent, or 6–128 characters of valid
// UTF-8 without control or format characters.
func validateUserID(id string) error {
	if id == "" {
		return nil
	}
	if !utf8.ValidString(id) {
		return invalid("user_id", "is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(id); n < MinUserIDLen || n > MaxUserIDLen {
		return invalid("user_id", "must have %d to %d characters, got %d", MinUserIDLen, MaxUserIDLen, n)
	}
	if i := strings.IndexFunc(id, func(r rune) bool { return !unicode.IsGraphic(r) }); i >= 0 {
		return invalid("user_id", "must not hold control characters, got one at byte %d", i)
	}
	return nil
}

// ValidateImageRequest checks docs/v4.md §5: model and a non-blank prompt
// are required, n (when set) is 1–10, and request_id and user_id are
// bounded as for chat. The SDK runs it before sending; glm serve runs it
// and adds what needs its model table.
func ValidateImageRequest(r *ImageRequest) error {
	if r == nil {
		return nilRequest()
	}
	if err := validateCommon(r.Model, r.RequestID, r.UserID); err != nil {
		return err
	}
	if strings.TrimSpace(r.Prompt) == "" {
		return missing("prompt", "is required")
	}
	if r.N != nil && (*r.N < 1 || *r.N > 10) {
		return invalid("n", "must be between 1 and 10, got %d", *r.N)
	}
	return nil
}
