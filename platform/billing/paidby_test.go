package billing

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/glmkit/glmkit/platform"
)

// PaidByJSON is written by hand for speed; it must be exactly what
// encoding/json writes for a Charge, for every shape of charge, and a
// field added to Charge or Part must not slip past it unnoticed.
func TestPaidByJSONSameBytesAsEncodingJSON(t *testing.T) {
	if got, want := reflect.TypeFor[Charge]().NumField(), 6; got != want {
		t.Fatalf("Charge has %d fields, PaidByJSON writes %d: teach it the new one", got, want)
	}
	if got, want := reflect.TypeFor[Part]().NumField(), 4; got != want {
		t.Fatalf("Part has %d fields, PaidByJSON writes %d: teach it the new one", got, want)
	}
	charges := []Charge{
		{},
		{Parts: []Part{}},
		{Amount: 100, Cash: 100, Parts: []Part{{Source: PartCash, LeaseID: "lease_1", Tokens: 1000, Micros: 100}}},
		{Amount: 350, Discount: 250, Cash: 60, Shortfall: 40, PackageTokens: 2500, Parts: []Part{
			{Source: "pkg_01J", LeaseID: "lease_a", Tokens: 2500, Micros: 250},
			{Source: PartCash, Tokens: 600, Micros: 60},
		}},
		{Amount: -5, Cash: -5, Parts: []Part{{Source: PartCash, LeaseID: "l", Tokens: -1, Micros: -5}}},
		{Amount: 9_223_372_036_854_775_807, Parts: []Part{{Source: "a<b>&c", LeaseID: "x"}}},
		{Parts: []Part{{Source: "q\"uote\\", LeaseID: "ünï"}}},
		{Parts: []Part{{Source: "ok", LeaseID: "tab\there"}}},
	}
	for i, c := range charges {
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.PaidByJSON(); got != string(want) {
			t.Errorf("charge %d: got %s, want %s", i, got, want)
		}
	}
}

// Any charge, any strings in its parts (escaping, invalid UTF-8, HTML
// characters), any number of parts including none and nil: the same bytes
// as encoding/json.
func FuzzPaidByJSON(f *testing.F) {
	f.Add(int64(350), int64(250), int64(60), int64(40), int64(2500), uint8(2), "pkg_01J", "ls_a", "cash", "", int64(2500), int64(-5))
	f.Add(int64(0), int64(0), int64(0), int64(0), int64(0), uint8(0), "", "", "", "", int64(0), int64(0))
	f.Add(int64(-1), int64(1<<62), int64(3), int64(0), int64(7), uint8(1), "a<b>&c\u2028", "\xff\"", "\t", "é", int64(1), int64(2))
	f.Fuzz(func(t *testing.T, amount, discount, cash, shortfall, pkgTokens int64, nparts uint8, s1, l1, s2, l2 string, tokens, micros int64) {
		c := Charge{Amount: Micros(amount), Discount: Micros(discount), Cash: Micros(cash), Shortfall: Micros(shortfall), PackageTokens: pkgTokens}
		switch nparts % 4 {
		case 1:
			c.Parts = []Part{}
		case 2:
			c.Parts = []Part{{Source: s1, LeaseID: l1, Tokens: tokens, Micros: Micros(micros)}}
		case 3:
			c.Parts = []Part{{Source: s1, LeaseID: l1, Tokens: tokens, Micros: Micros(micros)}, {Source: s2, LeaseID: l2, Tokens: micros, Micros: Micros(tokens)}}
		}
		want, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.PaidByJSON(); got != string(want) {
			t.Errorf("got %s, want %s", got, want)
		}
	})
}

func BenchmarkPaidByJSON(b *testing.B) {
	c := Charge{Amount: 350, Discount: 250, Cash: 100, PackageTokens: 2500, Parts: []Part{
		{Source: "pkg_01J", LeaseID: "lease_a", Tokens: 2500, Micros: 250},
		{Source: PartCash, LeaseID: "lease_b", Tokens: 1000, Micros: 100},
	}}
	b.ReportAllocs()
	for b.Loop() {
		_ = c.PaidByJSON()
	}
}

// The meter's SettleRecord hands back the paid-by JSON the request-log row
// was stored with (encoded once for both), and it is the charge's.
func TestMeterSettleRecordPaidByIsTheLogRows(t *testing.T) {
	r := newRig(t, filepath.Join(t.TempDir(), "glm.db"))
	r.topup("acct", "1")
	e := r.engine(Config{})
	ctx := context.Background()
	res, err := Meter{Engine: e}.Reserve(ctx, platform.ReserveRequest{RequestLogID: "req-1", AccountID: "acct", KeyID: "k", Model: "glm-4", PromptTokens: 100, MaxTokens: 100})
	if err != nil {
		t.Fatal(err)
	}
	rr, ok := res.(platform.RecordingReservation)
	if !ok {
		t.Fatalf("got %T, want a platform.RecordingReservation", res)
	}
	c, recorded, err := rr.SettleRecord(ctx, platform.Settlement{Usage: platform.Usage{PromptTokens: 100, CompletionTokens: 50}, Outcome: platform.OutcomeOK},
		platform.RequestLog{ID: "req-1", AccountID: "acct", KeyID: "k", Model: "glm-4", Endpoint: "chat/completions", HTTPStatus: 200})
	if err != nil || !recorded {
		t.Fatalf("SettleRecord: recorded %v, %v; want recorded", recorded, err)
	}
	if err := e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := r.db.SQL.QueryRowContext(ctx, `SELECT charge_paid_by FROM request_log WHERE id = 'req-1'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	var charge Charge
	if err := json.Unmarshal([]byte(c.PaidBy), &charge); err != nil || c.PaidBy != stored || Micros(c.Amount) != charge.Amount || charge.Amount == 0 {
		t.Fatalf("got paid_by %s (amount %d, %v), log row has %s; want the same charge in both", c.PaidBy, c.Amount, err, stored)
	}
}
