-- Retention of billing's usage rows (see 0005 for the request log). Old
-- usage rows and their parts are deleted in the same transaction that adds
-- them here, so money is counted once whichever table holds it:
--
-- billing_usage_daily: the rows of one account's key on one model and day,
-- with one outcome, summed. day is YYYY-MM-DD in the billing zone, so a day
-- sits inside one bill month and a bill reads days + rows to the micro.
--
-- billing_usage_parts_rollup: the parts of those rows summed per lease,
-- account and source, so the money audit still finds what each lease spent
-- and what each package and wallet paid (tokens for a package, micros for
-- cash and for the discount a package gave).

CREATE TABLE billing_usage_daily (
    day               TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    estimated         BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    images            BIGINT NOT NULL,
    package_tokens    BIGINT NOT NULL,
    amount_micros     BIGINT NOT NULL,
    discount_micros   BIGINT NOT NULL,
    cash_micros       BIGINT NOT NULL,
    shortfall_micros  BIGINT NOT NULL,
    PRIMARY KEY (day, account_id, key_id, model, outcome)
);
CREATE INDEX billing_usage_daily_account ON billing_usage_daily (account_id, day);

CREATE TABLE billing_usage_parts_rollup (
    lease_id   TEXT NOT NULL,
    account_id TEXT NOT NULL,
    source     TEXT NOT NULL,
    parts      BIGINT NOT NULL,
    tokens     BIGINT NOT NULL,
    micros     BIGINT NOT NULL,
    PRIMARY KEY (lease_id, account_id, source)
);
