// Package platform holds the server-side domain of glm serve: the one error
// type with its code table, the model catalogue, and the domain records
// shared by the store, the router and the HTTP API.
package platform

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/glmkit/glmkit/zhipuai"
)

// Error is the one server-side error type. Code is a V4 numeric code; the
// HTTP status comes from the single table below (docs/v4.md §6). Message is safe
// to show to clients; Err is the internal cause and never leaves the server.
type Error struct {
	Code    string
	Message string
	// HTTP overrides the table's status where one code serves several
	// situations (an unknown task id is 404, an oversized body 413).
	HTTP int
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + " " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of the error's code.
func (e *Error) Status() int {
	if e.HTTP != 0 {
		return e.HTTP
	}
	return StatusOf(e.Code)
}

// Errorf builds an Error with a client-facing message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an Error that keeps cause for logs only.
func Wrap(code, message string, cause error) *Error {
	return &Error{Code: code, Message: message, Err: cause}
}

// AsError returns err as an *Error; anything else becomes a 500 whose
// message does not leak the cause.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

// V4 codes used by glm serve (docs/v4.md §6 table). Codes whose HTTP
// status is unverified (docs/v4.md §9) get the status a client handles best.
const (
	CodeInternal        = "500"
	CodeAuthFailed      = "1000"
	CodeNoAuth          = "1001"
	CodeInvalidToken    = "1002"
	CodeTokenExpired    = "1003"
	CodeTokenVerify     = "1004"
	CodeArrears         = "1113"
	CodeAPIError        = "1200"
	CodeBadParams       = "1210"
	CodeUnknownModel    = "1211"
	CodeUnsupportedMode = "1212"
	CodeMissingField    = "1213"
	CodeInvalidField    = "1214"
	CodeExclusiveFields = "1215"
	CodeNoPermission    = "1220"
	CodeAPINotFound     = "1222"
	CodeDuplicateReq    = "1231"
	CodeNetwork         = "1234"
	CodePromptTooLong   = "1261"
	CodeUnsafe          = "1301"
	CodeConcurrency     = "1302"
	CodeRateLimit       = "1303"
	CodeDailyQuota      = "1304"
	CodeOverloaded      = "1305"
	// CodeTaskNotFound is used for an unknown async task id: the cloud's
	// answer is unverified (docs/v4.md §9), glm serve says 404 with 1214.
	CodeTaskNotFound = "1214"
)

// statusByCode is the one table code → HTTP status.
var statusByCode = map[string]int{
	CodeInternal:        http.StatusInternalServerError,
	CodeAuthFailed:      http.StatusUnauthorized,
	CodeNoAuth:          http.StatusUnauthorized,
	CodeInvalidToken:    http.StatusUnauthorized,
	CodeTokenExpired:    http.StatusUnauthorized,
	CodeTokenVerify:     http.StatusUnauthorized,
	CodeArrears:         http.StatusTooManyRequests,
	CodeAPIError:        http.StatusBadRequest,
	CodeBadParams:       http.StatusBadRequest,
	CodeUnknownModel:    http.StatusBadRequest,
	CodeUnsupportedMode: http.StatusBadRequest,
	CodeMissingField:    http.StatusBadRequest,
	CodeInvalidField:    http.StatusBadRequest,
	CodeExclusiveFields: http.StatusBadRequest,
	CodeNoPermission:    http.StatusForbidden,
	CodeAPINotFound:     http.StatusNotFound,
	CodeDuplicateReq:    http.StatusBadRequest,
	CodeNetwork:         http.StatusBadGateway,
	CodePromptTooLong:   http.StatusBadRequest,
	CodeUnsafe:          http.StatusBadRequest,
	CodeConcurrency:     http.StatusTooManyRequests,
	CodeRateLimit:       http.StatusTooManyRequests,
	CodeDailyQuota:      http.StatusTooManyRequests,
	CodeOverloaded:      http.StatusTooManyRequests,
}

// StatusOf returns the HTTP status for a V4 code (500 for unknown codes).
func StatusOf(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ValidationErr answers the request validator's refusal (a
// *zhipuai.ValidationError) with the V4 code of its kind; the message names
// the field, spelled by name (nil: as the validator names it), and the
// reason, nothing else. Any other error is a bare "invalid request".
func ValidationErr(err error, name func(string) string) *Error {
	var ve *zhipuai.ValidationError
	if !errors.As(err, &ve) {
		return Errorf(CodeBadParams, "invalid request")
	}
	code := CodeInvalidField
	switch ve.Kind {
	case zhipuai.MissingField:
		code = CodeMissingField
	case zhipuai.ExclusiveFields:
		code = CodeExclusiveFields
	case zhipuai.MalformedRequest:
		code = CodeBadParams
	}
	field := ve.Field
	if name != nil {
		field = name(field)
	}
	return Errorf(code, "%s: %s", field, ve.Reason)
}
