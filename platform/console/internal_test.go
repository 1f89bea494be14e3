package console

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The two catalogues hold the same keys, so no label falls back silently.
func TestCataloguesMatch(t *testing.T) {
	keys := func(m map[string]string) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if d := cmp.Diff(keys(zh), keys(en)); d != "" {
		t.Fatalf("zh and en keys differ (-zh +en):\n%s", d)
	}
}

// Pages are parsed at the first page served, not in New: a broken template
// must still fail here, every page with the layout it is rendered through.
func TestEveryPageParses(t *testing.T) {
	got := pages()
	want := append([]string{}, pageFiles...)
	for p := range adminPageFiles {
		want = append(want, p)
	}
	for _, p := range want {
		if got[p] == nil || got[p].Lookup("layout") == nil || got[p].Lookup("content") == nil {
			t.Errorf("page %s: got no parsed layout and content, want both", p)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d parsed pages, want %d", len(got), len(want))
	}
}

func TestLimiterWindow(t *testing.T) {
	l := newLimiter(RateLimit{PerUser: 3, PerIP: 5, Window: time.Minute})
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if w := l.blocked(t0, "a", "ip1"); w != 0 {
			t.Fatalf("before failure %d: got wait %v, want 0", i+1, w)
		}
		l.fail(t0.Add(time.Duration(i)*time.Second), "a", "ip1")
	}
	if got, want := l.blocked(t0.Add(3*time.Second), "a", "ip2"), 57*time.Second; got != want {
		t.Fatalf("user after 3 failures: got wait %v, want %v", got, want)
	}
	if w := l.blocked(t0.Add(3*time.Second), "b", "ip1"); w != 0 {
		t.Fatalf("another user on the address after 3 failures: got wait %v, want 0 (address limit 5)", w)
	}
	l.fail(t0.Add(4*time.Second), "b", "ip1")
	l.fail(t0.Add(5*time.Second), "c", "ip1")
	if w := l.blocked(t0.Add(6*time.Second), "d", "ip1"); w <= 0 {
		t.Fatal("address after 5 failures: got no wait, want one")
	}
	if w := l.blocked(t0.Add(2*time.Minute), "a", "ip1"); w != 0 {
		t.Fatalf("after the window: got wait %v, want 0", w)
	}
	l.fail(t0.Add(2*time.Minute), "a", "ip3")
	l.succeed("a")
	if n := len(l.fails["u:a"]); n != 0 {
		t.Fatalf("after a success: got %d failures kept for the user, want 0", n)
	}
}

func TestNiceAxis(t *testing.T) {
	for _, c := range []struct{ in, want float64 }{{0, 1}, {0.3, 0.5}, {7, 10}, {1200, 2000}, {2000, 2000}, {2001, 5000}} {
		if got := niceCeil(c.in); got != c.want {
			t.Errorf("niceCeil(%v): got %v, want %v", c.in, got, c.want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{"/console/usage?days=7": "/console/usage?days=7", "//evil.test/console/": "/console/keys",
		"https://evil.test/": "/console/keys", "/console/\\evil": "/console/keys", "": "/console/keys"} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q): got %q, want %q", in, got, want)
		}
	}
}
