-- Account settings the console keeps (docs/console.md §9): whether an
-- account's members may create and revoke API keys (the owner's switch,
-- off by default), and the account's console key — the key id the
-- playground's calls are limited, charged and logged under. That key is
-- stored revoked from the moment it is made, so the API refuses it on
-- every replica by the check it already makes, and the keys pages, which
-- list live keys only, never show it.

CREATE TABLE account_settings (
    account_id           TEXT PRIMARY KEY REFERENCES accounts(id),
    members_manage_keys  INTEGER NOT NULL DEFAULT 0,
    console_key_id       TEXT NOT NULL DEFAULT '',
    updated_at           BIGINT NOT NULL DEFAULT 0
);
