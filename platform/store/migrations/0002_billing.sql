-- Billing's money tables: wallets (cash), resource packages, credits (the
-- record of every top-up and grant), prices, leases (credit a process
-- holds in memory), usage rows and the parts that paid for them. Money is
-- BIGINT micros of a yuan, times BIGINT Unix milliseconds, as in 0001.
--
-- Databases made before billing's tables moved here already have them
-- (created by billing itself, recorded in its own billing_migrations
-- table, which is kept so that release can still open the file): hence
-- IF NOT EXISTS everywhere and ON CONFLICT DO NOTHING on the price seed,
-- which also leaves prices an operator changed as they are.
--
-- Billing's tables have no foreign keys to accounts: the ledger stays
-- readable and auditable even if an account row is removed.

CREATE TABLE IF NOT EXISTS billing_wallets (
    account_id  TEXT PRIMARY KEY,
    cash_micros BIGINT NOT NULL CHECK (cash_micros >= 0),
    updated_at  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS billing_packages (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL,
    -- Comma-separated model scope; empty means every model.
    models           TEXT NOT NULL,
    tokens_granted   BIGINT NOT NULL,
    tokens_remaining BIGINT NOT NULL CHECK (tokens_remaining >= 0),
    purchased_at     BIGINT NOT NULL,
    effective_at     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_packages_account ON billing_packages (account_id, expires_at);

CREATE TABLE IF NOT EXISTS billing_credits (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    micros     BIGINT NOT NULL,
    tokens     BIGINT NOT NULL,
    ref        TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS billing_prices (
    model         TEXT PRIMARY KEY,
    input_micros  BIGINT NOT NULL CHECK (input_micros >= 0),
    output_micros BIGINT NOT NULL CHECK (output_micros >= 0),
    image_micros  BIGINT NOT NULL CHECK (image_micros >= 0),
    updated_at    BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS billing_leases (
    id          TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    source      TEXT NOT NULL,
    granted     BIGINT NOT NULL,
    spent       BIGINT NOT NULL,
    uncollected BIGINT NOT NULL,
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    closed_at   BIGINT NOT NULL,
    returned    BIGINT NOT NULL,
    close_note  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_leases_state ON billing_leases (state, expires_at);
CREATE INDEX IF NOT EXISTS billing_leases_holder ON billing_leases (holder, state);

CREATE TABLE IF NOT EXISTS billing_usage (
    request_id        TEXT PRIMARY KEY,
    account_id        TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    images            BIGINT NOT NULL,
    package_tokens    BIGINT NOT NULL,
    amount_micros     BIGINT NOT NULL,
    discount_micros   BIGINT NOT NULL,
    cash_micros       BIGINT NOT NULL,
    shortfall_micros  BIGINT NOT NULL,
    outcome           TEXT NOT NULL,
    estimated         INTEGER NOT NULL,
    reserved_at       BIGINT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_usage_account ON billing_usage (account_id, created_at);
CREATE INDEX IF NOT EXISTS billing_usage_created ON billing_usage (created_at);

CREATE TABLE IF NOT EXISTS billing_usage_parts (
    request_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    source     TEXT NOT NULL,
    lease_id   TEXT NOT NULL,
    tokens     BIGINT NOT NULL,
    micros     BIGINT NOT NULL,
    PRIMARY KEY (request_id, seq)
);

-- The shipped price table (billing.DefaultPrices; a test holds the two
-- equal). Micros per 1,000 tokens for input and output, per image for
-- images. updated_at 0 marks a shipped row.
INSERT INTO billing_prices (model, input_micros, output_micros, image_micros, updated_at) VALUES
    ('charglm-3', 15000, 15000, 0, 0),
    ('cogview-3', 0, 0, 250000, 0),
    ('cogview-3-flash', 0, 0, 0, 0),
    ('embedding-2', 500, 0, 0, 0),
    ('embedding-3', 500, 0, 0, 0),
    ('glm-3-turbo', 5000, 5000, 0, 0),
    ('glm-4', 100000, 100000, 0, 0),
    ('glm-4-0520', 100000, 100000, 0, 0),
    ('glm-4-air', 1000, 1000, 0, 0),
    ('glm-4-airx', 10000, 10000, 0, 0),
    ('glm-4-flash', 0, 0, 0, 0),
    ('glm-4-plus', 5000, 5000, 0, 0),
    ('glm-4v', 100000, 100000, 0, 0),
    ('glm-4v-flash', 0, 0, 0, 0),
    ('glmkit-embed-ngram', 0, 0, 0, 0)
ON CONFLICT (model) DO NOTHING;
