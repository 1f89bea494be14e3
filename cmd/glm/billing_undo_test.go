package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestUndoMoneyMistakes: a package granted by a typo is revoked, cash
// topped up by mistake is taken back, a price set for a model nobody
// serves is refused (and deleted when forced in): every correction needs
// --reason, shows in glm audit, and the money audit balances afterwards.
func TestUndoMoneyMistakes(t *testing.T) {
	s := newBillSite(t, "")
	s.glm(t, "accounts", "create", "acme")
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(s.glm(t, "packages", "grant", "--account", "acme", "--tokens", "99999999999999999", "--days", "30", "--json"), &p); err != nil || p.ID == "" {
		t.Fatalf("grant: %+v %v", p, err)
	}
	if msg := s.glmFails(t, "packages", "revoke", p.ID); !strings.Contains(msg, "--reason is required") {
		t.Errorf("revoke without --reason: got %q, want it to ask for --reason", msg)
	}
	out := string(s.glm(t, "packages", "revoke", p.ID, "--reason", "typo in --tokens"))
	if !strings.Contains(out, "unleased 99999999999999999") || !strings.Contains(out, "unleased 0") || !strings.Contains(out, "within 30 s") {
		t.Errorf("revoke: got %q, want before/after and the bound servers apply it in", out)
	}
	s.glm(t, "topup", "--account", "acme", "--cny", "50")
	if msg := s.glmFails(t, "cash", "adjust", "--account", "acme", "--cny", "-80", "--reason", "x"); !strings.Contains(msg, "cannot take ¥80") {
		t.Errorf("taking 80 of 50: got %q", msg)
	}
	s.glm(t, "cash", "adjust", "--account", "acme", "--cny", "-45", "--reason", "topped up 50 instead of 5")
	if msg := s.glmFails(t, "prices", "set", "nosuchmodel", "--price", "0.1"); !strings.Contains(msg, "no model nosuchmodel is served") || !strings.Contains(msg, "--force") {
		t.Errorf("prices set nosuchmodel: got %q, want refused naming --force", msg)
	}
	if msg := s.glmFails(t, "packages", "grant", "--account", "acme", "--tokens", "10", "--days", "1", "--models", "nosuchmodel"); !strings.Contains(msg, "--models: no model nosuchmodel") {
		t.Errorf("grant --models nosuchmodel: got %q, want refused", msg)
	}
	s.glm(t, "prices", "set", "nosuchmodel", "--price", "0.1", "--force")
	s.glm(t, "prices", "delete", "nosuchmodel", "--reason", "typo")

	var log []struct {
		Actor, Action, Account, Subject, Before, After, Reason string
	}
	if err := json.Unmarshal(s.glm(t, "audit", "--json"), &log); err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
		if !strings.HasPrefix(e.Actor, "cli:") || e.Reason == "" {
			t.Errorf("entry %+v: want a cli: actor and a reason", e)
		}
	}
	if got, want := strings.Join(actions, ","), "price.delete,cash.adjust,package.revoke"; got != want {
		t.Errorf("glm audit actions: got %s, want %s", got, want)
	}
	t.Logf("glm audit:\n%s", s.glm(t, "audit"))
	billAudit(t, s)
}

// TestDisableAccountStopsKeysAtOnce: disabling an account through the
// admin API refuses its keys on the serving process from the next request
// on, and enabling lets them in again; both are in the audit log.
func TestDisableAccountStopsKeysAtOnce(t *testing.T) {
	s := newBillSite(t, "")
	s.glm(t, "accounts", "create", "acme")
	var k struct{ Key string }
	if err := json.Unmarshal(s.glm(t, "keys", "create", "--account", "acme", "--json"), &k); err != nil {
		t.Fatal(err)
	}
	s.glm(t, "topup", "--account", "acme", "--cny", "1")
	srv := s.start(t, 0)
	const body = `{"model":"embedding-2","input":"你好"}`
	if code, b := srv.postB(t, "/embeddings", k.Key, body); code != 200 {
		t.Fatalf("before: %d %s", code, b)
	}
	if code, b := adminCall(t, srv, "POST", "/accounts/acme/disable", `{}`); code != 400 || !strings.Contains(string(b), "reason is required") {
		t.Errorf("disable without reason: got %d %s, want 400 asking for a reason", code, b)
	}
	if code, b := adminCall(t, srv, "POST", "/accounts/acme/disable", `{"reason":"leaked key"}`); code != 200 {
		t.Fatalf("disable: %d %s", code, b)
	}
	if code, b := srv.postB(t, "/embeddings", k.Key, body); code != 401 || !strings.Contains(string(b), "disabled") {
		t.Errorf("after disable: got %d %s, want 401 saying the account is disabled", code, b)
	}
	if code, b := adminCall(t, srv, "POST", "/accounts/acme/enable", `{"reason":"rotated"}`); code != 200 {
		t.Fatalf("enable: %d %s", code, b)
	}
	if code, b := srv.postB(t, "/embeddings", k.Key, body); code != 200 {
		t.Errorf("after enable: got %d %s, want 200", code, b)
	}
	code, b := adminCall(t, srv, "GET", "/audit?account=acme", "")
	if code != 200 || !strings.Contains(string(b), `"account.disable"`) || !strings.Contains(string(b), `"account.enable"`) {
		t.Errorf("GET /audit: got %d %s, want both entries", code, b)
	}
	billStop(t, srv)
}
