-- 0003: "who looked up ID X" pages newest first by (at, seq). With seq in the ID index each
-- monthly partition hands rows over already in that order and the page cursor
-- (at, seq) < (x, y) is an index condition, so the planner never prefers walking the primary
-- key (at, seq) backwards with a filter on the ID, whatever the statistics say. The new index
-- does all the old one did; the old one goes so every insert maintains one ID index, not two.
-- (On a large live table: build the index per partition CONCURRENTLY and attach it instead.)

CREATE INDEX audit_log_national_id_at_seq ON audit_log (national_id, at, seq)
    WHERE national_id IS NOT NULL;
DROP INDEX audit_log_national_id_at;
