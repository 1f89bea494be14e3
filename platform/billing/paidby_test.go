package billing

import (
	"encoding/json"
	"reflect"
	"testing"
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
