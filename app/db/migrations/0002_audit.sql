-- 0002: the audit trail: one record per call that touches a national ID, refused calls too.
-- Partitioned by month so that hundreds of millions of rows stay cheap to query and to expire.

CREATE TABLE audit_log (
    seq                bigint      NOT NULL,                 -- position in the hash chain
    at                 timestamptz NOT NULL,
    principal_kind     text        NOT NULL,                 -- partner | client | operator | anon
    principal_id       integer,
    principal_name     text,
    operator           text,                                 -- operator or terminal, where given
    terminal           text,
    source_ip          inet,
    protocol           text        NOT NULL,                 -- soap | rest | cli
    operation          text        NOT NULL,
    national_id        text,
    name_returned      text,                                 -- the name the caller saw
    outcome            text        NOT NULL,                 -- ok or the error code
    request_id         text        NOT NULL,
    detail             jsonb,
    prev_hash          bytea       NOT NULL,
    hash               bytea       NOT NULL,
    PRIMARY KEY (at, seq)
) PARTITION BY RANGE (at);

-- "Who looked up ID X between these dates?": one index range scan per monthly partition.
CREATE INDEX audit_log_national_id_at ON audit_log (national_id, at) WHERE national_id IS NOT NULL;
-- `ssogw audit verify` walks the chain in seq order; also finds the record before a range.
CREATE INDEX audit_log_seq ON audit_log (seq);

-- The head of the hash chain; writers lock this row, so the chain stays one line across
-- every instance of the service.
CREATE TABLE audit_chain (
    id                 boolean     PRIMARY KEY DEFAULT true CHECK (id),
    last_seq           bigint      NOT NULL,
    last_hash          bytea       NOT NULL
);
INSERT INTO audit_chain (last_seq, last_hash) VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000');

-- Monthly partitions, created ahead of time by `ssogw migrate` (and here for a window around
-- today); the default partition catches anything outside them so no record is ever refused.
CREATE FUNCTION ssogw_ensure_audit_partitions(first_month date, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', first_month)::date;
    created integer := 0;
    part text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        part := format('audit_log_%s', to_char(m, 'YYYYMM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF audit_log FOR VALUES FROM (%L) TO (%L)',
                part, m, (m + interval '1 month')::date);
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;
SELECT ssogw_ensure_audit_partitions((date_trunc('month', now()) - interval '24 months')::date, 37);
