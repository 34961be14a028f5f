-- 0014: the insured person's life cycle: Section 39 eligibility, memberships that ended before
-- the latest one, and the events that change a membership's status (DOMAIN.md, docs/domain.md).
--
-- insured_persons keeps one row per national ID: the person's latest membership (the open one,
-- if any). When a person whose membership has ended registers again (a Section 39 member whose
-- cover ended registers under Section 40; a person back from Section 33 employment registers
-- under Section 39 or 40), the ended membership is copied into closed_memberships and the row
-- takes the new one. Payments, paid months and settlement lines keep their own section, so the
-- ledger, settlement and refunds read closed memberships as before.

-- ---------------------------------------------------------------------------------------------
-- Section 39 eligibility as registered: the Section 33 history the source system sent, the
-- date of the application, and whether the rule was met or an officer overrode it. And the
-- month from which an officer's reinstatement has the Section 39 rules judged again.
-- Nullable, with no default: adding them rewrites no row of the 13 million. The checks are
-- NOT VALID because every existing row holds NULL in these columns, which passes them; new
-- and updated rows are checked as always.
ALTER TABLE insured_persons
    ADD COLUMN s33_months              smallint,   -- months of Section 33 contributions
    ADD COLUMN s33_employment_ended_on date,       -- last day of Section 33 employment
    ADD COLUMN s39_applied_on          date,       -- the day the person applied for Section 39
    ADD COLUMN s39_eligibility         text,       -- eligible | override (NULL: not recorded)
    ADD COLUMN rules_from              date;       -- S39 rules judged from this month on
ALTER TABLE insured_persons
    ADD CONSTRAINT insured_persons_s33_months
        CHECK (s33_months BETWEEN 0 AND 1200) NOT VALID,
    ADD CONSTRAINT insured_persons_s39_eligibility
        CHECK (s39_eligibility IN ('eligible', 'override')) NOT VALID,
    ADD CONSTRAINT insured_persons_rules_from
        CHECK (extract(day FROM rules_from) = 1) NOT VALID;

-- ---------------------------------------------------------------------------------------------
-- Memberships that ended before the person's latest one, as they were when they ended.
CREATE TABLE closed_memberships (
    id                      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    national_id             text        NOT NULL REFERENCES insured_persons (national_id),
    section                 smallint    NOT NULL CHECK (section IN (39, 40)),
    s40_option              smallint    CHECK (s40_option BETWEEN 1 AND 3),
    coverage_start          date        NOT NULL,    -- effective_date of that membership
    ended_month             date        NOT NULL CHECK (extract(day FROM ended_month) = 1),
    end_reason              text,                    -- e.g. three_consecutive_unpaid
    s33_months              smallint,
    s33_employment_ended_on date,
    s39_applied_on          date,
    s39_eligibility         text        CHECK (s39_eligibility IN ('eligible', 'override')),
    closed_on               date        NOT NULL,    -- business date of the next registration
    closed_by               text,                    -- the client that registered it
    created_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (section = 39 AND s40_option IS NULL OR section = 40)
);
-- The inquiry's "what ended before" and the person's record: one probe by national ID.
CREATE INDEX closed_memberships_person ON closed_memberships (national_id, ended_month);

-- ---------------------------------------------------------------------------------------------
-- The events that change a membership's status: an officer's termination, suspension or
-- reinstatement, a return to Section 33 employment, an override of the Section 39 rule at
-- registration. Each with its reason and who recorded it; never changed, never removed. The
-- person's row holds the status the latest event left (so an inquiry reads one row); the
-- status a person is in is derived from it and the rules (app/domain/standing.py).
CREATE TABLE membership_events (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    national_id        text        NOT NULL REFERENCES insured_persons (national_id),
    section            smallint    NOT NULL CHECK (section IN (39, 40)),
    kind               text        NOT NULL CHECK (kind IN ('terminated', 'suspended',
                        'reinstated', 'section33_employment', 'eligibility_override')),
    status             text        NOT NULL CHECK (status IN ('active', 'terminated', 'inactive')),
    ended_month        date        CHECK (extract(day FROM ended_month) = 1),
    rules_from         date        CHECK (extract(day FROM rules_from) = 1),
    reason             text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    recorded_on        date        NOT NULL,         -- business date
    recorded_by        text        NOT NULL,         -- the client that recorded it
    operator           text,                         -- the officer, when the call named one
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX membership_events_person ON membership_events (national_id, id);
