-- Files and batches (docs/design.md §10). A file's content lives in a
-- directory beside the database file on SQLite, and in file_chunks when serving
-- from PostgreSQL, so replicas share it without a shared filesystem;
-- chunks are base64 text, one portable type on both engines.

CREATE TABLE files (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    filename    TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    bytes       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX files_account ON files (account_id, id);

CREATE TABLE file_chunks (
    file_id  TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    data     TEXT NOT NULL,
    PRIMARY KEY (file_id, seq)
);

-- A batch job. Its lines are copied into batch_lines when it is created,
-- so deleting the input file does not touch a running batch. final is the
-- status a finalizing batch ends in; worker and lease_until hold the
-- finalization's claim.
CREATE TABLE batches (
    id                 TEXT PRIMARY KEY,
    account_id         TEXT NOT NULL,
    key_id             TEXT NOT NULL,
    endpoint           TEXT NOT NULL,
    input_file_id      TEXT NOT NULL,
    completion_window  TEXT NOT NULL,
    metadata           TEXT NOT NULL DEFAULT '',
    auto_delete_input  INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL,
    final              TEXT NOT NULL DEFAULT '',
    total              INTEGER NOT NULL DEFAULT 0,
    completed          INTEGER NOT NULL DEFAULT 0,
    failed             INTEGER NOT NULL DEFAULT 0,
    output_file_id     TEXT NOT NULL DEFAULT '',
    error_file_id      TEXT NOT NULL DEFAULT '',
    errors             TEXT NOT NULL DEFAULT '',
    worker             TEXT NOT NULL DEFAULT '',
    lease_until        BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL,
    in_progress_at     BIGINT NOT NULL DEFAULT 0,
    expires_at         BIGINT NOT NULL DEFAULT 0,
    finalizing_at      BIGINT NOT NULL DEFAULT 0,
    completed_at       BIGINT NOT NULL DEFAULT 0,
    failed_at          BIGINT NOT NULL DEFAULT 0,
    expired_at         BIGINT NOT NULL DEFAULT 0,
    cancelling_at      BIGINT NOT NULL DEFAULT 0,
    cancelled_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX batches_account ON batches (account_id, id);
CREATE INDEX batches_status ON batches (status);

-- One request of a batch. A queued line's lease_until is the time before
-- which it is not claimed (a limit sent it back); a running line's is its
-- worker's lease.
CREATE TABLE batch_lines (
    batch_id     TEXT NOT NULL,
    line         INTEGER NOT NULL,
    custom_id    TEXT NOT NULL,
    model        TEXT NOT NULL,
    prompt       INTEGER NOT NULL DEFAULT 0,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL,
    result       TEXT NOT NULL DEFAULT '',
    worker       TEXT NOT NULL DEFAULT '',
    lease_until  BIGINT NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (batch_id, line)
);
-- Claims take a batch's first queued lines and count its running ones
-- by this index.
CREATE INDEX batch_lines_state ON batch_lines (state, batch_id, line);
