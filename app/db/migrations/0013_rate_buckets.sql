-- 0013: rate limits that hold for the fleet: one token bucket per partner and per client,
-- shared by every instance (app/admission/rate_limiter.py).
--
-- A bucket holds up to one second's worth of its principal's rate (at least one token) and
-- refills at that rate by the database's clock. An instance takes tokens from it in leases (a
-- tenth of a second's worth, at least one) with one statement that refills the bucket by the
-- time elapsed since `refilled_at`, puts back what the instance's last lease left unspent, and
-- takes at most the lease (`taken`: what this statement took, returned to the instance). The
-- rate and the capacity come with each statement, from the principal's record, so a changed
-- limit holds from the next lease on; a bucket is made, full, by the first lease it gives.
--
-- UNLOGGED: a bucket is a few seconds of state, not a record. Its changes write no WAL, so a
-- lease costs no fsync and no replication, and after a crash or a failover the buckets start
-- empty of rows, that is full, which is what a restart of the per-instance buckets did.
-- Standbys hold no rows of it; only the primary is ever asked.

CREATE UNLOGGED TABLE rate_buckets (
    kind          text             NOT NULL CHECK (kind IN ('partner', 'client')),
    principal_id  bigint           NOT NULL,
    tokens        double precision NOT NULL CHECK (tokens >= 0),
    taken         integer          NOT NULL CHECK (taken >= 0),
    refilled_at   timestamptz      NOT NULL,
    PRIMARY KEY (kind, principal_id)
);
