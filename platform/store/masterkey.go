package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrMasterKeyMismatch: the master key in use does not open the key
// secrets stored in the database (they were sealed under another key).
var ErrMasterKeyMismatch = errors.New("the master key does not open the key secrets in this database")

// CheckMasterKey tries the store's master key on one stored key secret, so
// a wrong key is a start-up error and not a 500 on every authenticated
// request. sealed reports whether the database holds any secret at all (a
// database without one accepts any key).
func (s *SQL) CheckMasterKey(ctx context.Context) (sealed bool, err error) {
	var id, secret string
	err = s.db.QueryRowContext(ctx, `SELECT id, secret_sealed FROM api_keys ORDER BY created_at LIMIT 1`).Scan(&id, &secret)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: check master key: %w", err)
	}
	if _, err := s.seal.open(secret, id); err != nil {
		return true, ErrMasterKeyMismatch
	}
	return true, nil
}
