package store

// Console users and sessions (docs/console.md §2). Sessions are read from
// the database on every console request, so a sign-out, a disabled user
// or a changed password ends a session on every replica at once.

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform"
)

const userColumns = `id, email, account_id, role, password_hash, created_at, disabled_at`

func scanUser(sc interface{ Scan(...any) error }) (platform.User, error) {
	var u platform.User
	var created, disabled int64
	if err := sc.Scan(&u.ID, &u.Email, &u.AccountID, &u.Role, &u.PasswordHash, &created, &disabled); err != nil {
		return platform.User{}, err
	}
	u.CreatedAt, u.DisabledAt = fromMS(created), fromMS(disabled)
	return u, nil
}

// CreateUser inserts a user; a taken e-mail is a unique violation
// (IsUniqueViolation).
func (s *SQL) CreateUser(ctx context.Context, u platform.User) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		u.ID, u.Email, u.AccountID, u.Role, u.PasswordHash, ms(u.CreatedAt), ms(u.DisabledAt)); err != nil {
		return fmt.Errorf("store: create user: %w", err)
	}
	return nil
}

// GetUserByEmail reads one user by e-mail (stored lower-case), or
// ErrNotFound.
func (s *SQL) GetUserByEmail(ctx context.Context, email string) (platform.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = $1`, email))
	if err != nil {
		return platform.User{}, fmt.Errorf("store: get user: %w", notFound(err))
	}
	return u, nil
}

// ListUsers lists users, oldest first; accountID "" lists everyone.
func (s *SQL) ListUsers(ctx context.Context, accountID string) ([]platform.User, error) {
	q := `SELECT ` + userColumns + ` FROM users`
	var args []any
	if accountID != "" {
		q += ` WHERE account_id = ` + Arg(&args, accountID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	var out []platform.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return out, nil
}

// CountUsers counts every user (first start creates the operator when
// there is none).
func (s *SQL) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count users: %w", err)
	}
	return n, nil
}

// DisableUser marks a user disabled and ends all its sessions, in one
// transaction (ErrNotFound for an unknown id).
func (s *SQL) DisableUser(ctx context.Context, userID string, at time.Time) error {
	return s.h.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET disabled_at = CASE WHEN disabled_at = 0 THEN $2 ELSE disabled_at END
			WHERE id = $1`, userID, ms(at))
		if err != nil {
			return fmt.Errorf("store: disable user: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return fmt.Errorf("store: disable user %s: %w", userID, platform.ErrNotFound)
		}
		return revokeSessions(ctx, tx, userID, "", at)
	})
}

// SetPassword stores a new password hash and ends every session of the
// user except keep (the session that changed it; "" ends them all).
func (s *SQL) SetPassword(ctx context.Context, userID, hash, keep string, at time.Time) error {
	return s.h.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, userID, hash)
		if err != nil {
			return fmt.Errorf("store: set password: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return fmt.Errorf("store: set password %s: %w", userID, platform.ErrNotFound)
		}
		return revokeSessions(ctx, tx, userID, keep, at)
	})
}

func revokeSessions(ctx context.Context, tx *sql.Tx, userID, keep string, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $3 WHERE user_id = $1 AND id <> $2 AND revoked_at = 0`,
		userID, keep, ms(at)); err != nil {
		return fmt.Errorf("store: revoke sessions: %w", err)
	}
	return nil
}

// CreateSession inserts a session.
func (s *SQL) CreateSession(ctx context.Context, se platform.Session) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sessions (id, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		se.ID, se.UserID, se.CSRF, ms(se.CreatedAt), ms(se.ExpiresAt)); err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// GetSession returns a live session and its user: a session that is
// revoked, expired at now, or whose user is disabled is ErrNotFound.
func (s *SQL) GetSession(ctx context.Context, id string, now time.Time) (platform.Session, platform.User, error) {
	var se platform.Session
	var created, expires int64
	row := s.db.QueryRowContext(ctx, `SELECT s.id, s.user_id, s.csrf, s.created_at, s.expires_at,
		u.id, u.email, u.account_id, u.role, u.password_hash, u.created_at, u.disabled_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = $1 AND s.revoked_at = 0 AND s.expires_at > $2 AND u.disabled_at = 0`, id, ms(now))
	var u platform.User
	var uCreated, uDisabled int64
	if err := row.Scan(&se.ID, &se.UserID, &se.CSRF, &created, &expires,
		&u.ID, &u.Email, &u.AccountID, &u.Role, &u.PasswordHash, &uCreated, &uDisabled); err != nil {
		return platform.Session{}, platform.User{}, fmt.Errorf("store: get session: %w", notFound(err))
	}
	se.CreatedAt, se.ExpiresAt = fromMS(created), fromMS(expires)
	u.CreatedAt, u.DisabledAt = fromMS(uCreated), fromMS(uDisabled)
	return se, u, nil
}

// RevokeSession ends one session (sign-out); an unknown id is no error.
func (s *SQL) RevokeSession(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at = 0`, id, ms(at)); err != nil {
		return fmt.Errorf("store: revoke session: %w", err)
	}
	return nil
}

// PurgeSessions deletes sessions that expired or were revoked before the
// cut-off.
func (s *SQL) PurgeSessions(ctx context.Context, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR (revoked_at > 0 AND revoked_at < $1)`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("store: purge sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// RecentRequestLogs returns one page of an account's request log, newest
// first in (created_at, id) order, after the cursor when one is set. The
// (account_id, created_at, id), (account_id, model, created_at, id) and
// (account_id, key_id, created_at, id) indexes (migration 0011) give the
// rows in that order, so a page costs its rows, not the log: the cursor is
// a range on created_at (index) plus a tie-break on id that only the
// boundary millisecond's rows need.
func (s *SQL) RecentRequestLogs(ctx context.Context, f platform.RecentRequests) ([]platform.RequestLog, error) {
	var args []any
	q := `SELECT ` + logColumns + ` FROM request_log WHERE account_id = ` + Arg(&args, f.AccountID)
	if f.Model != "" {
		q += ` AND model = ` + Arg(&args, f.Model)
	}
	if f.KeyID != "" {
		q += ` AND key_id = ` + Arg(&args, f.KeyID)
	}
	if !f.BeforeAt.IsZero() {
		at := ms(f.BeforeAt)
		q += ` AND created_at <= ` + Arg(&args, at) + ` AND (created_at < ` + Arg(&args, at) + ` OR id < ` + Arg(&args, f.BeforeID) + `)`
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + Arg(&args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: recent request log: %w", err)
	}
	out, err := scanLogRows(rows)
	if err != nil {
		return nil, fmt.Errorf("store: recent request log: %w", err)
	}
	// These rows are shown to an account's own people: the cause of a
	// failure is the operator's (it may name backends and hosts).
	for i := range out {
		out[i].ErrorDetail = ""
	}
	return out, nil
}
