-- The operator's audit log: every change an operator makes to money (a
-- package revoked or shrunk, cash adjusted up or down), one row each, in
-- the same transaction as the change and its ledger entry (a credit row of
-- kind 'adjust' or 'package_adjust'), so the money audit and this log
-- never disagree. before_state and after_state are short human-readable
-- summaries; reason is the operator's, required.

CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    created_at   BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    before_state TEXT NOT NULL,
    after_state  TEXT NOT NULL,
    reason       TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (created_at);

-- An account an operator disabled: its keys are refused until it is
-- enabled again (0 = enabled).
ALTER TABLE accounts ADD COLUMN disabled_at BIGINT NOT NULL DEFAULT 0;
