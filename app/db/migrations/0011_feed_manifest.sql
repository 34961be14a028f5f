-- 0011: the partner feed's manifest: which national IDs went in which export, kept before the
-- first byte of the export leaves.
--
-- An export (app/feed) takes one snapshot of insured_persons and, before it streams anything,
-- commits here every national ID that snapshot selects, then commits its start record on the
-- audit chain (operation PartnerFeedExportStart, detail: export_id, partner, scope, persons),
-- and only then streams the rows of that same snapshot. An export killed mid-stream therefore
-- leaves its start record and the manifest of everything it sent or may have sent; a manifest
-- without a start record is an export that never sent a byte. `audit lookups` and the access
-- report join the two: "included in feed F to partner P on D".
--
-- Part of the audit trail, append-only like it: the service role only INSERTs and SELECTs.
-- The IDs of one export are kept in parts of up to 10,000 (bigint arrays: 13-digit IDs) with a
-- GIN index on them: about a tenth of the space of a row per person and export, and "which
-- exports held this ID" is one index probe. `at` is the start record's own time, which joins a
-- part to its record (audit_log's primary key begins with `at`); partitioned by month as the
-- audit log is, with the same function keeping partitions ahead.

CREATE TABLE audit_feed_manifest (
    at            timestamptz NOT NULL,   -- the export's start record's `at`
    export_id     uuid        NOT NULL,   -- the start record's detail->>'export_id'
    part          integer     NOT NULL CHECK (part >= 0),
    national_ids  bigint[]    NOT NULL,
    PRIMARY KEY (at, export_id, part)
) PARTITION BY RANGE (at);

CREATE INDEX audit_feed_manifest_national_ids ON audit_feed_manifest USING gin (national_ids);
CREATE TABLE audit_feed_manifest_default PARTITION OF audit_feed_manifest DEFAULT;

-- The monthly partitions of both audit tables, made ahead by `ssogw migrate`.
CREATE OR REPLACE FUNCTION ssogw_ensure_audit_partitions(first_month date, months integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', first_month)::date;
    created integer := 0;
    parent text;
    part text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        FOREACH parent IN ARRAY ARRAY['audit_log', 'audit_feed_manifest'] LOOP
            part := format('%s_%s', parent, to_char(m, 'YYYYMM'));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    part, parent, m, (m + interval '1 month')::date);
                created := created + 1;
            END IF;
        END LOOP;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

SELECT ssogw_ensure_audit_partitions((date_trunc('month', now()) - interval '24 months')::date, 37);
