package zhipuaitest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/v4auth"
	"github.com/glmkit/glmkit/zhipuai/zhipuaitest"
)

func TestAPIKeyShape(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	// docs/v4.md §2: 32 hex chars, dot, 16 alphanumerics.
	if !regexp.MustCompile(`^[0-9a-f]{32}\.[0-9A-Za-z]{16}$`).MatchString(srv.APIKey) {
		t.Errorf("APIKey %q does not look like a real key", srv.APIKey)
	}
	other := zhipuaitest.NewServer()
	defer other.Close()
	if other.APIKey == srv.APIKey {
		t.Error("two servers got the same random key")
	}
	if !strings.HasSuffix(srv.URL(), "/api/paas/v4") || !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q", srv.URL())
	}
}

// jsExpJWT builds the Node SDK's token: exp and timestamp in ms×1000 (docs/v4.md §10).
func jsExpJWT(id, secret string, now time.Time) string {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","sign_type":"SIGN"}`))
	ms := now.UnixMilli()
	payload := `{"api_key":"` + id + `","exp":` + itoa((ms+180000)*1000) + `,"timestamp":` + itoa(ms*1000) + `,"iat":` + itoa(now.Unix()) + `}`
	return hs256(hdr+"."+base64.RawURLEncoding.EncodeToString([]byte(payload)), secret)
}

// hs256 signs "header.payload" with secret.
func hs256(signing, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestAuthFormsAccepted(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	id, secret, _ := strings.Cut(srv.APIKey, ".")
	jwt := v4auth.Sign(id, secret, time.Now(), 3*time.Minute)
	cases := []struct {
		name, header, auth string
	}{
		{"raw", srv.APIKey, "raw"},
		{"bearer raw", "Bearer " + srv.APIKey, "raw"},
		{"lower-case bearer raw", "bearer " + srv.APIKey, "raw"},
		{"jwt", jwt, "jwt"},
		{"bearer jwt", "Bearer " + jwt, "jwt"},
		{"jwt exp ms×1000", jsExpJWT(id, secret, time.Now()), "jwt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.Reset()
			resp, body := call(t, srv, "POST", "/chat/completions", c.header, chatReq("hi", false))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Auth != c.auth || reqs[0].KeyID != id {
				t.Fatalf("recorded %+v, want one request with Auth %q KeyID %q", reqs, c.auth, id)
			}
		})
	}
}

func TestAddKey(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	const extra = "0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp"
	resp, body := call(t, srv, "POST", "/chat/completions", "Bearer "+extra, chatReq("hi", false))
	wantError(t, resp, body, http.StatusUnauthorized, "1002")
	srv.AddKey(extra)
	resp, body = call(t, srv, "POST", "/chat/completions", "Bearer "+extra, chatReq("hi", false))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("added key refused: %d %s", resp.StatusCode, body)
	}
}

func TestAuthRejected(t *testing.T) {
	srv := zhipuaitest.NewServer()
	defer srv.Close()
	id, secret, _ := strings.Cut(srv.APIKey, ".")
	now := time.Now()
	noneTok := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","sign_type":"SIGN"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"api_key":"`+id+`","exp":`+itoa(now.Add(time.Hour).UnixMilli())+`}`)) + "."
	cases := []struct {
		name, header, code string
	}{
		{"missing", "", "1001"},
		{"wrong secret raw", id + ".WrongSecret00000", "1002"},
		{"unknown id raw", "ffffffffffffffffffffffffffffffff." + secret, "1002"},
		{"not a key", "Bearer garbage", "1002"},
		{"jwt wrong secret", v4auth.Sign(id, "WrongSecret00000", now, time.Hour), "1004"},
		{"jwt unknown id", v4auth.Sign("ffffffffffffffffffffffffffffffff", secret, now, time.Hour), "1002"},
		{"jwt expired", "Bearer " + v4auth.Sign(id, secret, now.Add(-time.Hour), time.Minute), "1003"},
		{"jwt alg none", noneTok, "1002"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.Reset()
			srv.Enqueue(zhipuaitest.Text("must not be used"))
			resp, body := call(t, srv, "POST", "/chat/completions", c.header, chatReq("hi", false))
			wantError(t, resp, body, http.StatusUnauthorized, c.code)
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Auth != "" {
				t.Errorf("rejected request recorded as %+v", reqs)
			}
			if srv.Pending() != 1 {
				t.Error("a rejected request consumed a queued reply")
			}
		})
	}
}

func TestClockDrivesExpiry(t *testing.T) {
	past := time.Date(2024, 1, 24, 10, 0, 0, 0, time.UTC)
	srv := zhipuaitest.NewServer(zhipuaitest.WithClock(func() time.Time { return past }))
	defer srv.Close()
	id, secret, _ := strings.Cut(srv.APIKey, ".")
	// Valid at the server's clock, long expired in real time.
	tok := v4auth.Sign(id, secret, past, time.Minute)
	resp, body := call(t, srv, "POST", "/chat/completions", tok, chatReq("hi", false))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token valid at the server clock refused: %d %s", resp.StatusCode, body)
	}
}
