-- The release before billing's tables moved into these migrations kept its
-- own schema version in billing_migrations (1 = the money tables, 2 = the
-- limit rules) and creates the tables again when it finds no row there. So
-- that a database made by this release can still be opened by that one
-- (an operator rolling back), the table is kept and both versions are
-- recorded, which 0002 and 0003 have applied by now. Databases made by
-- that release already have the rows: the inserts leave them as they are.

CREATE TABLE IF NOT EXISTS billing_migrations (
    version    BIGINT PRIMARY KEY,
    applied_at BIGINT NOT NULL
);

INSERT INTO billing_migrations (version, applied_at) VALUES (1, 0), (2, 0) ON CONFLICT (version) DO NOTHING;
