// Package envelope writes the replies every glm serve handler shares: the
// V4 error envelope (docs/v4.md §6) and JSON bodies. It is the one error
// writer of the server, in a package of its own so that the V4 API, the
// admin API, the operational endpoints and the root mux all answer errors
// the same way without importing each other.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/zhipuai"
)

// ContentJSON is the media type of JSON replies. Python checks it
// (docs/v4.md §8.3, §10), so every JSON answer carries exactly this.
const ContentJSON = "application/json; charset=UTF-8"

// WriteError is the single error writer: the V4 envelope with the status
// of the code table, never the internal cause.
func WriteError(w http.ResponseWriter, requestID string, e *platform.Error) {
	body, _ := json.Marshal(Of(e, requestID)) // plain strings always marshal
	status := e.Status()
	// Retrying a request that is wrong, unauthorised or unpaid cannot help;
	// tell the Python and OpenAI SDKs not to (docs/v4.md §6, §8.9). Rate
	// limits and server errors stay retryable.
	if status < 500 && e.Code != platform.CodeConcurrency && e.Code != platform.CodeRateLimit &&
		e.Code != platform.CodeOverloaded && e.Code != platform.CodeDailyQuota {
		w.Header().Set("x-should-retry", "false")
	}
	WriteJSON(w, status, body)
}

// Of is the envelope of e: what WriteError sends, and what a stream sends
// in band when it fails after its headers are out.
func Of(e *platform.Error, requestID string) zhipuai.ErrorEnvelope {
	msg := e.Message
	if msg == "" {
		msg = "error " + e.Code // Vercel requires a message (docs/v4.md §6)
	}
	return zhipuai.ErrorEnvelope{Error: zhipuai.ErrorBody{Code: zhipuai.ErrorCode(e.Code), Message: msg}, RequestID: requestID}
}

// contentJSON is the Content-Type value of every JSON reply, made once:
// Header.Set would allocate it per reply, and net/http only reads header
// values (docs/design.md §6).
var contentJSON = []string{ContentJSON}

// chunkingSize is net/http's buffer before it chooses chunked encoding
// (bufferBeforeChunkingSize): a reply at least this long has no length
// unless the handler sets one.
const chunkingSize = 2048

// WriteJSON sends an encoded JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentJSON
	// A handler may have set a length for another body; a wrong one would
	// cut or stall this reply. net/http finds the length of a body that
	// fits its 2 KB buffer itself; a longer one (an embeddings reply, a
	// long answer) it would send chunked, in one write more and with the
	// size unknown to the client, so that length is set here
	// (docs/design.md §6).
	if len(body) < chunkingSize {
		h.Del("Content-Length")
	} else {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Quote shows a client-supplied value (a path, an id) in a message:
// JSON-quoted and cut at 64 bytes, so a huge value does not come back in
// full.
func Quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// JSONProblem describes a decoding error in words a client can act on:
// the byte offset of a syntax error, the field of a type mismatch.
func JSONProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type), te.Value)
		}
		return fmt.Sprintf("expected %s, got %s", jsonKind(te.Type), te.Value)
	}
	return err.Error()
}

// jsonKind names what a Go type is on the wire, so a client reads "an
// array", never a Go type name such as []zhipuai.Message.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a string"
		}
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another JSON value"
}
