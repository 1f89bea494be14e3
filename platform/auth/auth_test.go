package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/glmkit/glmkit/internal/v4auth"
	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/store"
)

var master = []byte("0123456789abcdef0123456789abcdef")

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t testing.TB, path string) (*store.SQL, platform.Key) {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, path, store.Options{MasterKey: master})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateAccount(ctx, platform.Account{ID: "acct", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	k, _ := platform.NewKey("acct", "t", time.Now())
	if err := s.CreateKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	return s, k
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// token builds a JWT from raw header and payload JSON, signed with secret.
func token(header, payload, secret string) string {
	in := b64(header) + "." + b64(payload)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestAuthorizationForms(t *testing.T) {
	s, k := setup(t, filepath.Join(t.TempDir(), "glm.db"))
	now := time.Now()
	a := New(s, Options{})
	jwt := v4auth.Sign(k.ID, k.Secret, now, 3*time.Minute)
	// The JS clients' token: exp and timestamp in microseconds (docs/v4.md §10).
	jsJWT := token(`{"alg":"HS256","sign_type":"SIGN"}`,
		fmt.Sprintf(`{"api_key":%q,"exp":%d,"timestamp":%d,"iat":%d}`, k.ID, (now.UnixMilli()+180000)*1000, now.UnixMilli()*1000, now.Unix()), k.Secret)
	for name, h := range map[string]string{
		"raw":          k.Full(),
		"Bearer raw":   "Bearer " + k.Full(),
		"bearer raw":   "bearer " + k.Full(),
		"JWT":          jwt,
		"Bearer JWT":   "Bearer " + jwt,
		"JWT ms x1000": jsJWT,
	} {
		p, err := a.Authenticate(context.Background(), h)
		if err != nil || p.AccountID != "acct" || p.KeyID != k.ID {
			t.Errorf("%s: %+v, %v", name, p, err)
		}
	}
}

func TestAttacks(t *testing.T) {
	s, k := setup(t, filepath.Join(t.TempDir(), "glm.db"))
	now := time.Now()
	a := New(s, Options{})
	expired := v4auth.Sign(k.ID, k.Secret, now.Add(-time.Hour), time.Minute)
	good := v4auth.Sign(k.ID, k.Secret, now, time.Minute)
	tampered := good[:len(good)-2] + map[bool]string{true: "AA", false: "BB"}[good[len(good)-2:] != "AA"]
	forged := token(`{"alg":"HS256","sign_type":"SIGN"}`, fmt.Sprintf(`{"api_key":%q,"exp":%d}`, k.ID, now.Add(time.Hour).UnixMilli()), "wrong-secret")
	none := b64(`{"alg":"none","typ":"JWT"}`) + "." + b64(fmt.Sprintf(`{"api_key":%q,"exp":%d}`, k.ID, now.Add(time.Hour).UnixMilli())) + "."
	hs512 := b64(`{"alg":"HS512"}`) + "." + b64(fmt.Sprintf(`{"api_key":%q,"exp":%d}`, k.ID, now.Add(time.Hour).UnixMilli())) + ".c2ln"
	unknown, _ := platform.NewKey("acct", "", now)
	for _, c := range []struct{ name, header, code string }{
		{"missing", "", "1001"},
		{"bearer only", "Bearer ", "1001"},
		{"garbage", "hello", "1002"},
		{"wrong secret", k.ID + ".WRONGSECRET12345", "1002"},
		{"unknown id", unknown.Full(), "1002"},
		{"unknown id JWT", v4auth.Sign(unknown.ID, unknown.Secret, now, time.Minute), "1002"},
		{"non-hex id", "ab.cd", "1002"},
		{"expired", expired, "1003"},
		{"tampered signature", tampered, "1004"},
		{"forged with another secret", forged, "1004"},
		{"alg none", none, "1002"},
		{"alg HS512", hs512, "1002"},
	} {
		_, err := a.Authenticate(context.Background(), c.header)
		pe, ok := err.(*platform.Error)
		if !ok || pe.Code != c.code || pe.Status() != 401 {
			t.Errorf("%s: err = %v, want code %s with 401", c.name, err, c.code)
		}
	}
}

func TestRevokeAtOnceHereAndWithinBoundElsewhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "glm.db")
	s, k := setup(t, path)
	other, err := store.Open(context.Background(), path, store.Options{MasterKey: master})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	clk := &clock{t: time.Now()}
	here := New(s, Options{Now: clk.now, Recheck: 5 * time.Second})
	there := New(other, Options{Now: clk.now, Recheck: 5 * time.Second}) // another replica
	ctx := context.Background()
	for _, a := range []*Authenticator{here, there} {
		if _, err := a.Authenticate(ctx, k.Full()); err != nil {
			t.Fatal(err)
		}
	}
	if err := here.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Authenticate(ctx, k.Full()); platform.AsError(err).Code != "1002" {
		t.Fatalf("revoked key still accepted in the revoking process: %v", err)
	}
	// The other replica trusts its cache until the bound ...
	clk.t = clk.t.Add(4 * time.Second)
	if _, err := there.Authenticate(ctx, k.Full()); err != nil {
		t.Fatalf("within the bound the cached key is used: %v", err)
	}
	// ... and refuses the key once the entry is older than Recheck.
	clk.t = clk.t.Add(2 * time.Second)
	if _, err := there.Authenticate(ctx, k.Full()); platform.AsError(err).Code != "1002" {
		t.Fatalf("revoked key accepted past the recheck bound: %v", err)
	}
}

func TestNewKeyFromAnotherProcessSeenQuickly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "glm.db")
	s, _ := setup(t, path)
	clk := &clock{t: time.Now()}
	a := New(s, Options{Now: clk.now})
	k2, _ := platform.NewKey("acct", "", clk.t)
	if _, err := a.Authenticate(context.Background(), k2.Full()); err == nil {
		t.Fatal("unknown key accepted")
	}
	if err := s.CreateKey(context.Background(), k2); err != nil {
		t.Fatal(err)
	}
	clk.t = clk.t.Add(negativeTTL)
	if _, err := a.Authenticate(context.Background(), k2.Full()); err != nil {
		t.Fatalf("new key refused after the negative bound: %v", err)
	}
}

func TestCachedTokenStillExpiresAndRevokes(t *testing.T) {
	s, k := setup(t, filepath.Join(t.TempDir(), "glm.db"))
	clk := &clock{t: time.Now()}
	a := New(s, Options{Now: clk.now})
	tok := v4auth.Sign(k.ID, k.Secret, clk.t, time.Minute)
	for i := 0; i < 2; i++ { // the second call is served by the token cache
		if _, err := a.Authenticate(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.tokens) != 1 {
		t.Fatalf("token cache holds %d entries", len(a.tokens))
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if _, err := a.Authenticate(context.Background(), tok); platform.AsError(err).Code != "1003" {
		t.Fatalf("expired cached token: %v", err)
	}
	tok2 := v4auth.Sign(k.ID, k.Secret, clk.t, time.Minute)
	if _, err := a.Authenticate(context.Background(), tok2); err != nil {
		t.Fatal(err)
	}
	if err := a.Revoke(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(context.Background(), tok2); platform.AsError(err).Code != "1002" {
		t.Fatalf("cached token of a revoked key: %v", err)
	}
}

// The Node SDK's token: µs clock, ms lifetime, reused for 150 s (docs/v4.md §10).
func TestNodeSDKTokenLivesItsLifetime(t *testing.T) {
	s, k := setup(t, filepath.Join(t.TempDir(), "glm.db"))
	clk := &clock{t: time.Now()}
	a := New(s, Options{Now: clk.now})
	us := clk.t.UnixMilli() * 1000
	tok := token(`{"alg":"HS256","sign_type":"SIGN"}`, fmt.Sprintf(`{"api_key":%q,"exp":%d,"timestamp":%d}`, k.ID, us+180*1000, us), k.Secret)
	fresh := New(s, Options{Now: clk.now}) // no token cache: Verify itself decides
	for _, step := range []struct {
		after time.Duration
		code  string
	}{{0, ""}, {150 * time.Second, ""}, {179 * time.Second, ""}, {181 * time.Second, "1003"}} {
		clk.t = time.UnixMilli(us / 1000).Add(step.after)
		for name, au := range map[string]*Authenticator{"cached": a, "uncached": fresh} {
			_, err := au.Authenticate(context.Background(), tok)
			if got := platform.AsError(err).Code; (err == nil) != (step.code == "") || (err != nil && got != step.code) {
				t.Errorf("%s after %s: err %v, want code %q", name, step.after, err, step.code)
			}
		}
		fresh = New(s, Options{Now: clk.now})
	}
}

// A token may live at most MaxTokenTTL: one that expires further ahead is
// refused with 1004, one signed longer ago with 1003; the SDKs' tokens
// (minutes, in ms or the JS clients' µs) pass.
func TestTokenLifetime(t *testing.T) {
	s, k := setup(t, filepath.Join(t.TempDir(), "glm.db"))
	now := time.Now()
	a := New(s, Options{MaxTokenTTL: time.Hour, Now: func() time.Time { return now }})
	claims := func(exp, ts int64) string {
		return token(`{"alg":"HS256","sign_type":"SIGN"}`, fmt.Sprintf(`{"api_key":%q,"exp":%d,"timestamp":%d}`, k.ID, exp, ts), k.Secret)
	}
	ms := now.UnixMilli()
	for _, c := range []struct {
		name, tok string
		code      string // "" = accepted
	}{
		{"sdk, 3 minutes", v4auth.Sign(k.ID, k.Secret, now, 3*time.Minute), ""},
		{"node sdk µs clock", claims(ms*1000+180_000, ms*1000), ""},
		{"exactly the maximum", claims(ms+time.Hour.Milliseconds(), ms), ""},
		{"expires in two hours", claims(ms+2*time.Hour.Milliseconds(), ms), platform.CodeTokenVerify},
		{"µs, expires in a year", claims((ms+365*24*time.Hour.Milliseconds())*1000, ms*1000), platform.CodeTokenVerify},
		{"signed two hours ago", claims(ms+time.Minute.Milliseconds(), ms-2*time.Hour.Milliseconds()), platform.CodeTokenExpired},
	} {
		_, err := a.Authenticate(context.Background(), "Bearer "+c.tok)
		got := ""
		if err != nil {
			got = platform.AsError(err).Code
		}
		if got != c.code {
			t.Errorf("%s: got code %q (%v), want %q", c.name, got, err, c.code)
		}
	}
}

// An unknown key id and a wrong secret both cost one HMAC check (the
// decoy), so timing does not say which ids exist; both are refused.
func TestUnknownKeyAndWrongSecret(t *testing.T) {
	s, k := setup(t, filepath.Join(t.TempDir(), "glm.db"))
	a := New(s, Options{})
	for _, h := range []string{
		"Bearer 0123456789abcdef0123456789abcdef.AAAAAAAAAAAAAAAA",
		"Bearer " + k.ID + ".AAAAAAAAAAAAAAAA",
	} {
		_, err := a.Authenticate(context.Background(), h)
		if got := platform.AsError(err).Code; got != platform.CodeInvalidToken {
			t.Errorf("%s: got code %s, want %s", h[:20], got, platform.CodeInvalidToken)
		}
	}
}

// BenchmarkRefusal compares the refusal of an unknown key id with that of
// a known id with a wrong signature: they should cost the same.
func BenchmarkRefusal(b *testing.B) {
	s, k := setup(b, filepath.Join(b.TempDir(), "glm.db"))
	a := New(s, Options{})
	now := time.Now()
	for name, id := range map[string]string{"unknown-id": "0123456789abcdef0123456789abcdef", "wrong-secret": k.ID} {
		h := "Bearer " + v4auth.Sign(id, "not-the-secret00", now, 3*time.Minute)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := a.Authenticate(context.Background(), h); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
