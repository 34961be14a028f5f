-- 0006: complaint cases ("I paid at the counter but it does not show") and their history.
-- A case names the person and, where it can be found, the payment it is about; it moves
-- open -> investigating -> resolved | rejected, each move kept with who, when and a note.
CREATE TABLE complaints (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    national_id        text        NOT NULL CHECK (national_id ~ '^[0-9]{13}$'),
    category           text        NOT NULL CHECK (category IN ('paid-not-posted',
                                   'charged-twice', 'wrong-amount', 'other')),
    description        text        NOT NULL CHECK (length(description) BETWEEN 1 AND 2000),
    state              text        NOT NULL DEFAULT 'open'
                        CHECK (state IN ('open', 'investigating', 'resolved', 'rejected')),
    receipt_no         text,                                 -- as given, or the payment's
    partner_id         integer     REFERENCES partners (id),
    partner_txn_id     text        CHECK (length(partner_txn_id) BETWEEN 1 AND 64),
    payment_id         bigint      REFERENCES payments (id), -- NULL: no payment was found
    paid_on            date,                                 -- the day the member says they paid
    opened_by          text        NOT NULL,                 -- the SSO officer or client
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- The back office's queue: cases by state, oldest first (and the open-case metrics).
CREATE INDEX complaints_state_created ON complaints (state, created_at, id);
-- One partner's cases.
CREATE INDEX complaints_partner ON complaints (partner_id, state, created_at, id)
    WHERE partner_id IS NOT NULL;
-- A person's cases, and the cases about one payment.
CREATE INDEX complaints_national_id ON complaints (national_id, created_at);
CREATE INDEX complaints_payment ON complaints (payment_id) WHERE payment_id IS NOT NULL;

-- Every move of a case, the opening included (from_state NULL).
CREATE TABLE complaint_events (
    complaint_id       bigint      NOT NULL REFERENCES complaints (id),
    seq                integer     NOT NULL CHECK (seq >= 1),
    at                 timestamptz NOT NULL,
    from_state         text,
    to_state           text        NOT NULL,
    actor              text        NOT NULL,                 -- who; 'system' for the gateway
    via                text,                                 -- client:<name> / operator:<name>
    note               text,
    PRIMARY KEY (complaint_id, seq)
);

-- The person's audit records around the payment, found when the case was opened. audit_log
-- is partitioned and its records are never changed, so the link is its key (at, seq).
CREATE TABLE complaint_audit_links (
    complaint_id       bigint      NOT NULL REFERENCES complaints (id),
    audit_at           timestamptz NOT NULL,
    audit_seq          bigint      NOT NULL,
    PRIMARY KEY (complaint_id, audit_at, audit_seq)
);
