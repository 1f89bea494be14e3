package admin

import (
	"strings"
	"testing"
)

func TestAdminAPIUsers(t *testing.T) {
	e := newAPIEnv(t)
	for _, c := range []struct {
		body string
		code int
		has  string
	}{
		{`{"email":"Owner@Example.com","account":"acct-1","role":"owner","password":"long-enough"}`, 201, `"email":"owner@example.com"`},
		{`{"email":"owner@example.com","account":"acct-1","role":"owner","password":"long-enough"}`, 409, "already exists"},
		{`{"email":"x@example.com","account":"acct-1","role":"owner","password":"short"}`, 400, "at least 8"},
		{`{"email":"x@example.com","account":"acct-1","role":"boss","password":"long-enough"}`, 400, "want owner, member or admin"},
		{`{"email":"x@example.com","role":"member","password":"long-enough"}`, 400, "needs an account"},
		{`{"email":"x@example.com","account":"nope","role":"member","password":"long-enough"}`, 404, "no account"},
		{`{"email":"not-an-address","account":"acct-1","role":"member","password":"long-enough"}`, 400, "not an e-mail address"},
		{`{"email":"op@example.com","role":"admin","password":"long-enough"}`, 201, `"role":"admin"`},
	} {
		code, body, _ := e.do("POST", "/users", c.body)
		if code != c.code || !strings.Contains(string(body), c.has) {
			t.Errorf("POST /users %s: got %d %s, want %d containing %q", c.body, code, body, c.code, c.has)
		}
		if strings.Contains(string(body), "argon2") {
			t.Errorf("POST /users answered the password hash: %s", body)
		}
	}
	code, body, _ := e.do("GET", "/users", "")
	if code != 200 || strings.Count(string(body), `"email"`) != 2 || strings.Contains(string(body), "argon2") {
		t.Fatalf("GET /users: got %d %s, want the two users without hashes", code, body)
	}
	if code, body, _ := e.do("PUT", "/users/owner@example.com/password", `{"password":"another-one"}`); code != 200 {
		t.Fatalf("set password: got %d %s, want 200", code, body)
	}
	if code, body, _ := e.do("POST", "/users/owner@example.com/disable", ""); code != 200 || !strings.Contains(string(body), `"disabled_at":"`) {
		t.Fatalf("disable: got %d %s, want 200 with disabled_at", code, body)
	}
	if code, _, _ := e.do("POST", "/users/nobody@example.com/disable", ""); code != 404 {
		t.Fatalf("disable unknown: got %d, want 404", code)
	}
}
