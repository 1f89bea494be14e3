-- Operator-set limits per account or key, read by every glm serve into its
-- in-memory limiter. IF NOT EXISTS: databases made before this table moved
-- here already have it (see 0002).

CREATE TABLE IF NOT EXISTS billing_limit_rules (
    subject        TEXT NOT NULL,
    id             TEXT NOT NULL,
    max_concurrent BIGINT NOT NULL CHECK (max_concurrent >= 0),
    rpm            BIGINT NOT NULL CHECK (rpm >= 0),
    daily_tokens   BIGINT NOT NULL CHECK (daily_tokens >= 0),
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (subject, id)
);
