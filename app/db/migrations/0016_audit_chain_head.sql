-- 0016: the chain head moves only inside the owner's functions; the service role can no longer
-- hold it.
--
-- Until now the service role held UPDATE on audit_chain (and INSERT on audit_log, DELETE on
-- audit_unlinked), so any session with its credentials could `SELECT ... FROM audit_chain FOR
-- UPDATE` in an open transaction and stall every audited call of the fleet for as long as it
-- liked, or hold an uncommitted audit_log row on a key the linker was about to use. Now:
--
-- * The service role keeps SELECT on audit_chain and audit_log and INSERT on audit_unlinked
--   (a business transaction's own record) only: it can take no row lock on the head (row locks
--   need UPDATE), insert nothing into audit_log and delete nothing from audit_unlinked
--   (app/db/grants.py).
-- * A batch goes onto the chain through ssogw_audit_append, and waiting records are linked
--   through ssogw_audit_link: SECURITY DEFINER functions of the owner. Each takes the head's
--   lock for one statement, waiting at most `lock_wait_ms` (then SQLSTATE 55P03, and the call
--   fails with server.audit_unavailable instead of hanging), and moves the head only forward,
--   from exactly where the caller saw it, with a batch that continues the chain (consecutive
--   seqs, each prev_hash the hash before it). A caller that saw an older head is told where the
--   head is now (advanced = false) and hashes its batch again.
-- * A session of the service role can still call one of them inside an open transaction and
--   keep the lock until that transaction ends. The gateway ends such a session: a writer that
--   waited in vain terminates the service role's sessions whose transaction has held a lock on
--   audit_chain longer than SSOGW_AUDIT_HEAD_HOLD_S (app/audit/chain_head.py). The gateway's own
--   transactions on the head are one statement each.

CREATE FUNCTION ssogw_audit_append(
    expected_seq bigint, expected_hash bytea,
    seqs bigint[], ats timestamptz[], principal_kinds text[], principal_ids integer[],
    principal_names text[], operators text[], terminals text[], source_ips text[],
    protocols text[], operations text[], national_ids text[], names_returned text[],
    outcomes text[], request_ids text[], details text[], prev_hashes bytea[], hashes bytea[],
    record_ids uuid[], lock_wait_ms integer)
RETURNS TABLE (advanced boolean, last_seq bigint, last_hash bytea)
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '1s' AS $$
DECLARE
    head audit_chain%ROWTYPE;
    n integer := cardinality(seqs);
BEGIN
    PERFORM set_config('lock_timeout', greatest(lock_wait_ms, 1) || 'ms', true);
    SELECT * INTO head FROM audit_chain c WHERE c.id FOR UPDATE;
    IF head.last_seq <> expected_seq OR head.last_hash <> expected_hash THEN
        RETURN QUERY SELECT false, head.last_seq, head.last_hash;
        RETURN;
    END IF;
    IF n IS NULL OR n < 1
       OR EXISTS (SELECT 1 FROM unnest(seqs, prev_hashes, hashes) WITH ORDINALITY
                                AS b(seq, prev, hash, i)
                   WHERE b.seq IS DISTINCT FROM expected_seq + b.i
                      OR octet_length(b.hash) IS DISTINCT FROM 32
                      OR b.prev IS DISTINCT FROM
                         CASE WHEN b.i = 1 THEN expected_hash ELSE hashes[b.i - 1] END) THEN
        RAISE EXCEPTION 'an audit batch must continue the chain from seq %', expected_seq
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO audit_log (seq, at, principal_kind, principal_id, principal_name, operator,
                           terminal, source_ip, protocol, operation, national_id, name_returned,
                           outcome, request_id, detail, prev_hash, hash, record_id)
    SELECT b.seq, b.at, b.principal_kind, b.principal_id, b.principal_name, b.operator,
           b.terminal, b.source_ip::inet, b.protocol, b.operation, b.national_id,
           b.name_returned, b.outcome, b.request_id, b.detail::jsonb, b.prev_hash, b.hash,
           b.record_id
    FROM unnest(seqs, ats, principal_kinds, principal_ids, principal_names, operators,
                terminals, source_ips, protocols, operations, national_ids, names_returned,
                outcomes, request_ids, details, prev_hashes, hashes, record_ids)
         AS b(seq, at, principal_kind, principal_id, principal_name, operator, terminal,
              source_ip, protocol, operation, national_id, name_returned, outcome,
              request_id, detail, prev_hash, hash, record_id);
    UPDATE audit_chain c SET last_seq = seqs[n], last_hash = hashes[n] WHERE c.id;
    RETURN QUERY SELECT true, seqs[n], hashes[n];
END $$;

-- Records a business transaction committed (audit_unlinked) moved onto the chain by id: their
-- values never leave the database; the caller gives each its place and hashes.
CREATE FUNCTION ssogw_audit_link(
    expected_seq bigint, expected_hash bytea,
    record_ids uuid[], seqs bigint[], prev_hashes bytea[], hashes bytea[], lock_wait_ms integer)
RETURNS TABLE (advanced boolean, last_seq bigint, last_hash bytea)
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '1s' AS $$
DECLARE
    head audit_chain%ROWTYPE;
    n integer := cardinality(seqs);
    linked integer;
BEGIN
    PERFORM set_config('lock_timeout', greatest(lock_wait_ms, 1) || 'ms', true);
    SELECT * INTO head FROM audit_chain c WHERE c.id FOR UPDATE;
    IF head.last_seq <> expected_seq OR head.last_hash <> expected_hash THEN
        RETURN QUERY SELECT false, head.last_seq, head.last_hash;
        RETURN;
    END IF;
    IF n IS NULL OR n < 1 OR cardinality(record_ids) IS DISTINCT FROM n
       OR EXISTS (SELECT 1 FROM unnest(seqs, prev_hashes, hashes) WITH ORDINALITY
                                AS b(seq, prev, hash, i)
                   WHERE b.seq IS DISTINCT FROM expected_seq + b.i
                      OR octet_length(b.hash) IS DISTINCT FROM 32
                      OR b.prev IS DISTINCT FROM
                         CASE WHEN b.i = 1 THEN expected_hash ELSE hashes[b.i - 1] END) THEN
        RAISE EXCEPTION 'an audit link must continue the chain from seq %', expected_seq
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The head first: the queue's guard (0010) lets a record go only for its copy on the chain
    -- at or below the head.
    UPDATE audit_chain c SET last_seq = seqs[n], last_hash = hashes[n] WHERE c.id;
    WITH moved AS (
        DELETE FROM audit_unlinked u
         USING unnest(record_ids, seqs, prev_hashes, hashes) AS l(record_id, seq, prev_hash, hash)
         WHERE u.record_id = l.record_id
        RETURNING u.*, l.seq, l.prev_hash, l.hash
    ), copied AS (
        INSERT INTO audit_log (seq, at, principal_kind, principal_id, principal_name, operator,
                               terminal, source_ip, protocol, operation, national_id,
                               name_returned, outcome, request_id, detail, prev_hash, hash,
                               record_id)
        SELECT m.seq, m.at, m.principal_kind, m.principal_id, m.principal_name, m.operator,
               m.terminal, m.source_ip, m.protocol, m.operation, m.national_id,
               m.name_returned, m.outcome, m.request_id, m.detail, m.prev_hash, m.hash,
               m.record_id
          FROM moved m
        RETURNING 1
    )
    SELECT count(*) INTO linked FROM copied;
    IF linked <> n THEN  -- rolled back: the chain never has a gap
        RAISE EXCEPTION 'linked % of % audit records', linked, n
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN QUERY SELECT true, seqs[n], hashes[n];
END $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION ssogw_audit_append SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION ssogw_audit_link SET search_path = %I, pg_temp',
                   current_schema());
END $$;
-- Only the service role may call them (app/db/grants.py grants EXECUTE after every run).
REVOKE ALL ON FUNCTION ssogw_audit_append FROM PUBLIC;
REVOKE ALL ON FUNCTION ssogw_audit_link FROM PUBLIC;
