-- 0017: the chain is numbered and hashed under the head's lock, in the database.
--
-- Until now a writer numbered and hashed its batch after the head as it last saw it, and the
-- append function (0016) took the batch only if the head had not moved; otherwise the writer
-- read where the head was, hashed its batch again and sent it again. With two instances on one
-- database most appends were sent twice (measured: 395-427 of every 500, bench.probe
-- --workers 2); with a fleet of many instances a writer could go round that loop again and
-- again.
--
-- Now the caller sends each record's canonical form without its place: the bytes that follow
-- `["ssogw-audit/1",<seq>,` (app/audit/chain.py, canonical_tail). Under the head's lock the
-- function gives the records the seqs after the head, hashes each as
--     sha256(prev_hash || '["ssogw-audit/1",' || seq || ',' || tail)
-- (the same bytes as canonical_bytes(seq, row)), inserts them and moves the head: one statement,
-- never refused because another instance appended first. The caller never needs to know the
-- head. What the database cannot check is that a tail is the canonical form of its row's
-- columns: a service-role session could send a tail that is not (as it could send a wrong hash
-- before); `ssogw audit verify` recomputes every hash from the columns and names such a record.
--
-- The functions of 0016 stay, so that instances of the previous release keep working during a
-- rolling upgrade; a later migration may drop them once no instance calls them.

-- The chain's hashes for `tails` after (`after_seq`, `after_hash`): seqs, prev_hashes, hashes.
CREATE FUNCTION ssogw_audit_hashes(after_seq bigint, after_hash bytea, tails bytea[],
                                   OUT seqs bigint[], OUT prev_hashes bytea[],
                                   OUT hashes bytea[])
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    prev bytea := after_hash;
    h bytea;
BEGIN
    seqs := '{}'; prev_hashes := '{}'; hashes := '{}';
    FOR i IN 1 .. coalesce(cardinality(tails), 0) LOOP
        h := sha256(prev || convert_to('["ssogw-audit/1",' || (after_seq + i) || ',', 'UTF8')
                    || tails[i]);
        seqs[i] := after_seq + i;
        prev_hashes[i] := prev;
        hashes[i] := h;
        prev := h;
    END LOOP;
END $$;

CREATE FUNCTION ssogw_audit_append_tails(
    ats timestamptz[], principal_kinds text[], principal_ids integer[],
    principal_names text[], operators text[], terminals text[], source_ips text[],
    protocols text[], operations text[], national_ids text[], names_returned text[],
    outcomes text[], request_ids text[], details text[], record_ids uuid[], tails bytea[],
    lock_wait_ms integer)
RETURNS TABLE (last_seq bigint, last_hash bytea)
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '1s' AS $$
DECLARE
    head audit_chain%ROWTYPE;
    n integer := cardinality(tails);
    placed record;
BEGIN
    IF n IS NULL OR n < 1 OR cardinality(record_ids) IS DISTINCT FROM n
       OR cardinality(ats) IS DISTINCT FROM n OR array_position(tails, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'an audit batch needs one record id, time and canonical tail per record'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
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
    FROM unnest(placed.seqs, ats, principal_kinds, principal_ids, principal_names, operators,
                terminals, source_ips, protocols, operations, national_ids, names_returned,
                outcomes, request_ids, details, placed.prev_hashes, placed.hashes, record_ids)
         AS b(seq, at, principal_kind, principal_id, principal_name, operator, terminal,
              source_ip, protocol, operation, national_id, name_returned, outcome,
              request_id, detail, prev_hash, hash, record_id);
    UPDATE audit_chain c SET last_seq = placed.seqs[n], last_hash = placed.hashes[n] WHERE c.id;
    RETURN QUERY SELECT placed.seqs[n], placed.hashes[n];
END $$;

-- Records a business transaction committed (audit_unlinked), moved onto the chain by id in the
-- caller's order, each with the canonical tail the caller read it as. Those another linker
-- moved meanwhile are skipped; `linked` says how many this call moved (0: none was waiting).
CREATE FUNCTION ssogw_audit_link_tails(record_ids uuid[], tails bytea[], lock_wait_ms integer)
RETURNS TABLE (linked integer, last_seq bigint, last_hash bytea)
LANGUAGE plpgsql SECURITY DEFINER SET lock_timeout = '1s' AS $$
DECLARE
    head audit_chain%ROWTYPE;
    ids uuid[];
    waiting_tails bytea[];
    placed record;
    n integer;
    moved integer;
BEGIN
    IF cardinality(record_ids) IS NULL OR cardinality(record_ids) < 1
       OR cardinality(tails) IS DISTINCT FROM cardinality(record_ids)
       OR array_position(tails, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'an audit link needs one canonical tail per record id'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('lock_timeout', greatest(lock_wait_ms, 1) || 'ms', true);
    SELECT * INTO head FROM audit_chain c WHERE c.id FOR UPDATE;
    -- Under the head's lock no other linker can move a waiting record: what waits now is
    -- what this call links (each id once, in the caller's order). Not one whose key (at,
    -- record_id) the chain already holds: only a decoy appended under a waiting record's id
    -- can do that, and linking it would fail the whole batch on audit_log's unique key, and
    -- every batch after it (it is the oldest waiting). It stays waiting, for an operator.
    SELECT array_agg(l.record_id ORDER BY l.i), array_agg(l.tail ORDER BY l.i)
      INTO ids, waiting_tails
      FROM (SELECT DISTINCT ON (record_id) record_id, tail, i
              FROM unnest(record_ids, tails) WITH ORDINALITY AS l(record_id, tail, i)
             ORDER BY record_id, i) l
     WHERE EXISTS (SELECT 1 FROM audit_unlinked u
                    WHERE u.record_id = l.record_id
                      AND NOT EXISTS (SELECT 1 FROM audit_log a
                                       WHERE a.at = u.at AND a.record_id = u.record_id));
    n := coalesce(cardinality(ids), 0);
    IF n = 0 THEN
        RETURN QUERY SELECT 0, head.last_seq, head.last_hash;
        RETURN;
    END IF;
    placed := ssogw_audit_hashes(head.last_seq, head.last_hash, waiting_tails);
    -- The head first: the queue's guard (0010) lets a record go only for its copy on the chain
    -- at or below the head.
    UPDATE audit_chain c SET last_seq = placed.seqs[n], last_hash = placed.hashes[n] WHERE c.id;
    WITH gone AS (
        DELETE FROM audit_unlinked u
         USING unnest(ids, placed.seqs, placed.prev_hashes, placed.hashes)
               AS l(record_id, seq, prev_hash, hash)
         WHERE u.record_id = l.record_id
        RETURNING u.*, l.seq, l.prev_hash, l.hash
    ), copied AS (
        INSERT INTO audit_log (seq, at, principal_kind, principal_id, principal_name, operator,
                               terminal, source_ip, protocol, operation, national_id,
                               name_returned, outcome, request_id, detail, prev_hash, hash,
                               record_id)
        SELECT g.seq, g.at, g.principal_kind, g.principal_id, g.principal_name, g.operator,
               g.terminal, g.source_ip, g.protocol, g.operation, g.national_id,
               g.name_returned, g.outcome, g.request_id, g.detail, g.prev_hash, g.hash,
               g.record_id
          FROM gone g
        RETURNING 1
    )
    SELECT count(*) INTO moved FROM copied;
    IF moved <> n THEN  -- rolled back: the chain never has a gap
        RAISE EXCEPTION 'linked % of % audit records', moved, n
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN QUERY SELECT n, placed.seqs[n], placed.hashes[n];
END $$;

DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION ssogw_audit_hashes SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION ssogw_audit_append_tails SET search_path = %I, pg_temp',
                   current_schema());
    EXECUTE format('ALTER FUNCTION ssogw_audit_link_tails SET search_path = %I, pg_temp',
                   current_schema());
END $$;
-- Only the service role may call the two that write (app/db/grants.py revokes every routine
-- from PUBLIC and grants EXECUTE on SERVICE_ROUTINES after every run); the hashing is theirs.
REVOKE ALL ON FUNCTION ssogw_audit_append_tails FROM PUBLIC;
REVOKE ALL ON FUNCTION ssogw_audit_link_tails FROM PUBLIC;
