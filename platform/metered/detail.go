package metered

import (
	"strings"
	"unicode/utf8"
)

// MaxErrorDetail bounds the cause kept on a request-log row: enough for a
// wrapped chain ("1234 …: backend vllm-a: dial tcp …: connection refused"),
// not a whole upstream body.
const MaxErrorDetail = 1000

// SetErrorDetail keeps err's chain on the row (RequestLog.ErrorDetail) so
// `glm logs` shows the operator why a request failed; the first cause set
// wins (the backend's is more precise than what the transport adds).
func (c *Call) SetErrorDetail(err error) {
	if err == nil || c.Row.ErrorDetail != "" {
		return
	}
	c.Row.ErrorDetail = boundDetail(err.Error())
}

func boundDetail(s string) string {
	if len(s) > MaxErrorDetail {
		s = s[:MaxErrorDetail]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.ToValidUTF8(s, "?")
}
