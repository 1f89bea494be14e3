package main

import (
	"strings"
	"testing"
)

// The sign-up flags are refused in their own words before anything opens.
func TestSignUpFlagsCheck(t *testing.T) {
	ok := signUpFlags{trialTokens: 1000, trialDays: 30, perIP: 5, domains: []string{"example.com", "@corp.test"}}
	if err := ok.check(); err != nil {
		t.Fatalf("good flags: got %v, want none", err)
	}
	for _, c := range []struct {
		change func(*signUpFlags)
		want   string
	}{
		{func(f *signUpFlags) { f.trialTokens = -1 }, "--signup-trial-tokens -1"},
		{func(f *signUpFlags) { f.trialDays = 0 }, "--signup-trial-days 0"},
		{func(f *signUpFlags) { f.perIP = 0 }, "--signup-per-ip 0"},
		{func(f *signUpFlags) { f.domains = []string{"a@b.test"} }, `--signup-domain "a@b.test"`},
		{func(f *signUpFlags) { f.domains = []string{" "} }, `--signup-domain ""`},
	} {
		f := ok
		c.change(&f)
		if err := f.check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error naming %s", err, c.want)
		}
	}
}
