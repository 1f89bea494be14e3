package billing

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A package granted by a typo is revoked, cash topped up by mistake is
// taken back: each correction leaves an audit-log entry, and the money
// audit balances after each (its ledger entry moves both sides).
func TestUndoWithAuditTrail(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		by := Correction{Actor: "cli:ops", Reason: "typo in --tokens"}
		typo := r.grant(Grant{AccountID: "acct", Tokens: 99_999_999_999_999_999, ExpiresAt: t0.AddDate(1, 0, 0)})
		good := r.grant(Grant{AccountID: "acct", Tokens: 1000})
		r.topup("acct", "50")
		// Spend some of the good package through an engine first.
		e := r.engine(Config{})
		res, err := e.Reserve(ctx, ReserveRequest{RequestID: "r1", AccountID: "acct", Model: "glm-4", PromptTokens: 10, MaxTokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Settle(ctx, res, Usage{PromptTokens: 10, CompletionTokens: 10}, "ok", false); err != nil {
			t.Fatal(err)
		}
		closeAll(t, e)

		if _, err := r.store.RevokePackage(ctx, typo.ID, Correction{Actor: "cli:ops"}); err == nil || !strings.Contains(err.Error(), "reason") {
			t.Errorf("revoke without a reason: got %v, want refused", err)
		}
		r.clk.Add(time.Second)
		ent, err := r.store.RevokePackage(ctx, typo.ID, by)
		if err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if ent.Action != ActionPackageRevoke || !strings.Contains(ent.Before, "granted 99999999999999999, unleased 99999999999999999") || !strings.Contains(ent.After, "unleased 0") {
			t.Errorf("revoke entry: got %+v", ent)
		}
		r.audit("acct", true)
		if _, err := r.store.AdjustPackage(ctx, good.ID, -5000, by); err == nil {
			t.Errorf("shrinking 1000 tokens by 5000: got nil error, want refused")
		}
		r.clk.Add(time.Second)
		if _, err := r.store.AdjustPackage(ctx, good.ID, -100, by); err != nil {
			t.Fatalf("shrink: %v", err)
		}
		if _, err := r.store.AdjustCash(ctx, "acct", -mustCNY("60"), by); err == nil {
			t.Errorf("taking 60 of 50 CNY: got nil error, want refused")
		}
		r.clk.Add(time.Second)
		if _, err := r.store.AdjustCash(ctx, "acct", -mustCNY("45"), by); err != nil {
			t.Fatalf("adjust cash: %v", err)
		}
		a := r.audit("acct", true)
		for _, src := range a.Sources {
			t.Logf("audit %s/%s: granted %d remaining %d charged %d", src.Account, src.Source, src.Granted, src.Remaining, src.Charged)
		}
		cash, left := r.funds("acct")
		if cash != mustCNY("5") || left[typo.ID] != 0 || left[good.ID] != 1000-20-100 {
			t.Errorf("got cash %v, packages %v; want 5 CNY, typo 0, good 880", cash, left)
		}
		log, err := r.store.AuditLog(ctx, "acct", 0)
		if err != nil || len(log) != 3 {
			t.Fatalf("audit log: got %d entries, %v; want 3", len(log), err)
		}
		if log[0].Action != ActionCashAdjust || log[2].Action != ActionPackageRevoke || log[0].Reason != by.Reason || log[0].Actor != "cli:ops" {
			t.Errorf("audit log newest first: got %+v", log)
		}
	})
}

// A revoked package stops paying on the engine that holds a lease of it:
// at once when told (the admin API's process), at its next renewal
// otherwise (glm packages revoke from another process). A reservation
// made before the revoke still settles on it.
func TestRevokeStopsServingEngines(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		for _, told := range []bool{true, false} {
			r := newRig(t, dsn)
			ctx := context.Background()
			acct := fmt.Sprintf("acct-%v", told)
			p := r.grant(Grant{AccountID: acct, Tokens: 100_000})
			e := r.engine(Config{})
			req := func(id string) ReserveRequest {
				return ReserveRequest{RequestID: id, AccountID: acct, Model: "glm-4", PromptTokens: 10, MaxTokens: 100, MinOutput: 8}
			}
			first, err := e.Reserve(ctx, req(acct+"-1"))
			if err != nil {
				t.Fatal(err)
			}
			r.clk.Add(time.Second)
			if _, err := r.store.RevokePackage(ctx, p.ID, Correction{Actor: "test", Reason: "typo"}); err != nil {
				t.Fatal(err)
			}
			r.clk.Add(time.Second)
			if told {
				e.PackageRevoked(acct, p.ID)
			} else if err := e.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Reserve(ctx, req(acct+"-2")); !is1113(err) {
				t.Errorf("told %v: reserve after the revoke: got %v, want 1113", told, err)
			}
			c, err := e.Settle(ctx, first, Usage{PromptTokens: 10, CompletionTokens: 50}, "ok", false)
			if err != nil || c.PackageTokens != 60 {
				t.Errorf("told %v: settling the earlier reservation: got %+v, %v; want 60 package tokens", told, c, err)
			}
			closeAll(t, e)
			r.audit(acct, true)
		}
	})
}

// A grant or a top-up made with a Correction writes its audit-log entry in
// its own transaction; without a reason nothing is granted or added.
func TestGrantAndTopUpByWriteTheirAuditEntry(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		r := newRig(t, dsn)
		ctx := context.Background()
		by := Correction{Actor: "console:ops@example.com", Reason: "trial for a new customer"}
		if _, err := r.store.GrantPackage(ctx, Grant{AccountID: "acct", Tokens: 1000, ExpiresAt: t0.AddDate(1, 0, 0),
			By: &Correction{Actor: "console:ops@example.com"}}); err == nil {
			t.Errorf("grant without a reason: got nil error, want refused")
		}
		if _, _, err := r.store.TopUpBy(ctx, "acct", mustCNY("5"), Correction{Actor: "x"}); err == nil {
			t.Errorf("top-up without a reason: got nil error, want refused")
		}
		if ps, _ := r.store.ListPackages(ctx, "acct"); len(ps) != 0 {
			t.Errorf("packages after refused grant: got %d, want 0", len(ps))
		}
		p, err := r.store.GrantPackage(ctx, Grant{AccountID: "acct", Tokens: 1000, ExpiresAt: t0.AddDate(1, 0, 0), By: &by})
		if err != nil {
			t.Fatalf("grant: %v", err)
		}
		r.clk.Add(time.Second)
		r.topup("acct", "2")
		e, cash, err := r.store.TopUpBy(ctx, "acct", mustCNY("5"), by)
		if err != nil {
			t.Fatalf("top-up: %v", err)
		}
		if got, want := cash, mustCNY("7"); got != want {
			t.Errorf("cash after top-ups: got %s, want %s", got, want)
		}
		if got, want := e.Before+" → "+e.After, "unleased 2.000000 → unleased 7.000000"; got != want {
			t.Errorf("top-up entry: got %q, want %q", got, want)
		}
		log, err := r.store.AuditLog(ctx, "acct", 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range log {
			got = append(got, x.Action+" "+x.Subject+" "+x.Actor+" "+x.Reason)
		}
		want := []string{"cash.topup cash " + by.Actor + " " + by.Reason, "package.grant " + p.ID + " " + by.Actor + " " + by.Reason}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("audit log:\ngot  %q\nwant %q", got, want)
		}
		r.audit("acct", true)
	})
}
