-- 0021: the credential checks' failure budgets hold for the fleet
-- (app/admission/shared_failures.py), as the rate limits do (0013).
--
-- A budget is a number of failed checks of a PasswordText or bearer secret, per source address
-- and name, per name and per source address (app/admission/failure_throttle.py), that refills
-- evenly from `capacity` over a window by the database's clock. Before an argon2 check an
-- instance reads what is left of the caller's three budgets and spends one failure of each, in
-- one transaction holding their rows, only when every one has a failure left; a check whose
-- secret holds gives it back. Kept per instance before, so that a guesser spreading its calls
-- over N instances (or an instance's W workers) had N (or W) budgets.
--
-- A row is written only when a check fails; a row untouched for a window is full again and
-- means nothing, and is deleted (`spent_at`'s index). `key` names the budget: `pair|<address>|
-- <kind>:<name>`, `name|<kind>:<name>` or `address|<address>` (an IPv6 address by its /64).
--
-- UNLOGGED, as rate_buckets: a few minutes of state, no WAL, no fsync, not replicated; after a
-- crash or a failover the budgets start full, as a restart of the per-instance ones did.

CREATE UNLOGGED TABLE failure_budgets (
    key            text             PRIMARY KEY,
    capacity       double precision NOT NULL CHECK (capacity >= 1),
    failures_left  double precision NOT NULL CHECK (failures_left >= 0),
    spent_at       timestamptz      NOT NULL
);
CREATE INDEX failure_budgets_spent_at ON failure_budgets (spent_at);
