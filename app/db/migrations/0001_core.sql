-- 0001: the system of record: insured persons, rates, partners, payments, paid months.
-- Sized for 13 million insured persons and tens of millions of paid-month rows.

-- ---------------------------------------------------------------------------------------------
-- Insured persons of both sections, with every field of the source system's extracts.
CREATE TABLE insured_persons (
    national_id        text        PRIMARY KEY               -- the identity (13 ASCII digits)
                        CHECK (national_id ~ '^[0-9]{13}$'),
    title              text        NOT NULL,                 -- นาย, นาง, นางสาว, or an initial
    first_name         text        NOT NULL,                 -- Thai script
    last_name          text        NOT NULL,                 -- family name
    section            smallint    NOT NULL CHECK (section IN (39, 40)),
    status             text        NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'terminated', 'inactive')),
    status_reason      text,                                 -- e.g. three_consecutive_unpaid
    ended_month        date,                                 -- first day of the month it ended
    effective_date     date        NOT NULL,                 -- coverage start (S39 source field)
    s40_option         smallint    CHECK (s40_option BETWEEN 1 AND 3),
    option_changed_on  date,                                 -- last S40 option change
    payment_method     text,                                 -- S40 source: counter, bank, ...
    period_of_payment  text,                                 -- S39 source: monthly, ...
    return_code        text,                                 -- S39 source system's return code
    birth_date         date,                                 -- S40 registration age 15–65
    last_paid_on       date,                                 -- S40 source: date of payment
    last_paid_satang   bigint,                               -- S40 source: amount of payment
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (section = 39 AND s40_option IS NULL OR section = 40 AND s40_option IS NOT NULL)
);
-- Listing by section and status with keyset pagination on national_id
-- (GET /api/v1/insured?section=&status=&cursor=) without scanning 13 million rows.
CREATE INDEX insured_persons_section_status_id ON insured_persons (section, status, national_id);

-- ---------------------------------------------------------------------------------------------
-- Effective-dated contribution rates. The latest first_month covering a month wins, so a
-- temporary cut overrides the open-ended base; ties go to the later id (a later decision).
CREATE TABLE contribution_rates (
    id                 integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    section            smallint    NOT NULL CHECK (section IN (39, 40)),
    s40_option         smallint    CHECK (s40_option BETWEEN 1 AND 3),
    first_month        date        NOT NULL CHECK (extract(day FROM first_month) = 1),
    last_month         date        CHECK (last_month IS NULL OR last_month >= first_month),
    amount_satang      integer     NOT NULL CHECK (amount_satang > 0),
    government_satang  integer     NOT NULL DEFAULT 0 CHECK (government_satang >= 0),
    note               text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (section = 39 AND s40_option IS NULL OR section = 40 AND s40_option IS NOT NULL)
);

-- The history of DOMAIN.md (amounts paid by the insured; government share for information).
INSERT INTO contribution_rates (section, s40_option, first_month, last_month,
                                amount_satang, government_satang, note) VALUES
    (39, NULL, '1990-01-01', NULL,         43200,     0, 'S39 normal: 9% of a fixed 4,800 base'),
    (39, NULL, '2020-03-01', '2020-05-01',  8600,     0, 'S39 COVID-19 cut Mar-May 2020'),
    (39, NULL, '2021-09-01', '2021-11-01', 23500,     0, 'S39 cut Sep-Nov 2021'),
    (40, 1,    '2012-01-01', NULL,          7000,  3000, 'S40 option 1 normal'),
    (40, 1,    '2021-08-01', '2022-01-01',  4200,  3000, 'S40 option 1 cut to 60% Aug 2021-Jan 2022'),
    (40, 2,    '2012-01-01', NULL,         10000,  5000, 'S40 option 2 normal'),
    (40, 2,    '2021-08-01', '2022-01-01',  6000,  5000, 'S40 option 2 cut Aug 2021-Jan 2022'),
    (40, 3,    '2012-01-01', NULL,         30000, 15000, 'S40 option 3 normal'),
    (40, 3,    '2021-08-01', '2022-01-01', 18000, 15000, 'S40 option 3 cut Aug 2021-Jan 2022');

-- ---------------------------------------------------------------------------------------------
-- Partners (counter networks) and SSO's internal clients.
CREATE TABLE partners (
    id                 integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text        NOT NULL UNIQUE,          -- short code, e.g. cvs-demo
    display_name       text        NOT NULL,
    status             text        NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'disabled')),
    cidrs              cidr[]      NOT NULL,                 -- source-address allowlist
    operations         text[]      NOT NULL,                 -- allowed SOAP operation names
    rate_limit         real        NOT NULL CHECK (rate_limit > 0),  -- requests/s per instance
    username           text        NOT NULL UNIQUE,          -- WS-Security username
    password_hash      text        NOT NULL,                 -- argon2id of the secret
    secret_enc         bytea       NOT NULL,                 -- AES-GCM: PasswordDigest needs it
    password_text_ok   boolean     NOT NULL DEFAULT false,   -- allow PasswordText
    data_scope         text[]      NOT NULL DEFAULT ARRAY['national_id','title','first_name',
                                   'last_name','section','status','amount_due'],
    created_at         timestamptz NOT NULL DEFAULT now(),
    rotated_at         timestamptz
);

CREATE TABLE api_clients (
    id                 integer     GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text        NOT NULL UNIQUE,
    status             text        NOT NULL DEFAULT 'active'
                        CHECK (status IN ('active', 'disabled')),
    scopes             text[]      NOT NULL,                 -- counter, admin, audit
    token_id           text        NOT NULL UNIQUE,          -- public half of the bearer token
    token_hash         text        NOT NULL,                 -- argon2id of the secret half
    cidrs              cidr[]      NOT NULL DEFAULT ARRAY['0.0.0.0/0'::cidr, '::/0'::cidr],
    rate_limit         real        NOT NULL DEFAULT 200 CHECK (rate_limit > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    rotated_at         timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- The payments ledger: one row per confirmed counter transaction; never deleted.
CREATE SEQUENCE receipt_seq AS bigint;

CREATE TABLE payments (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner_id         integer     REFERENCES partners (id),
    client_id          integer     REFERENCES api_clients (id),
    partner_txn_id     text        NOT NULL CHECK (length(partner_txn_id) BETWEEN 1 AND 64),
    receipt_no         text        NOT NULL UNIQUE,          -- SSO receipt, with check character
    national_id        text        NOT NULL REFERENCES insured_persons (national_id),
    section            smallint    NOT NULL CHECK (section IN (39, 40)),
    s40_option         smallint,
    months             date[]      NOT NULL CHECK (cardinality(months) BETWEEN 1 AND 13),
    amount_satang      bigint      NOT NULL CHECK (amount_satang > 0),
    savings_satang     bigint      NOT NULL DEFAULT 0 CHECK (savings_satang >= 0),
    request_hash       bytea       NOT NULL,                 -- SHA-256 of the canonical request
    state              text        NOT NULL DEFAULT 'confirmed'
                        CHECK (state IN ('confirmed', 'cancelled')),
    store_id           text,
    terminal_id        text,
    shift              text,
    operator_id        text,
    business_date      date        NOT NULL,
    paid_at            timestamptz NOT NULL,
    posted_at          timestamptz NOT NULL DEFAULT now(),
    cancelled_at       timestamptz,
    cancel_reason      text,
    CHECK (num_nonnulls(partner_id, client_id) = 1),
    CHECK (state = 'confirmed' AND cancelled_at IS NULL
           OR state = 'cancelled' AND cancelled_at IS NOT NULL)
);
-- Idempotency and status by the caller's own transaction id (one per partner / client).
CREATE UNIQUE INDEX payments_partner_txn ON payments (partner_id, partner_txn_id)
    WHERE partner_id IS NOT NULL;
CREATE UNIQUE INDEX payments_client_txn ON payments (client_id, partner_txn_id)
    WHERE client_id IS NOT NULL;
-- A person's payment history (insured record page, complaints).
CREATE INDEX payments_national_id ON payments (national_id, posted_at);
-- Settlement matching and statistics: one partner's business day, or a range of days.
CREATE INDEX payments_business_date ON payments (business_date, partner_id);

-- ---------------------------------------------------------------------------------------------
-- Paid contribution months: one row per person, section and month. The primary key is the
-- last line of defence against paying a month twice, whatever the race.
CREATE TABLE paid_months (
    national_id        text        NOT NULL REFERENCES insured_persons (national_id),
    section            smallint    NOT NULL CHECK (section IN (39, 40)),
    month              date        NOT NULL CHECK (extract(day FROM month) = 1),
    amount_satang      integer     NOT NULL CHECK (amount_satang >= 0),  -- at the rate paid
    s40_option         smallint,
    payment_id         bigint      REFERENCES payments (id),  -- NULL: loaded from the source
    paid_on            date        NOT NULL,
    PRIMARY KEY (national_id, section, month)
);
-- Cancel frees the months of one payment; refunds walk the months of a period.
CREATE INDEX paid_months_payment ON paid_months (payment_id) WHERE payment_id IS NOT NULL;
CREATE INDEX paid_months_month ON paid_months (month);
