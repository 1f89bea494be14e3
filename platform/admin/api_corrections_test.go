package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/glmkit/glmkit/platform/billing"
)

// The correction routes: each needs a reason, refuses what cannot be
// undone with the V4 envelope (never a 500), and lands in GET /audit; the
// money audit balances afterwards.
func TestCorrectionRoutes(t *testing.T) {
	e := newAPIEnv(t)
	code, b, _ := e.do("POST", "/accounts/acct-1/packages", `{"tokens":99999999999999999,"days":30}`)
	if code != 201 {
		t.Fatalf("grant: %d %s", code, b)
	}
	var p struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &p); err != nil || p.ID == "" {
		t.Fatalf("grant reply %s: %v", b, err)
	}
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"revoke without reason", "POST", "/packages/" + p.ID + "/revoke", `{}`, 400, `"1213"`},
		{"unknown package", "POST", "/packages/pkg_nope/revoke", `{"reason":"x"}`, 404, "no package"},
		{"adjust by 0", "POST", "/packages/" + p.ID + "/adjust", `{"tokens":0,"reason":"x"}`, 400, "must not be 0"},
		{"revoke", "POST", "/packages/" + p.ID + "/revoke", `{"reason":"typo in tokens"}`, 200, `"package.revoke"`},
		{"shrink below zero", "POST", "/packages/" + p.ID + "/adjust", `{"tokens":-1,"reason":"x"}`, 400, "cannot take 1"},
		{"cash up", "POST", "/accounts/acct-1/cash/adjust", `{"cny":"50","reason":"wire transfer"}`, 200, `"cash.adjust"`},
		{"cash down too far", "POST", "/accounts/acct-1/cash/adjust", `{"cny":"-80","reason":"x"}`, 400, "cannot take ¥80"},
		{"cash down", "POST", "/accounts/acct-1/cash/adjust", `{"cny":-45,"reason":"typo"}`, 200, `"unleased 5.000000"`},
		{"cash zero", "POST", "/accounts/acct-1/cash/adjust", `{"cny":"0","reason":"x"}`, 400, "must not be 0"},
		{"delete a missing price", "DELETE", "/prices/nosuchmodel?reason=x", ``, 404, "no price row"},
		{"delete a price without reason", "DELETE", "/prices/glm-4", ``, 400, "reason is required"},
		{"delete a price", "DELETE", "/prices/glm-4?reason=free+this+month", ``, 200, `"price.delete"`},
	} {
		code, b, _ := e.do(c.method, c.path, c.body)
		if code != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s: got %d %s, want %d containing %s", c.name, code, b, c.status, c.want)
		}
	}
	code, b, _ = e.do("GET", "/audit?limit=10", "")
	var log struct {
		Data []billing.AuditEntry `json:"data"`
	}
	if code != 200 || json.Unmarshal(b, &log) != nil || len(log.Data) != 4 {
		t.Fatalf("GET /audit: got %d %s, want 4 entries", code, b)
	}
	for _, en := range log.Data {
		if !strings.HasPrefix(en.Actor, "admin-api@") || en.Reason == "" {
			t.Errorf("entry %+v: want an admin-api actor and a reason", en)
		}
	}
	a, err := e.bill.Audit(context.Background(), "")
	if err != nil || a.Err() != nil {
		t.Errorf("money audit after the corrections: %v %v", err, a.Err())
	}
}

// Model names in prices and package scopes must be served, unless forced.
func TestModelCheck(t *testing.T) {
	known := func(n string) bool { return n == "glm-4" }
	if err := Models("model", []string{"glm-4", "*"}, known, false); err != nil {
		t.Errorf("served names: got %v, want nil", err)
	}
	err := Models("models", []string{"glm-4", "nosuchmodel"}, known, false)
	if err == nil || !strings.Contains(err.Error(), "no model nosuchmodel is served") {
		t.Errorf("unserved: got %v, want refused naming it", err)
	}
	if err := Models("models", []string{"nosuchmodel"}, known, true); err != nil {
		t.Errorf("forced: got %v, want nil", err)
	}
}
