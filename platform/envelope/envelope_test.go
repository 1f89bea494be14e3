package envelope

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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

// TestWriteJSONLength: over real HTTP, every JSON reply carries its
// length — a short one from net/http, a long one (past net/http's buffer,
// which it would send chunked) from WriteJSON — and a length a handler
// set for another body never survives.
func TestWriteJSONLength(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1")
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		WriteJSON(w, http.StatusOK, []byte(`"`+strings.Repeat("x", n-2)+`"`))
	}))
	defer srv.Close()
	for _, n := range []int{10, chunkingSize - 1, chunkingSize, 20_000} {
		resp, err := http.Get(srv.URL + "?n=" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(body) != n {
			t.Fatalf("n=%d: read %d bytes (%v); want %d", n, len(body), err, n)
		}
		if resp.ContentLength != int64(n) || len(resp.TransferEncoding) != 0 {
			t.Errorf("n=%d: Content-Length %d, Transfer-Encoding %v; want %d and none", n, resp.ContentLength, resp.TransferEncoding, n)
		}
	}
}
