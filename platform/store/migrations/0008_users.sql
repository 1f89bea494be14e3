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

-- The console's usage charts add up an account's request log per day, key
-- and model (store.RequestDays): an index holding those columns after
-- (account_id, created_at) answers from the index alone, without a lookup
-- per row. It serves every query the narrower index served, which it
-- replaces, so a request-log insert still updates two indexes.
CREATE INDEX request_log_account_usage ON request_log (account_id, created_at, key_id, model, prompt_tokens, completion_tokens, charge_amount);
DROP INDEX request_log_account_created;
