package v4auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testID     = "ed79c2e1f0b14c5a9d3e2f1a0b9c8d7e"
	testSecret = "xviKabcdEFGH1234"
	testKey    = testID + "." + testSecret
)

func TestSplitKey(t *testing.T) {
	id, sec, err := SplitKey(testKey)
	if err != nil || id != testID || sec != testSecret {
		t.Fatalf("SplitKey = %q %q %v", id, sec, err)
	}
	for _, bad := range []string{"", "nodot", ".s", "i.", "a.b.c", "a b.c", "a.b\n", "\ta.b", "zzid.zzsec.zzx"} {
		if _, _, err := SplitKey(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v", bad, err)
		} else if bad != "" && strings.Contains(err.Error(), bad) && !strings.Contains(ErrMalformed.Error()+": an API key has the form id.secret", bad) {
			t.Errorf("%q: error echoes the key", bad)
		}
	}
}

// The tutorial's payload example: exp 1682503829130, timestamp 1682503820130.
func TestSignMatchesTutorial(t *testing.T) {
	now := time.UnixMilli(1682503820130)
	tok := Sign(testID, testSecret, now, 9*time.Second)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatal(tok)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	pl, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if string(hdr) != `{"alg":"HS256","sign_type":"SIGN","typ":"JWT"}` {
		t.Fatalf("header %s", hdr)
	}
	if string(pl) != `{"api_key":"`+testID+`","exp":1682503829130,"timestamp":1682503820130}` {
		t.Fatalf("payload %s", pl)
	}
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if parts[2] != base64.RawURLEncoding.EncodeToString(mac.Sum(nil)) {
		t.Fatal("signature is not HMAC-SHA256 of header.payload")
	}
}

func TestParseAuthorizationFourForms(t *testing.T) {
	tok := Sign(testID, testSecret, time.Now(), time.Minute)
	for _, h := range []string{"Bearer " + testKey, "bearer  " + testKey, testKey} {
		c, err := ParseAuthorization(h)
		if err != nil || c.IsJWT() || c.ID != testID || c.Secret != testSecret {
			t.Errorf("%q: %+v %v", h, c, err)
		}
	}
	for _, h := range []string{"Bearer " + tok, "BEARER " + tok, tok, " " + tok + " "} {
		c, err := ParseAuthorization(h)
		if err != nil || !c.IsJWT() || c.ID != testID || c.Token != tok {
			t.Errorf("%q: %+v %v", h, c, err)
		}
	}
	for _, h := range []string{"", "  ", "Bearer", "Bearer "} {
		if _, err := ParseAuthorization(h); !errors.Is(err, ErrMissing) || Code(err) != "1001" {
			t.Errorf("%q: err = %v", h, err)
		}
	}
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"api_key":"x","exp":99999999999999}`)) + "."
	rs := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"api_key":"x"}`)) + ".sig"
	noKey := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"api_key":7}`)) + ".sig"
	for _, h := range []string{none, rs, noKey, "a.b.c", "!!.??.x", "Basic dXNlcjpwYXNz"} {
		if _, err := ParseAuthorization(h); !errors.Is(err, ErrMalformed) || Code(err) != "1002" {
			t.Errorf("%q: err = %v", h, err)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.UnixMilli(1_706_092_316_000)
	mustParse := func(h string) Credential {
		c, err := ParseAuthorization(h)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tok := Sign(testID, testSecret, now, time.Minute)
	if err := Verify(mustParse(tok), testSecret, now.Add(59*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := Verify(mustParse(tok), testSecret, now.Add(61*time.Second)); !errors.Is(err, ErrExpired) || Code(err) != "1003" {
		t.Fatalf("expired: %v", err)
	}
	if err := Verify(mustParse(tok), "other", now); !errors.Is(err, ErrSignature) || Code(err) != "1004" {
		t.Fatalf("bad signature: %v", err)
	}
	// Tampered payload (longer exp) with the old signature.
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"api_key":"` + testID + `","exp":99999999999999,"timestamp":1}`))
	if err := Verify(mustParse(strings.Join(parts, ".")), testSecret, now); err == nil {
		t.Fatal("tampered token accepted")
	}
	// Raw keys compare the secret.
	if err := Verify(mustParse(testKey), testSecret, now); err != nil {
		t.Fatal(err)
	}
	if err := Verify(mustParse(testID+".wrong"), testSecret, now); !errors.Is(err, ErrUnknownKey) || Code(err) != "1002" {
		t.Fatalf("wrong raw secret: %v", err)
	}
	// JS clients' ms×1000 exp is tolerated; second-based exp too.
	if ExpiryMillis(1_706_092_376_000_000) != 1_706_092_376_000 || ExpiryMillis(1_706_092_376) != 1_706_092_376_000 ||
		ExpiryMillis(1_706_092_376_000) != 1_706_092_376_000 {
		t.Fatal("ExpiryMillis")
	}
	if Code(errors.New("other")) != "1000" {
		t.Fatal("Code default")
	}
}

// FuzzSplitKey: never panics; what it accepts splits back into the key.
//
//	go test ./internal/v4auth -run='^$' -fuzz=FuzzSplitKey -fuzztime=20s
func FuzzSplitKey(f *testing.F) {
	for _, s := range []string{testKey, "", ".", "a.b.c", "a.b", " a.b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		id, sec, err := SplitKey(key)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || (len(key) > 3 && strings.Contains(err.Error(), key) &&
				!strings.Contains(ErrMalformed.Error()+": an API key has the form id.secret", key)) {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if id == "" || sec == "" || id+"."+sec != key || strings.Contains(sec, ".") {
			t.Fatalf("accepted %q as %q/%q", key, id, sec)
		}
	})
}

// FuzzParseAuthorization: never panics; accepts only a well-formed raw key
// or an HS256 token naming its key.
//
//	go test ./internal/v4auth -run='^$' -fuzz=FuzzParseAuthorization -fuzztime=20s
func FuzzParseAuthorization(f *testing.F) {
	tok := Sign(testID, testSecret, time.UnixMilli(1_706_092_316_000), time.Minute)
	for _, s := range []string{"Bearer " + tok, tok, "Bearer " + testKey, testKey, "", "Bearer", "a.b.c", "Bearer x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseAuthorization(h)
		if err != nil {
			if code := Code(err); code != "1001" && code != "1002" {
				t.Fatalf("code %s for %v", code, err)
			}
			return
		}
		if c.ID == "" {
			t.Fatalf("accepted %q without a key id", h)
		}
		if c.IsJWT() {
			if strings.Count(c.Token, ".") != 2 || c.Secret != "" {
				t.Fatalf("bad token credential %+v", c)
			}
			hdr, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.Split(c.Token, ".")[0], "="))
			if err != nil || !strings.Contains(string(hdr), "HS256") {
				t.Fatalf("accepted a token without HS256: %q", hdr)
			}
		} else if c.Secret == "" || strings.Contains(c.Secret, ".") {
			t.Fatalf("bad key credential %+v", c)
		}
	})
}

// FuzzVerify: never panics, and never accepts a token that is not really
// signed with the secret or is past its exp.
//
//	go test ./internal/v4auth -run='^$' -fuzz=FuzzVerify -fuzztime=20s
func FuzzVerify(f *testing.F) {
	now := time.UnixMilli(1_706_092_316_000)
	f.Add(Sign(testID, testSecret, now, time.Minute))
	f.Add(Sign(testID, "other", now, time.Minute))
	f.Add(Sign(testID, testSecret, now.Add(-time.Hour), time.Minute))
	f.Add("eyJhbGciOiJub25lIn0.eyJhcGlfa2V5IjoieCJ9.")
	f.Add(testKey)
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseAuthorization(h)
		if err != nil {
			return
		}
		if err := Verify(c, testSecret, now); err != nil {
			return
		}
		if !c.IsJWT() {
			if c.Secret != testSecret {
				t.Fatalf("raw key with secret %q accepted", c.Secret)
			}
			return
		}
		parts := strings.Split(c.Token, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		mac := hmac.New(sha256.New, []byte(testSecret))
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("token accepted without a valid signature: %q", c.Token)
		}
	})
}

// The JS clients' token shapes: a µs clock with a ms lifetime (the Node
// SDK), and a µs clock with a µs lifetime (ms×1000 throughout).
func TestTokenExpiryMillis(t *testing.T) {
	const now = 1_700_000_000_000.0 // ms
	for _, c := range []struct {
		name     string
		exp, ts  float64
		wantLife float64 // ms after now
	}{
		{"node sdk: µs clock, ms lifetime", now*1000 + 180_000, now * 1000, 180_000},
		{"ms×1000 throughout", (now + 180_000) * 1000, now * 1000, 180_000},
		{"ms", now + 210_000, now, 210_000},
		{"seconds", now/1000 + 600, now / 1000, 600_000},
	} {
		if got := TokenExpiryMillis(c.exp, c.ts) - now; got != c.wantLife {
			t.Errorf("%s: got a lifetime of %v ms, want %v", c.name, got, c.wantLife)
		}
	}
}
