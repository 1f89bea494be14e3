-- Console users and their sessions (docs/console.md §2). An admin has no
-- account (account_id ''), so account_id carries no foreign key. A session
-- row is keyed by the SHA-256 of its cookie token; revoked_at ends it on
-- every replica at once, since each console request reads its row.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL DEFAULT '',
    role           TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    disabled_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX users_account ON users (account_id);

CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id),
    csrf        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_user ON sessions (user_id);
