-- 0005: partner settlement imports and their reconciliation against the ledger.
-- One import per file taken for a partner and business day; the same file (same SHA-256) for
-- the same partner and day is recognised and answered with the stored result. A corrected file
-- is a new import; the latest import of a day is the one reports show by default.
CREATE TABLE settlement_imports (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id         integer     NOT NULL REFERENCES partners (id),
    business_date      date        NOT NULL,
    file_sha256        bytea       NOT NULL CHECK (length(file_sha256) = 32),
    file_format        text        NOT NULL CHECK (file_format IN ('bank', 'csv')),
    file_name          text,
    file_bytes         bigint      NOT NULL CHECK (file_bytes >= 0),
    header             jsonb       NOT NULL DEFAULT '{}',    -- what the file's header said
    counts             jsonb       NOT NULL DEFAULT '{}',    -- outcome -> lines
    totals             jsonb       NOT NULL DEFAULT '{}',    -- section -> lines and satang
    mismatches         integer     NOT NULL DEFAULT 0,       -- lines not matched
    imported_by        text,
    imported_at        timestamptz NOT NULL DEFAULT now(),
    finished_at        timestamptz,
    UNIQUE (partner_id, business_date, file_sha256)
);

-- One row per file line and per ledger row no line claimed. The primary key orders a report:
-- mismatches first (rank 0-4 by kind, 9 matched), then in the order the import found them.
CREATE TABLE settlement_lines (
    import_id          bigint      NOT NULL REFERENCES settlement_imports (id) ON DELETE CASCADE,
    rank               smallint    NOT NULL,
    seq                integer     NOT NULL,
    outcome            text        NOT NULL CHECK (outcome IN ('matched', 'only_in_file',
                        'only_in_gateway', 'amount_differs', 'months_differ', 'person_differs')),
    line_no            integer,                              -- NULL: only in the gateway
    partner_txn_id     text        NOT NULL,
    national_id        text        NOT NULL,
    section            smallint    NOT NULL,
    file_months        date[],
    file_amount_satang bigint,
    gateway_months     date[],
    gateway_amount_satang bigint,
    payment_id         bigint,                               -- the ledger row, when there is one
    note               text,
    PRIMARY KEY (import_id, rank, seq)
);
