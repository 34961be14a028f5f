-- ssogw: outside a transaction
-- 0019: an inquiry reads a person's paid months from paid_months' key alone.
--
-- The inquiry (app/counter/member_reads.py) reads the months of the window with their payment
-- dates, and for a Section 39 member the latest months paid before it. The key held the months;
-- the dates were in the table, one more page from each person's rows. With the date in the key
-- (INCLUDE), those reads are index-only scans on a standby whose visibility map is set (the
-- seed's COPY FREEZE, then autovacuum), and the table's pages leave the enquiry's working set.
-- On the bench's 13,000,000 persons the relations an inquiry reads shrink from 7.9 GB to
-- 4.8 GB, and the standby read 2.1-2.5 pages a request from outside its shared buffers instead
-- of 2.9-3.2 (bench/RESULTS.md, session 11). The key keeps its size: the date fills what the
-- entry's alignment left empty (2,119 MB either way).
--
-- The new key is built CONCURRENTLY, while payments go on writing the table, then takes the
-- place of the old one under a short lock (the constraint keeps its name, paid_months_pkey,
-- which app/counter/ledger.py recognises). A run cut short leaves the old key with, at most,
-- the new index: invalid (the build stopped), or valid beside the key (the swap timed out;
-- written by every payment until the next run); the next run drops it and begins again. A run
-- that stopped after the swap, before it was recorded, builds and swaps the key once more.

DROP INDEX CONCURRENTLY IF EXISTS paid_months_key_with_paid_on;

CREATE UNIQUE INDEX CONCURRENTLY paid_months_key_with_paid_on
    ON paid_months (national_id, section, month) INCLUDE (paid_on);

ALTER TABLE paid_months
    DROP CONSTRAINT paid_months_pkey,
    ADD CONSTRAINT paid_months_pkey PRIMARY KEY USING INDEX paid_months_key_with_paid_on;
