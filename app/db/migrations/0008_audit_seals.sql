-- 0008: seals of the audit chain. At a fixed cadence an instance signs a checkpoint of the chain
-- head (app/audit/seals/) with a key the database never holds and keeps it OUTSIDE the database
-- (the checkpoint directory); this table is only a copy, for the sealer to continue from and for
-- verify to notice a checkpoint file that went missing. Verify never trusts it alone.
-- The service only reads and appends here (INSERT, SELECT): no UPDATE or DELETE is ever needed.

CREATE TABLE audit_seals (
    checkpoint   bigint      PRIMARY KEY CHECK (checkpoint >= 1),  -- 1, 2, 3, ... no gaps
    seq          bigint      NOT NULL CHECK (seq >= 0),           -- the chain's last record
    head_hash    bytea       NOT NULL,                            -- that record's hash
    sealed_at    timestamptz NOT NULL,
    prev_digest  bytea       NOT NULL,                            -- sha256 of the previous one
    key_id       text        NOT NULL,                            -- ed25519:<16 bytes hex>
    signature    bytea       NOT NULL                             -- Ed25519 over the signed form
);
