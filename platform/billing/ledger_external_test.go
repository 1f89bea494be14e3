package billing_test

import (
	"github.com/glmkit/glmkit/platform/billing"
	"github.com/glmkit/glmkit/platform/store"
	"github.com/glmkit/glmkit/platform/store/ledger"
)

// init gives billing's own tests the platform's Ledger (see LedgerOn):
// they run on the real database, through the same SQL glm serve runs.
func init() {
	billing.LedgerOn = func(db *store.DB) billing.Ledger { return ledger.New(db) }
}
