package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/glmkit/glmkit/platform"
)

// chunkBytes is the size of one stored content chunk: rows of ~1 MiB of
// base64 keep a large file's insert to a few hundred statements without
// one huge value.
const chunkBytes = 768 << 10

const fileColumns = `id, account_id, filename, purpose, bytes, created_at`

var _ platform.FileStore = (*SQL)(nil)

func scanFile(sc scanner) (platform.File, error) {
	var f platform.File
	var created int64
	if err := sc.Scan(&f.ID, &f.AccountID, &f.Filename, &f.Purpose, &f.Bytes, &created); err != nil {
		return platform.File{}, err
	}
	f.CreatedAt = fromMS(created)
	return f, nil
}

// CreateFile inserts the file row, only while the account's files stay
// within quota (count and insert are one statement, as CreateTaskCapped),
// and its content chunks in the same transaction.
func (s *SQL) CreateFile(ctx context.Context, f platform.File, content []byte, quota int64) (bool, error) {
	created := false
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		limit := quota
		if limit < 0 {
			limit = 1 << 62
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO files (`+fileColumns+`)
			SELECT $1, $2, $3, $4, $5, $6
			WHERE (SELECT COALESCE(SUM(bytes), 0) FROM files WHERE account_id = $2) + CAST($5 AS BIGINT) <= CAST($7 AS BIGINT)`,
			f.ID, f.AccountID, f.Filename, f.Purpose, f.Bytes, ms(f.CreatedAt), limit)
		if err != nil {
			return err
		}
		if created, err = affected(res); err != nil || !created {
			return err
		}
		return insertChunks(ctx, tx, f.ID, content)
	})
	if err != nil {
		return false, fmt.Errorf("store: create file: %w", err)
	}
	return created, nil
}

// ReplaceFile stores f and its content in place of a file with its id.
func (s *SQL) ReplaceFile(ctx context.Context, f platform.File, content []byte) error {
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM file_chunks WHERE file_id = $1`, f.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = $1`, f.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO files (`+fileColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
			f.ID, f.AccountID, f.Filename, f.Purpose, f.Bytes, ms(f.CreatedAt)); err != nil {
			return err
		}
		return insertChunks(ctx, tx, f.ID, content)
	})
	if err != nil {
		return fmt.Errorf("store: replace file: %w", err)
	}
	return nil
}

func insertChunks(ctx context.Context, tx *sql.Tx, id string, content []byte) error {
	for seq := 0; len(content) > 0; seq++ {
		n := min(len(content), chunkBytes)
		if _, err := tx.ExecContext(ctx, `INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3)`,
			id, seq, base64.StdEncoding.EncodeToString(content[:n])); err != nil {
			return err
		}
		content = content[n:]
	}
	return nil
}

// GetFile reads an account's file record.
func (s *SQL) GetFile(ctx context.Context, accountID, id string) (platform.File, error) {
	f, err := scanFile(s.db.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = $1 AND account_id = $2`, id, accountID))
	if err != nil {
		return platform.File{}, fmt.Errorf("store: get file: %w", notFound(err))
	}
	return f, nil
}

// FileContent joins a file's stored chunks (empty when none are stored).
func (s *SQL) FileContent(ctx context.Context, id string) ([]byte, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM file_chunks WHERE file_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("store: file content: %w", err)
	}
	defer rows.Close()
	var out []byte
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, fmt.Errorf("store: file content: %w", err)
		}
		b, err := base64.StdEncoding.DecodeString(d)
		if err != nil {
			return nil, fmt.Errorf("store: file content of %s: %w", id, err)
		}
		out = append(out, b...)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: file content: %w", err)
	}
	return out, nil
}

// ListFiles returns a page of an account's files in creation order.
func (s *SQL) ListFiles(ctx context.Context, q platform.FileQuery) ([]platform.File, error) {
	where := []string{"account_id = $1"}
	args := []any{q.AccountID}
	if q.Purpose != "" {
		args = append(args, q.Purpose)
		where = append(where, fmt.Sprintf("purpose = $%d", len(args)))
	}
	order, cmp := "DESC", "<"
	if q.Ascending {
		order, cmp = "ASC", ">"
	}
	if q.After != "" {
		// Creation order: milliseconds, then id (ids of one second are
		// in random order).
		args = append(args, q.After)
		n := len(args)
		where = append(where, fmt.Sprintf(`(created_at %[1]s (SELECT created_at FROM files WHERE id = $%[2]d)
			OR (created_at = (SELECT created_at FROM files WHERE id = $%[2]d) AND id %[1]s $%[2]d))`, cmp, n))
	}
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, `SELECT `+fileColumns+` FROM files WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at `+order+`, id `+order+fmt.Sprintf(" LIMIT $%d", len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list files: %w", err)
	}
	defer rows.Close()
	var out []platform.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list files: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list files: %w", err)
	}
	return out, nil
}

// DeleteFile deletes an account's file with its chunks.
func (s *SQL) DeleteFile(ctx context.Context, accountID, id string) error {
	err := s.h.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = $1 AND account_id = $2`, id, accountID)
		if err != nil {
			return err
		}
		if ok, err := affected(res); err != nil {
			return err
		} else if !ok {
			return platform.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM file_chunks WHERE file_id = $1`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete file: %w", err)
	}
	return nil
}

// FileBytes sums the sizes of an account's files.
func (s *SQL) FileBytes(ctx context.Context, accountID string) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(bytes), 0) FROM files WHERE account_id = $1`, accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: file bytes: %w", err)
	}
	return n, nil
}
