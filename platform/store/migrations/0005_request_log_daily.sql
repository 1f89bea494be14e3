-- Retention: request-log rows older than the operator's retention age are
-- folded into one row per day, account, key, model, endpoint and outcome
-- (HTTP status and V4 code, '' = success) and then deleted, in the same
-- transaction, so a request is counted once whether it is still a row or
-- already part of a day. day is YYYY-MM-DD in the billing zone (UTC+8), the
-- day bills are cut in, so a rolled-up day sits inside one bill month.
-- latency_ms is a sum: the mean is latency_ms / requests.

CREATE TABLE request_log_daily (
    day               TEXT NOT NULL,
    account_id        TEXT NOT NULL,
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    http_status       INTEGER NOT NULL,
    error_code        TEXT NOT NULL,
    requests          BIGINT NOT NULL,
    streams           BIGINT NOT NULL,
    estimated         BIGINT NOT NULL,
    prompt_tokens     BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    total_tokens      BIGINT NOT NULL,
    images            BIGINT NOT NULL,
    latency_ms        BIGINT NOT NULL,
    charge_amount     BIGINT NOT NULL,
    PRIMARY KEY (day, account_id, key_id, model, endpoint, http_status, error_code)
);
CREATE INDEX request_log_daily_account ON request_log_daily (account_id, day);
