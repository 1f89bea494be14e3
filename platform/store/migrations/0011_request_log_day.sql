-- request_log_daily becomes the per-day roll-up of the WHOLE request log,
-- not only of the days retention removed: every insert adds its rows to
-- their days in the same transaction (store.InsertRequestLogsTx), and
-- retention only deletes raw rows (their days already hold them). The
-- usage page and charts read days, not rows (docs/design.md §3
-- "Request-log days"). A day is YYYY-MM-DD in the billing zone (UTC+8, no
-- daylight saving), as before.
--
-- Backfill: the rows still in request_log are added to their days. The
-- day is worked out with integer arithmetic only (days since the epoch to
-- a civil date), the one form both SQLite and PostgreSQL run alike; the
-- upgrade test checks it against Go's calendar. Rows are grouped first, so
-- the conversion runs once per day and group, not once per row.
INSERT INTO request_log_daily (day, account_id, key_id, model, endpoint, http_status, error_code, requests, streams,
    estimated, prompt_tokens, completion_tokens, total_tokens, images, latency_ms, charge_amount)
SELECT CAST(c.y + CASE WHEN c.m <= 2 THEN 1 ELSE 0 END AS TEXT) || '-' ||
        CASE WHEN c.m < 10 THEN '0' ELSE '' END || CAST(c.m AS TEXT) || '-' ||
        CASE WHEN c.d < 10 THEN '0' ELSE '' END || CAST(c.d AS TEXT),
    c.account_id, c.key_id, c.model, c.endpoint, c.http_status, c.error_code, c.requests, c.streams, c.estimated,
    c.prompt_tokens, c.completion_tokens, c.total_tokens, c.images, c.latency_ms, c.charge_amount
FROM (
    SELECT b.*, b.yoe + b.era * 400 AS y, CASE WHEN b.mp < 10 THEN b.mp + 3 ELSE b.mp - 9 END AS m,
        b.doy - (153 * b.mp + 2) / 5 + 1 AS d
    FROM (
        SELECT a.*, (5 * a.doy + 2) / 153 AS mp
        FROM (
            SELECT f.*, f.doe - (365 * f.yoe + f.yoe / 4 - f.yoe / 100) AS doy
            FROM (
                SELECT e.*, (e.doe - e.doe / 1460 + e.doe / 36524 - e.doe / 146096) / 365 AS yoe
                FROM (
                    SELECT g.*, g.z / 146097 AS era, g.z - (g.z / 146097) * 146097 AS doe
                    FROM (
                        SELECT (created_at + 28800000) / 86400000 + 719468 AS z, account_id, key_id, model, endpoint,
                            http_status, error_code, COUNT(*) AS requests, SUM(stream) AS streams,
                            SUM(estimated) AS estimated, SUM(prompt_tokens) AS prompt_tokens,
                            SUM(completion_tokens) AS completion_tokens, SUM(total_tokens) AS total_tokens,
                            SUM(images) AS images, SUM(latency_ms) AS latency_ms, SUM(charge_amount) AS charge_amount
                        FROM request_log
                        GROUP BY (created_at + 28800000) / 86400000 + 719468, account_id, key_id, model, endpoint,
                            http_status, error_code
                    ) g
                ) e
            ) f
        ) a
    ) b
) c
WHERE 1 = 1
ON CONFLICT (day, account_id, key_id, model, endpoint, http_status, error_code) DO UPDATE SET
    requests = request_log_daily.requests + excluded.requests,
    streams = request_log_daily.streams + excluded.streams,
    estimated = request_log_daily.estimated + excluded.estimated,
    prompt_tokens = request_log_daily.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = request_log_daily.completion_tokens + excluded.completion_tokens,
    total_tokens = request_log_daily.total_tokens + excluded.total_tokens,
    images = request_log_daily.images + excluded.images,
    latency_ms = request_log_daily.latency_ms + excluded.latency_ms,
    charge_amount = request_log_daily.charge_amount + excluded.charge_amount;

-- The usage page no longer adds rows up, so the wide covering index of
-- migration 0008 goes. The recent-requests table pages newest first on a
-- (created_at, id) cursor, unfiltered, by model or by key: one index for
-- each, so every page reads only its rows (store.RecentRequestLogs).
DROP INDEX request_log_account_usage;
CREATE INDEX request_log_account_recent ON request_log (account_id, created_at, id);
CREATE INDEX request_log_account_model ON request_log (account_id, model, created_at, id);
CREATE INDEX request_log_account_key ON request_log (account_id, key_id, created_at, id);
