package admin

// Console users (docs/console.md §2): the validators and operations that
// `glm users`, the admin API and the console share, so all three accept
// exactly the same input. Passwords are hashed with argon2id.

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/glmkit/glmkit/platform"
)

// UserStore is what user management needs from the store
// (platform/store.SQL has it).
type UserStore interface {
	CreateUser(ctx context.Context, u platform.User) error
	GetUserByEmail(ctx context.Context, email string) (platform.User, error)
	ListUsers(ctx context.Context, accountID string) ([]platform.User, error)
	DisableUser(ctx context.Context, userID string, at time.Time) error
	SetPassword(ctx context.Context, userID, hash, keep string, at time.Time) error
}

// Password bounds: long enough to resist guessing behind the sign-in rate
// limit, short enough that hashing cannot be used to burn CPU.
const (
	MinPassword = 8
	MaxPassword = 256
)

// NormalizeEmail checks an e-mail address and returns its stored form
// (lower-case, trimmed).
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return "", platform.Errorf(platform.CodeMissingField, "email must not be empty")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 || !strings.Contains(s[strings.IndexByte(s, '@')+1:], ".") && !strings.HasSuffix(s, "@localhost") {
		return "", invalid("email %q is not an e-mail address", s)
	}
	return s, nil
}

// CheckPassword checks a new password's length.
func CheckPassword(pw string) error {
	if len([]rune(pw)) < MinPassword {
		return invalid("password: at least %d characters", MinPassword)
	}
	if len(pw) > MaxPassword {
		return invalid("password: at most %d bytes", MaxPassword)
	}
	return nil
}

// CheckRole checks a role and the account that goes with it: owners and
// members need an account, admins have none.
func CheckRole(role, accountID string) error {
	switch role {
	case platform.RoleOwner, platform.RoleMember:
		if accountID == "" {
			return platform.Errorf(platform.CodeMissingField, "role %s needs an account", role)
		}
		if !ValidAccountID(accountID) {
			return invalid("account %q: 1–64 characters of A–Z a–z 0–9 _ - .", accountID)
		}
	case platform.RoleAdmin:
		if accountID != "" {
			return invalid("role admin has no account")
		}
	default:
		return invalid("role %q: want owner, member or admin", role)
	}
	return nil
}

// argon2id parameters: the OWASP minimum (19 MiB, 2 passes, 1 lane).
const (
	argonTime   = 2
	argonMemory = 19 * 1024
	argonLanes  = 1
	argonKeyLen = 32
)

var b64 = base64.RawStdEncoding

// HashPassword returns pw's argon2id hash in PHC form
// ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
func HashPassword(pw string) string {
	salt := []byte(platform.RandomID("", 8))
	sum := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonLanes, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonLanes,
		b64.EncodeToString(salt), b64.EncodeToString(sum))
}

// PasswordMatches reports whether pw matches a hash made by HashPassword,
// comparing in constant time. A malformed hash matches nothing.
func PasswordMatches(hash, pw string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || len(pw) > MaxPassword {
		return false
	}
	var v int
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// NewUser is a user to create.
type NewUser struct {
	Email, AccountID, Role, Password string
}

// CreateUser validates nu (the account must exist for owners and members)
// and stores the user with the password hashed. A taken e-mail is 409.
func CreateUser(ctx context.Context, us UserStore, accounts platform.AccountStore, nu NewUser, now time.Time) (platform.User, error) {
	email, err := NormalizeEmail(nu.Email)
	if err != nil {
		return platform.User{}, err
	}
	if err := CheckRole(nu.Role, nu.AccountID); err != nil {
		return platform.User{}, err
	}
	if err := CheckPassword(nu.Password); err != nil {
		return platform.User{}, err
	}
	if nu.AccountID != "" {
		if _, err := accounts.GetAccount(ctx, nu.AccountID); errors.Is(err, platform.ErrNotFound) {
			return platform.User{}, notFound("no account %q", nu.AccountID)
		} else if err != nil {
			return platform.User{}, fmt.Errorf("admin: get account: %w", err)
		}
	}
	taken := func() bool { _, err := us.GetUserByEmail(ctx, email); return err == nil }
	if taken() {
		return platform.User{}, userExists(email)
	}
	u := platform.User{ID: platform.RandomID("usr_", 8), Email: email, AccountID: nu.AccountID, Role: nu.Role,
		PasswordHash: HashPassword(nu.Password), CreatedAt: now.UTC()}
	if err := us.CreateUser(ctx, u); err != nil {
		if taken() { // lost a race with another create
			return platform.User{}, userExists(email)
		}
		return platform.User{}, fmt.Errorf("admin: create user: %w", err)
	}
	return u, nil
}

func userExists(email string) error {
	return &platform.Error{Code: platform.CodeInvalidField, HTTP: 409, Message: "user " + email + " already exists"}
}

// FindUser loads a user by e-mail: 404 when there is none.
func FindUser(ctx context.Context, us UserStore, email string) (platform.User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return platform.User{}, err
	}
	u, err := us.GetUserByEmail(ctx, e)
	if errors.Is(err, platform.ErrNotFound) {
		return platform.User{}, notFound("no user %q", e)
	}
	if err != nil {
		return platform.User{}, fmt.Errorf("admin: get user: %w", err)
	}
	return u, nil
}

// DisableUser disables the user with that e-mail and ends its sessions.
func DisableUser(ctx context.Context, us UserStore, email string, now time.Time) (platform.User, error) {
	u, err := FindUser(ctx, us, email)
	if err != nil {
		return platform.User{}, err
	}
	if err := us.DisableUser(ctx, u.ID, now); err != nil {
		return platform.User{}, fmt.Errorf("admin: disable user: %w", err)
	}
	if u.DisabledAt.IsZero() {
		u.DisabledAt = now.UTC()
	}
	return u, nil
}

// ChangePassword sets a new password and ends every session of the user
// but keep ("" ends them all).
func ChangePassword(ctx context.Context, us UserStore, email, pw, keep string, now time.Time) (platform.User, error) {
	u, err := FindUser(ctx, us, email)
	if err != nil {
		return platform.User{}, err
	}
	if err := CheckPassword(pw); err != nil {
		return platform.User{}, err
	}
	if err := us.SetPassword(ctx, u.ID, HashPassword(pw), keep, now); err != nil {
		return platform.User{}, fmt.Errorf("admin: set password: %w", err)
	}
	return u, nil
}

// User is the JSON form of a user (never its hash).
type User struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	AccountID  string     `json:"account_id"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at"`
}

// UserView is u as JSON.
func UserView(u platform.User) User {
	out := User{ID: u.ID, Email: u.Email, AccountID: u.AccountID, Role: u.Role, CreatedAt: u.CreatedAt}
	if !u.DisabledAt.IsZero() {
		t := u.DisabledAt
		out.DisabledAt = &t
	}
	return out
}

// UserViews is a user list as JSON; never nil.
func UserViews(us []platform.User) []User { return views(us, UserView) }
