-- 0018: linking a batch of audit records costs the batch, whatever else waits or is chained.
--
-- 1. The linker reads the oldest waiting records (app/audit/unlinked.py, WAITING) in the order
--    (at, record_id). audit_unlinked had no index in that order, so each read scanned, probed
--    and sorted every waiting record before it kept a batch: with 50,000 waiting and 150,000
--    chained, 74 ms a batch, and a backlog (left by a primary that refused linking for a
--    while) cost backlog² probes to drain. With the index the read stops after its batch.
--    The index orders by the time in UTC, the same order as `at`, so that lookups by ID
--    (app/audit/queries.py, LOOKUPS: ordered by `at`) cannot take it for theirs: on a small
--    queue the planner priced a backward scan of a plain (at, record_id) index, filtered by
--    ID, the same as the ID's own index, and sometimes chose it.
-- 2. Two checks against the chain were written as NOT EXISTS: the link function's "not
--    already chained" (0017) and the queue guard's "its copy is on the chain" (0010). The
--    planner may answer NOT EXISTS with a hash anti-join that reads every record of
--    audit_log, and on the bench pair it did (bench/RESULTS.md, session 10: the function's
--    DELETE and the guard's check over 10 ms). Both are now one index probe per record, a
--    LATERAL with LIMIT, which cannot become a join over the whole chain. The link function
--    finds its waiting records and deletes them by their primary key (= ANY), not by a join
--    the planner may answer with a scan of the whole queue.
--
-- What the functions decide is unchanged; test_audit_backlog.py holds them to their cost.

CREATE INDEX audit_unlinked_utc_record ON audit_unlinked ((at AT TIME ZONE 'UTC'), record_id);

CREATE OR REPLACE FUNCTION ssogw_audit_unlinked_leave_only_linked() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT 1 FROM gone g
          LEFT JOIN LATERAL (
              SELECT true AS held FROM audit_log l, audit_chain c
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
                 AND l.detail IS NOT DISTINCT FROM g.detail
               LIMIT 1) copy ON true
         WHERE copy.held IS NULL) THEN
        RAISE EXCEPTION 'an audit record leaves audit_unlinked only once it is on the chain'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ssogw_audit_link_tails(record_ids uuid[], tails bytea[],
                                                  lock_wait_ms integer)
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
      JOIN LATERAL (SELECT u.at FROM audit_unlinked u
                     WHERE u.record_id = l.record_id LIMIT 1) u ON true
      LEFT JOIN LATERAL (SELECT true AS held FROM audit_log a
                          WHERE a.at = u.at AND a.record_id = l.record_id LIMIT 1) chained
        ON true
     WHERE chained.held IS NULL;
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
        DELETE FROM audit_unlinked u WHERE u.record_id = ANY (ids) RETURNING u.*
    ), copied AS (
        INSERT INTO audit_log (seq, at, principal_kind, principal_id, principal_name, operator,
                               terminal, source_ip, protocol, operation, national_id,
                               name_returned, outcome, request_id, detail, prev_hash, hash,
                               record_id)
        SELECT l.seq, g.at, g.principal_kind, g.principal_id, g.principal_name, g.operator,
               g.terminal, g.source_ip, g.protocol, g.operation, g.national_id,
               g.name_returned, g.outcome, g.request_id, g.detail, l.prev_hash, l.hash,
               g.record_id
          FROM gone g
          JOIN unnest(ids, placed.seqs, placed.prev_hashes, placed.hashes)
               AS l(record_id, seq, prev_hash, hash) ON l.record_id = g.record_id
        RETURNING 1
    )
    SELECT count(*) INTO moved FROM copied;
    IF moved <> n THEN  -- rolled back: the chain never has a gap
        RAISE EXCEPTION 'linked % of % audit records', moved, n
            USING ERRCODE = 'serialization_failure';
    END IF;
    RETURN QUERY SELECT n, placed.seqs[n], placed.hashes[n];
END $$;

-- CREATE OR REPLACE drops a function's SET clauses: both resolve names in this schema only, as
-- 0010 and 0017 made them. Their owner and grants stay.
DO $$
BEGIN
    EXECUTE format(
        'ALTER FUNCTION ssogw_audit_unlinked_leave_only_linked() SET search_path = %I, pg_temp',
        current_schema());
    EXECUTE format('ALTER FUNCTION ssogw_audit_link_tails SET search_path = %I, pg_temp',
                   current_schema());
END $$;
