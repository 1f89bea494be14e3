package platform

import "time"

// AccountSettings are the choices an account's owner makes in the console
// (docs/console.md §9). An account without a row has the zero value:
// members may not manage keys, and no console key exists yet.
type AccountSettings struct {
	AccountID string
	// MembersManageKeys lets the account's members create and revoke API
	// keys, as the owner does.
	MembersManageKeys bool
	// ConsoleKeyID is the key the console's playground calls run under
	// (limits, usage row, request-log row); "" until its first use. The
	// key is stored revoked, so the API never accepts it.
	ConsoleKeyID string
	UpdatedAt    time.Time
}

// Audit-log action of the owner's member-key switch (docs/console.md §9).
const ActionMembersManageKeys = "account.members_manage_keys"
