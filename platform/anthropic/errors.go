package anthropic

import (
	"net/http"

	"github.com/glmkit/glmkit/platform"
)

// Anthropic error types (docs/anthropic.md §7).
const (
	ErrInvalidRequest  = "invalid_request_error"
	ErrAuthentication  = "authentication_error"
	ErrPermission      = "permission_error"
	ErrNotFound        = "not_found_error"
	ErrRequestTooLarge = "request_too_large"
	ErrRateLimit       = "rate_limit_error"
	ErrAPI             = "api_error"
	ErrOverloaded      = "overloaded_error"
	ErrTimeout         = "timeout_error"
)

// statusOverloaded is Anthropic's status for overloaded_error.
const statusOverloaded = 529

// ErrorOf maps a platform error to the Anthropic error type and status a
// client's SDK turns into the matching class (AuthenticationError,
// RateLimitError, …). The V4 code stays in the message, so a 1113 (no
// credit) and a 1302 (concurrency) are told apart by people and scripts
// alike (docs/anthropic.md §7).
func ErrorOf(e *platform.Error) (status int, body ErrorBody) {
	typ, status := ErrAPI, e.Status()
	switch e.Code {
	case platform.CodeAuthFailed, platform.CodeNoAuth, platform.CodeInvalidToken, platform.CodeTokenExpired,
		platform.CodeTokenVerify:
		typ, status = ErrAuthentication, http.StatusUnauthorized
	case platform.CodeNoPermission:
		typ, status = ErrPermission, http.StatusForbidden
	case platform.CodeAPINotFound, platform.CodeTaskNotFound:
		typ = ErrNotFound
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			// 1214 is also "a field has a bad value": an invalid request.
			typ = ErrInvalidRequest
		}
	case platform.CodeArrears, platform.CodeConcurrency, platform.CodeRateLimit, platform.CodeDailyQuota:
		typ, status = ErrRateLimit, http.StatusTooManyRequests
	case platform.CodeOverloaded:
		typ, status = ErrOverloaded, statusOverloaded
	case platform.CodeNetwork:
		typ = ErrAPI
	case platform.CodeInternal:
		typ, status = ErrAPI, http.StatusInternalServerError
	default:
		switch {
		case status == http.StatusRequestEntityTooLarge:
			typ = ErrRequestTooLarge
		case status == http.StatusRequestTimeout:
			typ = ErrTimeout
		case status >= 400 && status < 500:
			typ, status = ErrInvalidRequest, http.StatusBadRequest
		}
	}
	return status, ErrorBody{Type: typ, Message: e.Message + " (V4 code " + e.Code + ")"}
}

// Envelope is the error reply of e.
func Envelope(e *platform.Error, requestID string) (int, ErrorEnvelope) {
	status, body := ErrorOf(e)
	return status, ErrorEnvelope{Type: "error", Error: body, RequestID: requestID}
}
