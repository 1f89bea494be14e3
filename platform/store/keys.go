package store

import (
	"context"
	"fmt"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// CreateAccount inserts an account.
func (s *SQL) CreateAccount(ctx context.Context, a platform.Account) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)`,
		a.ID, a.Name, ms(a.CreatedAt)); err != nil {
		return fmt.Errorf("store: create account: %w", err)
	}
	return nil
}

// GetAccount reads one account.
func (s *SQL) GetAccount(ctx context.Context, id string) (platform.Account, error) {
	var a platform.Account
	var created, disabled int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, created_at, disabled_at FROM accounts WHERE id = $1`, id).
		Scan(&a.ID, &a.Name, &created, &disabled)
	if err != nil {
		return platform.Account{}, fmt.Errorf("store: get account: %w", notFound(err))
	}
	a.CreatedAt, a.DisabledAt = fromMS(created), fromMS(disabled)
	return a, nil
}

// ListAccounts lists all accounts, oldest first.
func (s *SQL) ListAccounts(ctx context.Context) ([]platform.Account, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at, disabled_at FROM accounts ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	defer rows.Close()
	var out []platform.Account
	for rows.Next() {
		var a platform.Account
		var created, disabled int64
		if err := rows.Scan(&a.ID, &a.Name, &created, &disabled); err != nil {
			return nil, fmt.Errorf("store: list accounts: %w", err)
		}
		a.CreatedAt, a.DisabledAt = fromMS(created), fromMS(disabled)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	return out, nil
}

// CreateKey inserts a key with its secret sealed.
func (s *SQL) CreateKey(ctx context.Context, k platform.Key) error {
	if !platform.ValidKeyID(k.ID) || k.Secret == "" {
		return fmt.Errorf("store: create key: malformed key")
	}
	sealed, err := s.seal.seal(k.Secret, k.ID)
	if err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, secret_sealed, created_at, last_used_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		k.ID, k.AccountID, k.Name, sealed, ms(k.CreatedAt), ms(k.LastUsedAt), ms(k.RevokedAt)); err != nil {
		return fmt.Errorf("store: create key: %w", err)
	}
	return nil
}

// GetKey reads one key and opens its secret.
func (s *SQL) GetKey(ctx context.Context, id string) (platform.Key, error) {
	var k platform.Key
	var sealed string
	var created, used, revoked, disabled int64
	err := s.db.QueryRowContext(ctx, `SELECT k.id, k.account_id, k.name, k.secret_sealed, k.created_at, k.last_used_at, k.revoked_at, a.disabled_at
		FROM api_keys k JOIN accounts a ON a.id = k.account_id WHERE k.id = $1`, id).Scan(&k.ID, &k.AccountID, &k.Name, &sealed, &created, &used, &revoked, &disabled)
	if err != nil {
		return platform.Key{}, fmt.Errorf("store: get key: %w", notFound(err))
	}
	k.Secret, err = s.seal.open(sealed, k.ID)
	if err != nil {
		return platform.Key{}, err
	}
	k.CreatedAt, k.LastUsedAt, k.RevokedAt = fromMS(created), fromMS(used), fromMS(revoked)
	k.AccountDisabled = disabled != 0
	return k, nil
}

// SetAccountDisabled disables (at != zero) or enables an account; its keys
// are refused while it is disabled (platform/auth). ErrNotFound when the
// account does not exist.
func (s *SQL) SetAccountDisabled(ctx context.Context, id string, at time.Time) error {
	v := int64(0)
	if !at.IsZero() {
		v = ms(at)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE accounts SET disabled_at = $1 WHERE id = $2`, v, id)
	if err != nil {
		return fmt.Errorf("store: disable account: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("store: disable account %s: %w", id, platform.ErrNotFound)
	}
	return nil
}

// ListKeys lists keys without their secrets.
func (s *SQL) ListKeys(ctx context.Context, accountID string) ([]platform.Key, error) {
	q := `SELECT id, account_id, name, created_at, last_used_at, revoked_at FROM api_keys`
	var args []any
	if accountID != "" {
		q += ` WHERE account_id = $1`
		args = append(args, accountID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	defer rows.Close()
	var out []platform.Key
	for rows.Next() {
		var k platform.Key
		var created, used, revoked int64
		if err := rows.Scan(&k.ID, &k.AccountID, &k.Name, &created, &used, &revoked); err != nil {
			return nil, fmt.Errorf("store: list keys: %w", err)
		}
		k.CreatedAt, k.LastUsedAt, k.RevokedAt = fromMS(created), fromMS(used), fromMS(revoked)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list keys: %w", err)
	}
	return out, nil
}

// ListKeysMasked is ListKeys with each secret's last four characters opened,
// which is what Key.Masked needs; the rest of the secret is dropped.
func (s *SQL) ListKeysMasked(ctx context.Context, accountID string) ([]platform.Key, error) {
	keys, err := s.ListKeys(ctx, accountID)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		full, err := s.GetKey(ctx, keys[i].ID)
		if err != nil {
			return nil, err
		}
		sec := full.Secret
		if len(sec) > 4 {
			sec = sec[len(sec)-4:]
		}
		keys[i].Secret = sec
	}
	return keys, nil
}

// RevokeKey marks a key revoked, keeping the first revocation time.
func (s *SQL) RevokeKey(ctx context.Context, id string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_at = CASE WHEN revoked_at = 0 THEN $2 ELSE revoked_at END WHERE id = $1`,
		id, ms(at))
	if err != nil {
		return fmt.Errorf("store: revoke key: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: revoke key %s: %w", id, platform.ErrNotFound)
	}
	return nil
}

// TouchKeys moves last-used times forward in one transaction.
func (s *SQL) TouchKeys(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: touch keys: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND last_used_at < $2`)
	if err != nil {
		return fmt.Errorf("store: touch keys: %w", err)
	}
	defer stmt.Close()
	for id, t := range lastUsed {
		if _, err := stmt.ExecContext(ctx, id, ms(t)); err != nil {
			return fmt.Errorf("store: touch keys: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: touch keys: %w", err)
	}
	return nil
}
