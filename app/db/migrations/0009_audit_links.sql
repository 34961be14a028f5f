-- 0009: every audit record carries an id the gateway gives it when it makes the record.
--
-- Unique with `at` (a unique index on a partitioned table must hold the partition key, and a
-- record keeps its time wherever it goes): a spooled record replayed twice is refused by the
-- database rather than doubled, and the writer skips those the chain already holds. Records
-- from before this migration keep NULL.
-- (On a large live table: build the index per partition CONCURRENTLY and attach it instead.)

ALTER TABLE audit_log ADD COLUMN record_id uuid;
CREATE UNIQUE INDEX audit_log_record_id ON audit_log (at, record_id);
