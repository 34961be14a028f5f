-- 0009: a record committed with the call it describes, linked onto the chain just after.
--
-- A confirm's, a cancel's or an option change's record is written in the call's own
-- transaction, into audit_unlinked: it commits with the payment, or neither does. The audit
-- writer then moves such rows onto the hash chain (audit_log) under the chain-head lock, in the
-- order they became visible: the record stays where it is in time (`at`) and gains its place
-- on the chain (seq, prev_hash, hash). Any instance links any instance's rows, so rows left
-- by an instance that crashed are linked by the next writer that looks; the head lock keeps the
-- chain one line. A row is moved (inserted into audit_log and deleted here) in one transaction.
--
-- Every record now carries an id the gateway gives it when it makes the record. Unique with
-- `at` (a unique index on a partitioned table must hold the partition key, and a record keeps
-- its time wherever it goes): a spooled record replayed twice, or a row linked twice, is
-- refused by the database rather than doubled. Records from before this migration keep NULL.
-- (On a large live table: build the index per partition CONCURRENTLY and attach it instead.)

ALTER TABLE audit_log ADD COLUMN record_id uuid;
CREATE UNIQUE INDEX audit_log_record_id ON audit_log (at, record_id);

-- Records committed by a business transaction, waiting for their chain link: the columns of
-- audit_log without seq, prev_hash and hash. Rows stay here for the writer's cadence (a few
-- milliseconds; longer only while linking fails, which `ssogw audit verify` reports).
CREATE TABLE audit_unlinked (
    record_id          uuid        PRIMARY KEY,
    at                 timestamptz NOT NULL,
    principal_kind     text        NOT NULL,
    principal_id       integer,
    principal_name     text,
    operator           text,
    terminal           text,
    source_ip          inet,
    protocol           text        NOT NULL,
    operation          text        NOT NULL,
    national_id        text,
    name_returned      text,
    outcome            text        NOT NULL,
    request_id         text        NOT NULL,
    detail             jsonb
);
-- Lookups by ID see a record as soon as it is committed, linked or not.
CREATE INDEX audit_unlinked_national_id_at ON audit_unlinked (national_id, at)
    WHERE national_id IS NOT NULL;

-- Every committed record, linked (seq not NULL) or waiting for its link (seq NULL): what a
-- person reading the audit trail by hand should query.
CREATE VIEW audit_records AS
SELECT record_id, seq, at, principal_kind, principal_id, principal_name, operator, terminal,
       source_ip, protocol, operation, national_id, name_returned, outcome, request_id, detail,
       prev_hash, hash
  FROM audit_log
UNION ALL
SELECT record_id, NULL::bigint, at, principal_kind, principal_id, principal_name, operator,
       terminal, source_ip, protocol, operation, national_id, name_returned, outcome,
       request_id, detail, NULL::bytea, NULL::bytea
  FROM audit_unlinked;

-- The service role may DELETE from this queue (that is how a record moves onto the chain), but a
-- record may leave it only once it is on the chain: a row deleted without its copy in audit_log
-- (same at and record_id) fails the whole statement. The trigger is the owner's; the service
-- role can neither drop nor disable it, so no committed record can be removed by it.
CREATE FUNCTION ssogw_audit_unlinked_leave_only_linked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone g
                WHERE NOT EXISTS (SELECT 1 FROM audit_log l
                                   WHERE l.at = g.at AND l.record_id = g.record_id)) THEN
        RAISE EXCEPTION 'an audit record leaves audit_unlinked only once it is on the chain'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER audit_unlinked_leave_only_linked AFTER DELETE ON audit_unlinked
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION ssogw_audit_unlinked_leave_only_linked();
