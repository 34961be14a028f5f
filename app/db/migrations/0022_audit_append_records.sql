-- 0022: a batch of audit records goes onto the chain as one array of records, not 16 arrays.
--
-- 0017's `ssogw_audit_append_tails` takes a batch column by column: 16 arrays with one element
-- per record. The driver (asyncpg) checks every element of every array parameter for being a
-- nested array before it encodes it, and each check runs Python-level ABC instance checks:
-- about 26 checks a record, 61 k of the 965 k CPU instructions of a REST inquiry and 72 k of
-- the 1,791 k of a SOAP inquiry (callgrind, bench/RESULTS.md, session 22). One array of a
-- composite type, one element per record, takes about 3.
--
-- `ssogw_audit_append_records` does what `ssogw_audit_append_tails` does (0017): under the
-- head's lock it numbers the records after the head, hashes each from the canonical tail the
-- caller sends, inserts them and moves the head, in one statement. A record's fields are the
-- stored columns in the order of 0017's arrays, then its record id and canonical tail.
--
-- 0017's and 0016's functions stay, so that instances of the previous releases keep working
-- during a rolling upgrade; a later migration may drop them once no instance calls them.

CREATE TYPE ssogw_audit_record AS (
    at             timestamptz,
    principal_kind text,
    principal_id   integer,
    principal_name text,
    operator       text,
    terminal       text,
    source_ip      text,
    protocol       text,
    operation      text,
    national_id    text,
    name_returned  text,
    outcome        text,
    request_id     text,
    detail         text,
    record_id      uuid,
    tail           bytea
);

CREATE FUNCTION ssogw_audit_append_records(records ssogw_audit_record[], lock_wait_ms integer)
RETURNS TABLE (last_seq bigint, last_hash bytea)
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '1s' AS $$
DECLARE
    head audit_chain%ROWTYPE;
    n integer := coalesce(cardinality(records), 0);
    tails bytea[] := '{}';
    placed record;
BEGIN
    IF n < 1 OR array_ndims(records) <> 1 OR array_lower(records, 1) <> 1 THEN
        RAISE EXCEPTION 'an audit batch needs at least one record, in a one-dimensional array '
                        'that starts at index 1'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 1 .. n LOOP
        -- A NULL element reads as a record of NULLs.
        IF (records[i]).tail IS NULL OR (records[i]).record_id IS NULL
           OR (records[i]).at IS NULL THEN
            RAISE EXCEPTION 'audit record % of the batch has no record id, time or canonical tail', i
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        tails[i] := (records[i]).tail;
    END LOOP;
    PERFORM set_config('lock_timeout', greatest(lock_wait_ms, 1) || 'ms', true);
    SELECT * INTO head FROM audit_chain c WHERE c.id FOR UPDATE;
    placed := ssogw_audit_hashes(head.last_seq, head.last_hash, tails);
    INSERT INTO audit_log (seq, at, principal_kind, principal_id, principal_name, operator,
                           terminal, source_ip, protocol, operation, national_id, name_returned,
                           outcome, request_id, detail, prev_hash, hash, record_id)
    SELECT b.seq, b.at, b.principal_kind, b.principal_id, b.principal_name, b.operator,
           b.terminal, b.source_ip::inet, b.protocol, b.operation, b.national_id,
           b.name_returned, b.outcome, b.request_id, b.detail::jsonb, b.prev_hash, b.hash,
           b.record_id
    -- The aliases name the type's attributes by position, then the three arrays' elements: an
    -- attribute added to the type would shift them, so the type is never altered; a later
    -- change makes a new type and function (asyncpg also caches the type's OID per connection).
    FROM ROWS FROM (unnest(records), unnest(placed.seqs), unnest(placed.prev_hashes),
                    unnest(placed.hashes))
         AS b(at, principal_kind, principal_id, principal_name, operator, terminal, source_ip,
              protocol, operation, national_id, name_returned, outcome, request_id, detail,
              record_id, tail, seq, prev_hash, hash);
    UPDATE audit_chain c SET last_seq = placed.seqs[n], last_hash = placed.hashes[n] WHERE c.id;
    RETURN QUERY SELECT placed.seqs[n], placed.hashes[n];
END $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION ssogw_audit_append_records SET search_path = %I, pg_temp',
                   current_schema());
END $$;
-- Only the service role may call it (app/db/grants.py revokes every routine from PUBLIC and
-- grants EXECUTE on SERVICE_ROUTINES after every run).
REVOKE ALL ON FUNCTION ssogw_audit_append_records FROM PUBLIC;
