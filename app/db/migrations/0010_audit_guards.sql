-- 0010: the audit trail's guards, hardened after an attack on 0009 with the service role's rights.
--
-- 1. The guard of audit_unlinked resolved audit_log through the caller's search_path, where a
--    temporary table comes first: the service role (it may create temporary tables, for
--    imports) could shadow audit_log and delete a waiting record. It now runs with this schema
--    and pg_temp last.
-- 2. It only asked for some audit_log row with the same (at, record_id): a decoy off the chain,
--    or a copy with other content, let the original go. A record now leaves the queue only for
--    its exact copy ON the chain (1 <= seq <= the head's last_seq), every field the same.
-- 3. A record the gateway cannot read back (a time outside 0001..9999, a seq below 1) stopped
--    linking and verify for good: such rows are refused by the database.

CREATE OR REPLACE FUNCTION ssogw_audit_unlinked_leave_only_linked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM gone g
         WHERE NOT EXISTS (
             SELECT 1 FROM audit_log l, audit_chain c
              WHERE l.at = g.at AND l.record_id = g.record_id
                AND l.seq BETWEEN 1 AND c.last_seq
                AND l.principal_kind = g.principal_kind
                AND l.principal_id IS NOT DISTINCT FROM g.principal_id
                AND l.principal_name IS NOT DISTINCT FROM g.principal_name
                AND l.operator IS NOT DISTINCT FROM g.operator
                AND l.terminal IS NOT DISTINCT FROM g.terminal
                AND l.source_ip IS NOT DISTINCT FROM g.source_ip
                AND l.protocol = g.protocol
                AND l.operation = g.operation
                AND l.national_id IS NOT DISTINCT FROM g.national_id
                AND l.name_returned IS NOT DISTINCT FROM g.name_returned
                AND l.outcome = g.outcome
                AND l.request_id = g.request_id
                AND l.detail IS NOT DISTINCT FROM g.detail)) THEN
        RAISE EXCEPTION 'an audit record leaves audit_unlinked only once it is on the chain'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;

DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION ssogw_audit_unlinked_leave_only_linked() SET search_path = %I, pg_temp',
        current_schema());
END $$;

-- Readable by the gateway (Python's datetime: years 1 to 9999), on the chain from seq 1.
ALTER TABLE audit_unlinked ADD CONSTRAINT audit_unlinked_at_readable
    CHECK (at > '0001-01-02 00:00:00+00' AND at < '9999-12-01 00:00:00+00');
ALTER TABLE audit_log ADD CONSTRAINT audit_log_at_readable
    CHECK (at > '0001-01-02 00:00:00+00' AND at < '9999-12-01 00:00:00+00');
ALTER TABLE audit_log ADD CONSTRAINT audit_log_seq_on_the_chain CHECK (seq >= 1);
