package ledger_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
	"github.com/glmkit/glmkit/platform/store/storetest"
)

var t0 = time.Date(2024, 2, 3, 10, 0, 0, 0, time.UTC)

func open(t *testing.T, dsn string) *ledger.DB {
	t.Helper()
	db, err := store.OpenDB(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return ledger.New(db)
}

// A guarded take that finds less than it asks for changes nothing and
// reports a conflict the store's Tx treats as transient, so a money
// transaction computed from stale figures runs again instead of
// overdrawing.
func TestGuardedTakesNeverOverdraw(t *testing.T) {
	storetest.EachEngine(t, "ledger", func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := open(t, dsn)
		p := billing.Package{ID: "pkg_1", AccountID: "acct", Name: "p", Kind: billing.KindGift, TokensGranted: 100,
			PurchasedAt: t0, EffectiveAt: t0, ExpiresAt: t0.Add(time.Hour)}
		err := l.Tx(ctx, func(tx billing.LedgerTx) error {
			if err := tx.AddCash(ctx, "acct", 50, t0); err != nil {
				return err
			}
			_, err := tx.InsertPackage(ctx, p, t0, false)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for name, take := range map[string]func(billing.LedgerTx) error{
			"cash":    func(tx billing.LedgerTx) error { return tx.TakeCash(ctx, "acct", 51, t0) },
			"package": func(tx billing.LedgerTx) error { return tx.TakePackageTokens(ctx, "pkg_1", 101) },
		} {
			var got error
			_ = l.Tx(ctx, func(tx billing.LedgerTx) error {
				got = take(tx)
				return errors.New("stop") // not transient: one attempt
			})
			if !errors.Is(got, store.ErrConflict) || !store.IsTransient(got) {
				t.Errorf("%s: got %v, want a transient store.ErrConflict", name, got)
			}
		}
		if cash, err := l.Cash(ctx, "acct"); err != nil || cash != 50 {
			t.Errorf("got cash %d, %v; want 50", cash, err)
		}
		ps, err := l.Packages(ctx, "acct")
		if err != nil || len(ps) != 1 || ps[0].Unleased != 100 {
			t.Errorf("got packages %+v, %v; want pkg_1 with 100 unleased", ps, err)
		}
	})
}

// Rows read back equal what was written, at the ledger's millisecond
// precision, and a second insert under a fixed id is a no-op.
func TestRoundTrip(t *testing.T) {
	storetest.EachEngine(t, "ledger", func(t *testing.T, dsn string) {
		ctx := context.Background()
		l := open(t, dsn)
		exp := t0.Add(2*time.Minute + 123*time.Millisecond)
		p := billing.Package{ID: "pkg_w", AccountID: "acct", Name: "welcome", Kind: billing.KindGift, Models: []string{"glm-4", "glm-4v"},
			TokensGranted: 10, PurchasedAt: t0, EffectiveAt: t0, ExpiresAt: t0.Add(time.Hour)}
		var again bool
		err := l.Tx(ctx, func(tx billing.LedgerTx) error {
			if err := tx.EnsureWallet(ctx, "acct", t0); err != nil {
				return err
			}
			if _, err := tx.InsertPackage(ctx, p, t0, true); err != nil {
				return err
			}
			var err error
			if again, err = tx.InsertPackage(ctx, p, t0, true); err != nil {
				return err
			}
			if err := tx.TakePackageTokens(ctx, p.ID, 4); err != nil {
				return err
			}
			return tx.InsertLease(ctx, billing.LeaseRow{ID: "ls_1", Holder: "h", AccountID: "acct", Source: p.ID, Granted: 4,
				State: billing.LeaseActive, CreatedAt: t0, ExpiresAt: exp})
		})
		if err != nil {
			t.Fatal(err)
		}
		if again {
			t.Error("got a second insert under the same id, want none")
		}
		err = l.Tx(ctx, func(tx billing.LedgerTx) error {
			got, err := tx.EligiblePackages(ctx, "acct", t0)
			if err != nil {
				return err
			}
			want := []billing.Package{{ID: p.ID, AccountID: "acct", Models: p.Models, Unleased: 6, EffectiveAt: t0, ExpiresAt: p.ExpiresAt}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got eligible %+v, want %+v", got, want)
			}
			lr, found, err := tx.LockLease(ctx, "ls_1")
			if err != nil || !found || lr.Granted != 4 || lr.State != billing.LeaseActive || !lr.ExpiresAt.Equal(exp) {
				t.Errorf("got lease %+v %v %v, want ls_1 active, 4 granted, expiring %v", lr, found, err, exp)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := l.Outstanding(ctx, "acct")
		if err != nil || out[p.ID] != 4 {
			t.Errorf("got outstanding %v, %v; want 4 on %s", out, err, p.ID)
		}
		expired, err := l.ExpiredLeases(ctx, exp)
		if err != nil || len(expired) != 1 || expired[0].ID != "ls_1" || expired[0].AccountID != "acct" {
			t.Errorf("got expired %+v, %v; want ls_1 of acct", expired, err)
		}
		if expired, _ := l.ExpiredLeases(ctx, exp.Add(-time.Millisecond)); len(expired) != 0 {
			t.Errorf("got expired %+v a millisecond early, want none", expired)
		}
	})
}
