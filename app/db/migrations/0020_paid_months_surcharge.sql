-- 0020: a paid month keeps the late surcharge its amount includes.
--
-- A Section 39 month paid after its due date costs its rate plus the late surcharge
-- (SSOGW_S39_LATE_SURCHARGE_SATANG, 0 by default). paid_months.amount_satang holds what was taken
-- for the month, the surcharge included; the refunds of a rate cut compare the contribution
-- alone with the rate due (app/refunds, app/rates), and with the surcharge inside amount_satang
-- they listed it as owed back. The counter now writes each month's surcharge here, 0 included
-- (app/counter/ledger.py). NULL: not known, read as 0 — the months loaded from the source
-- system, and those paid before this migration (when the surcharge could not be told apart).
--
-- Nullable and without a default, the column costs the table nothing: no rewrite now, and no
-- bytes in the rows that leave it NULL (the seed's and the source's loads). The CHECK is added
-- NOT VALID so that no existing row is scanned under the lock; every row is NULL, which it
-- allows, and it binds the rows written from now on.

ALTER TABLE paid_months ADD COLUMN surcharge_satang integer;
ALTER TABLE paid_months ADD CONSTRAINT paid_months_surcharge
    CHECK (surcharge_satang BETWEEN 0 AND amount_satang) NOT VALID;
