package admin

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/billing"
)

// The JSON of a key is what both glm keys --json and the admin API answer:
// the full key only at creation, null times when unset.
func TestKeyView(t *testing.T) {
	k, err := platform.NewKey("acme", "ci", time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(KeyView(k, true))
	if !strings.Contains(string(b), `"key":"`+k.Full()+`"`) || !strings.Contains(string(b), `"last_used_at":null,"revoked_at":null`) {
		t.Fatalf("created view: %s", b)
	}
	b, _ = json.Marshal(KeyViews([]platform.Key{k}))
	if strings.Contains(string(b), k.Secret) || strings.Contains(string(b), `"key"`) || !strings.Contains(string(b), k.Masked()) {
		t.Fatalf("list view leaks or lacks the mask: %s", b)
	}
	if b, _ = json.Marshal(KeyViews(nil)); string(b) != "[]" {
		t.Fatalf("empty list: %s", b)
	}
}

func TestPackageViewAllModels(t *testing.T) {
	b, _ := json.Marshal(PackageViews([]billing.Package{{ID: "pkg_1"}}, time.Now()))
	if !strings.Contains(string(b), `"models":[]`) {
		t.Fatalf("all-models scope: %s", b)
	}
}

func TestNewAccountID(t *testing.T) {
	id := NewAccountID()
	if !strings.HasPrefix(id, "acct_") || len(id) != len("acct_")+16 {
		t.Fatalf("got %q, want acct_ and 16 hex characters", id)
	}
}
