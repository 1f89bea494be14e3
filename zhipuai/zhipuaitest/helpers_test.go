package zhipuaitest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/internal/sse"
	"github.com/glmkit/glmkit/zhipuai"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// call sends one request with the given Authorization (none when "") and
// returns the response with its whole body read.
func call(t *testing.T, srv *zhipuaitest.Server, method, path, auth string, body any) (*http.Response, []byte) {
	t.Helper()
	resp, err := send(t, srv, method, path, auth, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, b
}

// send is call without reading the body.
func send(t *testing.T, srv *zhipuaitest.Server, method, path, auth string, body any) (*http.Response, error) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return http.DefaultClient.Do(req)
}

// bearer is the OpenAI/Python form of the server's key.
func bearer(srv *zhipuaitest.Server) string { return "Bearer " + srv.APIKey }

// chatReq is a minimal valid chat body.
func chatReq(text string, stream bool) zhipuai.ChatCompletionRequest {
	return zhipuai.ChatCompletionRequest{
		Model:    "glm-4",
		Messages: []zhipuai.Message{{Role: zhipuai.RoleUser, Content: zhipuai.Content{Text: text}}},
		Stream:   stream,
	}
}

// decode unmarshals b into v or fails the test.
func decode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
}

// wantError checks a V4 error envelope answer.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) zhipuai.ErrorEnvelope {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d (body %s)", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var env zhipuai.ErrorEnvelope
	decode(t, body, &env)
	if string(env.Error.Code) != code || env.Error.Message == "" {
		t.Errorf("error = %+v, want code %s and a message", env.Error, code)
	}
	// docs/v4.md §6: the code is a JSON string of digits.
	if !bytes.Contains(body, []byte(`"code":"`+code+`"`)) {
		t.Errorf("code is not a JSON string in %s", body)
	}
	return env
}

// events reads an SSE body to its end. done reports whether [DONE] came;
// err is the read error that ended it (nil for a clean end).
func events(body io.Reader) (datas []string, done bool, err error) {
	rd := sse.NewReader(body)
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return datas, done, nil
		}
		if err != nil {
			return datas, done, err
		}
		if ev.IsDone() {
			done = true
			continue
		}
		datas = append(datas, string(ev.Data))
	}
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("transcript differs from %s\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
