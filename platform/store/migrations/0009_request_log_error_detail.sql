-- The cause of a failed request, for the operator (glm logs): the wrapped
-- error chain the server logged, bounded. Clients only ever see the V4
-- code and message; this column never leaves the operator's side.
ALTER TABLE request_log ADD COLUMN error_detail TEXT NOT NULL DEFAULT '';
