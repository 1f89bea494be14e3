package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBillingCLIValidation: glm packages grant / topup / prices set refuse
// what the admin API refuses (TestAdminBadInput), with the shared
// validator's wording, and write nothing; valid input still works.
func TestBillingCLIValidation(t *testing.T) {
	s := newBillSite(t, "")
	s.glm(t, "accounts", "create", "acme")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"packages", "grant", "--account", "acme", "--days", "3"}, "tokens is required"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10"}, "days (or expires_at) is required"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "-1", "--days", "3"}, "tokens must be positive"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--days", "0"}, "days must be between 1 and 36500"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--days", "99999999"}, "days must be between 1 and 36500"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--days", "3", "--type", "free"}, `type "free": want gift or purchased`},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--days", "3", "--expires", "2099-01-01"}, "give days or expires_at, not both"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--expires", "tomorrow"}, `expires_at "tomorrow": want RFC 3339`},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--expires", "2000-01-01"}, "expires_at must be after effective_at"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--days", "3", "--models", "glm-4,,glm-4v"}, "models: each entry is one model name"},
		{[]string{"packages", "grant", "--account", "acme", "--tokens", "10", "--days", "3", "--name", strings.Repeat("n", 201)}, "name: at most 200 bytes"},
		{[]string{"packages", "grant", "--account", "nope", "--tokens", "10", "--days", "3"}, `no account "nope"`},
		{[]string{"topup", "--account", "acme"}, "cny is required"},
		{[]string{"topup", "--account", "acme", "--cny", "abc"}, `cny "abc": want CNY with at most 6 decimals`},
		{[]string{"topup", "--account", "acme", "--cny", "0.0000001"}, "want CNY with at most 6 decimals"},
		{[]string{"topup", "--account", "acme", "--cny", "-5"}, `cny "-5": want CNY`},
		{[]string{"topup", "--account", "acme", "--cny", "0"}, "cny must be positive and at most"},
		{[]string{"topup", "--account", "acme", "--cny", "1000000001"}, "cny must be positive and at most"},
		{[]string{"topup", "--account", "acme", "--cny", "1", "--note", strings.Repeat("x", 501)}, "note: at most 500 bytes"},
		{[]string{"prices", "set", "glm-4"}, "--price, --input, --cached-input, --output, --per-call or --image is required"},
		{[]string{"prices", "set", "glm-4", "--cached-input", "0.00000001"}, `--cached-input "0.00000001": want CNY`},
		{[]string{"prices", "set", "glm-4", "--price", "x"}, `"x": want CNY with at most 6 decimals`},
		{[]string{"prices", "set", "glm-4", "--price", "0.1", "--input", "0.2"}, "give price, or input and output, not both"},
		{[]string{"prices", "set", "a,b", "--price", "0.1"}, `model "a,b": not a model name`},
	} {
		if got := s.glmFails(t, c.args...); !strings.Contains(got, c.want) {
			t.Errorf("glm %v: %q, want %q", c.args, got, c.want)
		}
	}
	// Nothing was written by the refused commands.
	var pk []json.RawMessage
	if err := json.Unmarshal(s.glm(t, "packages", "list", "--account", "acme", "--json"), &pk); err != nil || len(pk) != 0 {
		t.Fatalf("packages after refusals: %d %v", len(pk), err)
	}
	var accts []struct {
		ID      string `json:"id"`
		Balance int64  `json:"balance_micros"`
	}
	if err := json.Unmarshal(s.glm(t, "accounts", "list", "--json"), &accts); err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.ID == "acme" && a.Balance != 0 {
			t.Fatalf("balance after refusals: %d", a.Balance)
		}
	}
	var prices []struct {
		Model string `json:"model"`
		Input string `json:"input_cny_per_1k"`
	}
	if err := json.Unmarshal(s.glm(t, "prices", "list", "--json"), &prices); err != nil {
		t.Fatal(err)
	}
	for _, p := range prices {
		if p.Model == "glm-4" && p.Input != "0.1" && p.Input != "0.100000" {
			t.Fatalf("glm-4 price changed by a refused command: %s", p.Input)
		}
		if p.Model == "a,b" {
			t.Fatal("a refused model name was stored")
		}
	}
	// Valid input: --expires (new) and the usual forms.
	var p struct {
		TokensGranted int64  `json:"tokens_granted"`
		Status        string `json:"status"`
	}
	if err := json.Unmarshal(s.glm(t, "packages", "grant", "--account", "acme", "--tokens", "10", "--expires", "2099-01-01", "--models", "glm-4", "--json"), &p); err != nil || p.TokensGranted != 10 || p.Status != "active" {
		t.Fatalf("grant with --expires: %+v %v", p, err)
	}
	s.glm(t, "topup", "--account", "acme", "--cny", "0.5", "--note", "ok")
	if out := string(s.glm(t, "prices", "set", "glm-4", "--input", "0.2")); !strings.Contains(out, "input ¥0.2") {
		t.Fatalf("prices set: %s", out)
	}
}
