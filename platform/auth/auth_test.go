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

func setup(t *testing.T, path string) (*store.SQL, platform.Key) {
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
