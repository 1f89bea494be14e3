package envelope

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

func TestWriteError(t *testing.T) {
	for _, c := range []struct {
		err       *platform.Error
		status    int
		body      string
		noRetries bool
	}{
		{platform.Errorf(platform.CodeBadParams, "bad"), 400, `{"error":{"code":"1210","message":"bad"},"request_id":"r1"}`, true},
		{&platform.Error{Code: platform.CodeRateLimit}, 429, `{"error":{"code":"1303","message":"error 1303"},"request_id":"r1"}`, false},
		{platform.Wrap(platform.CodeInternal, "internal error", http.ErrBodyNotAllowed), 500,
			`{"error":{"code":"500","message":"internal error"},"request_id":"r1"}`, false},
	} {
		rec := httptest.NewRecorder()
		rec.Header().Set("Content-Length", "999")
		WriteError(rec, "r1", c.err)
		h := rec.Header()
		if rec.Code != c.status || rec.Body.String() != c.body || h.Get("Content-Type") != ContentJSON ||
			(h.Get("x-should-retry") == "false") != c.noRetries || h.Get("Content-Length") != "" {
			t.Errorf("%v: got %d %s %v, want %d %s (no retries: %v)", c.err, rec.Code, rec.Body, h, c.status, c.body, c.noRetries)
		}
	}
}

// A type mismatch names the JSON kind wanted, never a Go type.
func TestJSONProblemSpeaksJSON(t *testing.T) {
	var v struct {
		Messages []struct{ Role string } `json:"messages"`
		N        *int                    `json:"n"`
	}
	for body, want := range map[string]string{
		`{"messages":"hi"}`: `field "messages" must be an array, not string`,
		`{"n":"x"}`:         `field "n" must be an integer, not string`,
		`[1]`:               `expected an object, got array`,
	} {
		err := json.Unmarshal([]byte(body), &v)
		if got := JSONProblem(err); got != want {
			t.Errorf("%s: got %q, want %q", body, got, want)
		}
	}
}
