package admin

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/envelope"
)

// MaxAccountName bounds an account's display name.
const MaxAccountName = 200

// CheckAccountID is the one rule for an account id, for the admin API and
// the commands alike: ids go into URLs, CSV files and logs, so 1–64
// characters of A–Z a–z 0–9 _ - . ("../x", "a b" and "" are refused).
func CheckAccountID(id string) error {
	if !ValidAccountID(id) {
		return invalid("account id %s: want 1–64 characters of A–Z a–z 0–9 _ - .", envelope.Quote(id))
	}
	if id == "." || id == ".." {
		return invalid("account id %s: want 1–64 characters of A–Z a–z 0–9 _ - ., not a path", envelope.Quote(id))
	}
	return nil
}

// errAccountExists is the answer to a duplicate id: 409 on the API, the
// same sentence on the command line (never the database's constraint
// text).
func errAccountExists(id string) error {
	return &platform.Error{Code: platform.CodeInvalidField, HTTP: http.StatusConflict, Message: "account " + id + " already exists"}
}

// CreateAccount checks and stores a new account: the id (a random one when
// empty) and the name (the id when empty).
func CreateAccount(ctx context.Context, accts platform.AccountStore, id, name string, now time.Time) (platform.Account, error) {
	if id == "" {
		id = NewAccountID()
	}
	if err := CheckAccountID(id); err != nil {
		return platform.Account{}, err
	}
	if name == "" {
		name = id
	}
	if len(name) > MaxAccountName {
		return platform.Account{}, invalid("name: at most %d bytes", MaxAccountName)
	}
	exists := func() bool { _, err := accts.GetAccount(ctx, id); return err == nil }
	if exists() {
		return platform.Account{}, errAccountExists(id)
	}
	acct := platform.Account{ID: id, Name: name, CreatedAt: now.UTC()}
	if err := accts.CreateAccount(ctx, acct); err != nil {
		if exists() { // lost a race with another create
			return platform.Account{}, errAccountExists(id)
		}
		return platform.Account{}, fmt.Errorf("admin: create account: %w", err)
	}
	return acct, nil
}
