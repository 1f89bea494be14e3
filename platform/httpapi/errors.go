package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/glmkit/glmkit/platform"
	v4 "github.com/glmkit/glmkit/platform/envelope"
	"github.com/glmkit/glmkit/zhipuai"
)

// Media types. Python checks the JSON media type (docs/v4.md §8.3, §10); the
// stream type is what the cloud sends (docs/v4.md §4).
const (
	contentJSON = v4.ContentJSON
	contentSSE  = "text/event-stream;charset=UTF-8"
)

// writeError answers with the V4 envelope through the server's one error
// writer (platform/envelope), shared with the admin API and the root mux.
func writeError(w http.ResponseWriter, requestID string, e *platform.Error) {
	v4.WriteError(w, requestID, e)
}

func envelope(e *platform.Error, requestID string) zhipuai.ErrorEnvelope { return v4.Of(e, requestID) }

func writeJSONBytes(w http.ResponseWriter, status int, body []byte) { v4.WriteJSON(w, status, body) }

// writeJSON encodes v; a value that cannot be encoded is a 500 envelope.
func writeJSON(w http.ResponseWriter, requestID string, status int, v any) *platform.Error {
	body, err := json.Marshal(v)
	if err != nil {
		e := platform.Wrap(platform.CodeInternal, "internal error", err)
		writeError(w, requestID, e)
		return e
	}
	writeJSONBytes(w, status, body)
	return nil
}
