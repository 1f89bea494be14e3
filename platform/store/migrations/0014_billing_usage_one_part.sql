-- A usage row paid from one lease carries that part in its own columns
-- (docs/design.md §6): most requests are paid by cash alone or by one
-- package, and a billing_usage_parts row for them was two more B-tree
-- inserts per request in the billing flush. part_source is '' when the
-- row's parts (none, or more than one) are in billing_usage_parts; a row
-- never has both. Rows stored before this migration keep their parts in
-- billing_usage_parts, so nothing is moved. Every reader of parts (usage
-- listings, the audit, retention's roll-up) reads both places. The
-- previous release reads only parts rows, so it would see rows written
-- after this migration as paid by nothing: replicas are stopped before the
-- upgrade, as for every migration that changes a write path.

ALTER TABLE billing_usage ADD COLUMN part_source TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_usage ADD COLUMN part_lease_id TEXT NOT NULL DEFAULT '';
ALTER TABLE billing_usage ADD COLUMN part_tokens BIGINT NOT NULL DEFAULT 0;
ALTER TABLE billing_usage ADD COLUMN part_micros BIGINT NOT NULL DEFAULT 0;
