package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
)

func TestAccountSettingsAndConsoleKey(t *testing.T) {
	eachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		now := time.UnixMilli(1_790_000_000_000).UTC()
		if err := s.CreateAccount(ctx, platform.Account{ID: "acme", Name: "acme", CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
		st, err := s.AccountSettings(ctx, "acme")
		if err != nil || st.MembersManageKeys || st.ConsoleKeyID != "" {
			t.Fatalf("got settings %+v (%v), want the zero settings for an account without a row", st, err)
		}
		for i, on := range []bool{true, true, false} {
			before, err := s.SetMembersManageKeys(ctx, "acme", on, "owner@acme.test", now.Add(time.Duration(i)*time.Second))
			if want := i == 1 || i == 2; err != nil || before != want {
				t.Fatalf("flip %d to %v: got before %v (%v), want %v", i, on, before, err, want)
			}
		}
		var audits int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_log WHERE account_id = 'acme' AND action = $1 AND actor = 'owner@acme.test'`,
			platform.ActionMembersManageKeys).Scan(&audits); err != nil || audits != 3 {
			t.Fatalf("got %d audit rows (%v), want one per change: 3", audits, err)
		}

		// Eight first uses at once make one console key, stored revoked.
		var wg sync.WaitGroup
		ids := make([]string, 8)
		errs := make([]error, 8)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, _ := platform.NewKey("acme", "console", now)
				ids[i], errs[i] = s.ConsoleKey(ctx, k)
			}()
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != nil || ids[i] != ids[0] {
				t.Fatalf("console key %d: got %q (%v), want every caller to get %q", i, ids[i], errs[i], ids[0])
			}
		}
		keys, _ := s.ListKeys(ctx, "acme")
		if len(keys) != 1 || keys[0].ID != ids[0] || !keys[0].Revoked() {
			t.Fatalf("got keys %+v, want the one console key, revoked", keys)
		}
		st, _ = s.AccountSettings(ctx, "acme")
		if st.ConsoleKeyID != ids[0] || st.MembersManageKeys {
			t.Fatalf("got settings %+v, want the console key kept and the switch off", st)
		}
	})
}

func TestSignUpRowsAndUndo(t *testing.T) {
	eachStore(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		now := time.UnixMilli(1_790_000_000_000).UTC()
		a := platform.Account{ID: "acct_new", Name: "new@example.com", CreatedAt: now}
		u := platform.User{ID: "usr_new", Email: "new@example.com", AccountID: a.ID, Role: platform.RoleOwner, PasswordHash: "h", CreatedAt: now}
		if err := s.CreateSignUp(ctx, a, u); err != nil {
			t.Fatal(err)
		}
		// The same e-mail again: nothing of the second sign-up is kept.
		a2, u2 := a, u
		a2.ID, u2.ID, u2.AccountID = "acct_two", "usr_two", "acct_two"
		if err := s.CreateSignUp(ctx, a2, u2); !IsUniqueViolation(err) {
			t.Fatalf("second sign-up with the e-mail: got %v, want a unique violation", err)
		}
		if _, err := s.GetAccount(ctx, "acct_two"); err == nil {
			t.Fatal("a refused sign-up left its account")
		}
		if err := s.DeleteSignUp(ctx, a.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccount(ctx, a.ID); err == nil {
			t.Fatal("the undone sign-up's account is still there")
		}
		if _, err := s.GetUserByEmail(ctx, u.Email); err == nil {
			t.Fatal("the undone sign-up's user is still there")
		}
		// An account with keys is never deleted by the undo.
		if err := s.CreateSignUp(ctx, a, u); err != nil {
			t.Fatal(err)
		}
		k, _ := platform.NewKey(a.ID, "k", now)
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSignUp(ctx, a.ID, u.ID); err == nil {
			t.Fatal("undo deleted an account that has keys")
		}
	})
}
