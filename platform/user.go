package platform

import "time"

// Roles of a console user (docs/console.md §2): an owner and a member act
// for one account, an admin is an operator and belongs to none.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
	RoleAdmin  = "admin"
)

// User is a person who signs in to the console. The password is kept only
// as its hash (PasswordHash, argon2id in PHC form).
type User struct {
	ID           string
	Email        string
	AccountID    string // "" for an admin
	Role         string
	PasswordHash string
	CreatedAt    time.Time
	DisabledAt   time.Time // zero = may sign in
}

// Disabled reports whether the user may no longer sign in.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

// Session is a signed-in browser. ID is the SHA-256 of the cookie's token,
// so a read of the table does not yield a usable cookie; CSRF is the token
// every state-changing form of this session carries.
type Session struct {
	ID        string
	UserID    string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}
