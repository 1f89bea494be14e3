package zhipuai

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrorEnvelope is every V4 error body: {"error":{"code":"1113","message":"…"}}
// (docs/v4.md §6); newer traffic adds a top-level request_id.
type ErrorEnvelope struct {
	Error     ErrorBody `json:"error"`
	RequestID string    `json:"request_id,omitempty"`
}

// ErrorBody is the inner object of an error. Code is a string of digits on
// the wire (the Java SDK parses it as an integer).
type ErrorBody struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
	Type    string    `json:"type,omitempty"`
	Param   string    `json:"param,omitempty"`
}

// ErrorCode is the V4 numeric code as a string. Decoding also accepts a JSON
// number (engines and some gateways send one) or null.
type ErrorCode string

// UnmarshalJSON accepts a string, a number or null.
func (c *ErrorCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = ErrorCode(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("error code must be a string or a number")
	}
	*c = ErrorCode(n.String())
	return nil
}
