-- 0004: the history of Section 40 option changes.
-- A change takes effect from the month after it is made, at most a set number of times in a
-- calendar year (DOMAIN.md). insured_persons keeps the option now held; this table keeps each
-- change, so the yearly limit is counted exactly and the option in force for any month can be
-- told (the previous option until effective_month, the new one from it).
CREATE TABLE s40_option_changes (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    national_id        text        NOT NULL REFERENCES insured_persons (national_id),
    changed_on         date        NOT NULL,                 -- business date of the change
    previous_option    smallint    NOT NULL CHECK (previous_option BETWEEN 1 AND 3),
    new_option         smallint    NOT NULL CHECK (new_option BETWEEN 1 AND 3),
    effective_month    date        NOT NULL CHECK (extract(day FROM effective_month) = 1),
    changed_by         text,                                 -- the client that made the change
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (previous_option <> new_option)
);
-- "How many changes did this person make this year?" and the person's change history.
CREATE INDEX s40_option_changes_person ON s40_option_changes (national_id, changed_on);
