package zhipuai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// APIError is every failure the platform reports: a non-2xx response (its
// body is the V4 envelope {"error":{"code","message"}}, docs/v4.md §6) or an
// in-band {"error":…} event inside a stream (StatusCode 200 then). Use it
// with errors.As:
//
//	var apiErr *zhipuai.APIError
//	if errors.As(err, &apiErr) && apiErr.Code == "1113" { … }
type APIError struct {
	// StatusCode is the HTTP status (200 for an in-band stream error).
	StatusCode int
	// Code is the V4 numeric code as a string ("1113"); empty when the body
	// was not a V4 envelope.
	Code string
	// Message is the platform's message, or the start of a non-JSON body.
	Message string
	// RequestID is the body's request_id or the X-Request-Id header.
	RequestID string
	// Body is the raw response body (at most maxErrorBody bytes).
	Body []byte
	// Header is the response header.
	Header http.Header
}

// maxErrorBody bounds what an error keeps of a response body.
const maxErrorBody = 64 << 10

// maxErrorMessage bounds the message taken from a non-JSON body, so an HTML
// error page from a proxy still gives a readable one-line error.
const maxErrorMessage = 200

// Error reads like "zhipuai: 429 1113 您的账户已欠费，请充值后重试。 (request_id 123)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("zhipuai: ")
	fmt.Fprintf(&b, "%d", e.StatusCode)
	if e.Code != "" {
		b.WriteByte(' ')
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteByte(' ')
		b.WriteString(e.Message)
	} else if t := http.StatusText(e.StatusCode); t != "" && e.StatusCode != http.StatusOK {
		b.WriteByte(' ')
		b.WriteString(t)
	}
	if e.RequestID != "" {
		b.WriteString(" (request_id ")
		b.WriteString(e.RequestID)
		b.WriteByte(')')
	}
	return b.String()
}

// newAPIError builds the error for a failed response from its body.
func newAPIError(status int, header http.Header, body []byte) *APIError {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	e := &APIError{StatusCode: status, Body: body, Header: header}
	var env struct {
		Error     *ErrorBody `json:"error"`
		RequestID string     `json:"request_id"`
		// Some gateways put code/message at the top level.
		Code    ErrorCode `json:"code"`
		Message string    `json:"message"`
		Msg     string    `json:"msg"`
	}
	if json.Unmarshal(body, &env) == nil {
		switch {
		case env.Error != nil:
			e.Code, e.Message = string(env.Error.Code), env.Error.Message
		default:
			e.Code, e.Message = string(env.Code), env.Message
			if e.Message == "" {
				e.Message = env.Msg
			}
		}
		e.RequestID = env.RequestID
	} else {
		e.Message = truncateText(body, maxErrorMessage)
	}
	if e.RequestID == "" && header != nil {
		e.RequestID = header.Get("X-Request-Id")
	}
	return e
}

// truncateText makes a one-line, valid UTF-8 excerpt of a body.
func truncateText(body []byte, n int) string {
	body = bytes.TrimSpace(body)
	cut := false
	if len(body) > n {
		body = body[:n]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1]
		}
		cut = true
	}
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "?")), " ")
	if cut {
		s += "…"
	}
	return s
}

// ValidationError is a request the SDK refused to send because it breaks a
// rule the spec fixes (docs/v4.md §3, §5). Field is a JSON path such as
// "messages[2].tool_call_id". Kind says what is wrong with it, so a V4
// server running the same validator answers the code the platform would.
type ValidationError struct {
	Field  string
	Reason string
	Kind   ValidationKind
}

func (e *ValidationError) Error() string {
	return "zhipuai: invalid request: " + e.Field + ": " + e.Reason
}

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TaskFailedError is an async task that ended in FAIL (docs/v4.md §4 "Async").
// Code and Message come from the task's error when the platform gave one.
type TaskFailedError struct {
	TaskID  string
	Code    string
	Message string
	// Result is the final poll reply.
	Result *AsyncCompletion
}

func (e *TaskFailedError) Error() string {
	msg := "zhipuai: async task " + e.TaskID + " failed"
	if e.Code != "" {
		msg += ": " + e.Code
	}
	if e.Message != "" {
		msg += " " + e.Message
	}
	return msg
}
