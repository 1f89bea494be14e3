package store

// Account settings (migration 0013, docs/console.md §9): the owner's
// member-key switch, the playground's console key, and the rows a
// self-service sign-up writes together.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// AccountSettings reads an account's settings; an account without a row
// has the zero settings (nothing allowed, no console key).
func (s *SQL) AccountSettings(ctx context.Context, accountID string) (platform.AccountSettings, error) {
	st := platform.AccountSettings{AccountID: accountID}
	var manage int
	var updated int64
	err := s.db.QueryRowContext(ctx, `SELECT members_manage_keys, console_key_id, updated_at FROM account_settings WHERE account_id = $1`,
		accountID).Scan(&manage, &st.ConsoleKeyID, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("store: account settings: %w", err)
	}
	st.MembersManageKeys, st.UpdatedAt = manage != 0, fromMS(updated)
	return st, nil
}

// ensureSettings makes the account's settings row when there is none.
func ensureSettings(ctx context.Context, tx *sql.Tx, accountID string) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO account_settings (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING`,
		accountID); err != nil {
		return fmt.Errorf("store: account settings: %w", err)
	}
	return nil
}

// SetMembersManageKeys sets the owner's switch and writes its audit-log
// row (who, before, after) in the same transaction, so the log never
// misses a change nor records one that did not happen. It returns the
// value before.
func (s *SQL) SetMembersManageKeys(ctx context.Context, accountID string, on bool, actor string, at time.Time) (before bool, err error) {
	err = s.h.Tx(ctx, func(tx *sql.Tx) error {
		if err := ensureSettings(ctx, tx, accountID); err != nil {
			return err
		}
		var was int
		// The update takes the row's lock first, so two owners flipping
		// at once are logged in the order they happened.
		if _, err := tx.ExecContext(ctx, `UPDATE account_settings SET updated_at = updated_at WHERE account_id = $1`, accountID); err != nil {
			return fmt.Errorf("store: set members_manage_keys: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT members_manage_keys FROM account_settings WHERE account_id = $1`, accountID).Scan(&was); err != nil {
			return fmt.Errorf("store: set members_manage_keys: %w", err)
		}
		before = was != 0
		if _, err := tx.ExecContext(ctx, `UPDATE account_settings SET members_manage_keys = $1, updated_at = $2 WHERE account_id = $3`,
			b2i(on), ms(at), accountID); err != nil {
			return fmt.Errorf("store: set members_manage_keys: %w", err)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, created_at, actor, action, account_id, subject, before_state, after_state, reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			platform.RandomID("au_", 10), ms(at), actor, platform.ActionMembersManageKeys, accountID, accountID,
			onOff(before), onOff(on), "the account owner's switch in the console")
		if err != nil {
			return fmt.Errorf("store: audit log: %w", err)
		}
		return nil
	})
	return before, err
}

func onOff(b bool) string {
	if b {
		return "members may manage keys"
	}
	return "members may not manage keys"
}

// ConsoleKey returns the account's console key id, storing k (its id and
// sealed secret) as that key when the account has none yet. k is stored
// revoked at its creation time: the API refuses it like any revoked key,
// while limits, usage rows and request-log rows can name it. Of two first
// uses at once one key wins; the other's insert is rolled back.
func (s *SQL) ConsoleKey(ctx context.Context, k platform.Key) (string, error) {
	if !platform.ValidKeyID(k.ID) || k.Secret == "" || k.AccountID == "" {
		return "", fmt.Errorf("store: console key: malformed key")
	}
	sealed, err := s.seal.seal(k.Secret, k.ID)
	if err != nil {
		return "", err
	}
	var id string
	err = s.h.Tx(ctx, func(tx *sql.Tx) error {
		id = ""
		if err := ensureSettings(ctx, tx, k.AccountID); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT console_key_id FROM account_settings WHERE account_id = $1`, k.AccountID).Scan(&id); err != nil {
			return fmt.Errorf("store: console key: %w", err)
		}
		if id != "" {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, secret_sealed, created_at, last_used_at, revoked_at)
			VALUES ($1, $2, $3, $4, $5, 0, $5)`, k.ID, k.AccountID, k.Name, sealed, ms(k.CreatedAt)); err != nil {
			return fmt.Errorf("store: console key: %w", err)
		}
		res, err := tx.ExecContext(ctx, `UPDATE account_settings SET console_key_id = $1 WHERE account_id = $2 AND console_key_id = ''`,
			k.ID, k.AccountID)
		if err != nil {
			return fmt.Errorf("store: console key: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errConsoleKeyRace
		}
		id = k.ID
		return nil
	})
	if errors.Is(err, errConsoleKeyRace) {
		st, err := s.AccountSettings(ctx, k.AccountID)
		return st.ConsoleKeyID, err
	}
	return id, err
}

var errConsoleKeyRace = errors.New("store: console key: another first use won")

// CreateSignUp stores a self-service sign-up's account, its owner and
// its settings row in one transaction: either all three exist or none.
// A taken e-mail or account id is a unique violation (IsUniqueViolation).
func (s *SQL) CreateSignUp(ctx context.Context, a platform.Account, u platform.User) error {
	return s.h.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)`,
			a.ID, a.Name, ms(a.CreatedAt)); err != nil {
			return fmt.Errorf("store: sign-up account: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			u.ID, u.Email, u.AccountID, u.Role, u.PasswordHash, ms(u.CreatedAt), ms(u.DisabledAt)); err != nil {
			return fmt.Errorf("store: sign-up user: %w", err)
		}
		return ensureSettings(ctx, tx, a.ID)
	})
}

// DeleteSignUp undoes CreateSignUp when the step after it (the trial
// package) failed: the user, its sessions, the settings row and the
// account go in one transaction. Only an account with nothing else in it
// is deleted: one that has keys is refused.
func (s *SQL) DeleteSignUp(ctx context.Context, accountID, userID string) error {
	return s.h.Tx(ctx, func(tx *sql.Tx) error {
		var keys int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM api_keys WHERE account_id = $1`, accountID).Scan(&keys); err != nil {
			return fmt.Errorf("store: undo sign-up: %w", err)
		}
		if keys > 0 {
			return fmt.Errorf("store: undo sign-up: account %s has keys", accountID)
		}
		for _, q := range []string{
			`DELETE FROM sessions WHERE user_id = $1`,
			`DELETE FROM users WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, userID); err != nil {
				return fmt.Errorf("store: undo sign-up: %w", err)
			}
		}
		for _, q := range []string{
			`DELETE FROM account_settings WHERE account_id = $1`,
			`DELETE FROM accounts WHERE id = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, accountID); err != nil {
				return fmt.Errorf("store: undo sign-up: %w", err)
			}
		}
		return nil
	})
}
