-- A confirm's lock and its read in one round trip (app/counter/ledger.py, CONFIRM_READ_CALL).
--
-- The function locks the person's row, then reads what the confirm is judged on in a statement
-- of its own: a volatile function takes a new snapshot for each statement (read committed), so
-- the read sees every payment committed before the lock was granted, as the two statements the
-- gateway sent before did. In one SELECT ... FOR UPDATE it would not: the paid months would
-- come from a snapshot taken before the lock was waited for.
--
-- The read below is app/counter/ledger.py's CONFIRM_READ, as it was when this was written; the
-- row ends with `locked`, whether the lock found the person (a person created between the lock
-- and the read is not judged: nothing locked it). tests/integration/test_confirm_read_function.py
-- holds the two alike. A change to the read (MEMBER_SQL among it) needs a migration that adds a
-- function under a new name (ssogw_confirm_read_2, ...), which the release calls: this one is
-- what instances of the release before call during a rolling upgrade, so it is not replaced.
--
-- SECURITY INVOKER: it runs with the gateway's own rights, as the statements did; the
-- migrator grants EXECUTE to the service role (app/db/grants.py, SERVICE_ROUTINES).

CREATE FUNCTION ssogw_confirm_read(nid text, since date, owner integer, txn text, by_partner boolean)
RETURNS TABLE (
    national_id text, title text, first_name text, last_name text, section smallint,
    status text, status_reason text, ended_month date, effective_date date,
    s40_option smallint, option_changed_on date, return_code text, period_of_payment text,
    payment_method text, last_paid_on date, last_paid_satang bigint, rules_from date,
    s39_eligibility text, previous json, months date[], paid_on date[],
    previous_option smallint, option_effective date, earlier_read boolean,
    last_paid_before date, last_on_time_before date,
    pay_id bigint, pay_partner_txn_id text, pay_receipt_no text, pay_national_id text,
    pay_section smallint, pay_s40_option smallint, pay_months date[], pay_amount_satang bigint,
    pay_savings_satang bigint, pay_request_hash bytea, pay_state text,
    pay_business_date date, pay_paid_at timestamptz, pay_posted_at timestamptz,
    pay_cancelled_at timestamptz, receipt_sequence bigint, rate_digest text, locked boolean
)
LANGUAGE plpgsql VOLATILE
AS $fn$
#variable_conflict use_column
DECLARE
    found_person boolean;
BEGIN
    PERFORM 1 FROM insured_persons WHERE insured_persons.national_id = $1 FOR UPDATE;
    found_person := FOUND;
    RETURN QUERY SELECT r.*, found_person FROM (
SELECT m.*, pay.id AS pay_id, pay.partner_txn_id AS pay_partner_txn_id, pay.receipt_no AS pay_receipt_no, pay.national_id AS pay_national_id, pay.section AS pay_section, pay.s40_option AS pay_s40_option, pay.months AS pay_months, pay.amount_satang AS pay_amount_satang, pay.savings_satang AS pay_savings_satang, pay.request_hash AS pay_request_hash, pay.state AS pay_state, pay.business_date AS pay_business_date, pay.paid_at AS pay_paid_at, pay.posted_at AS pay_posted_at, pay.cancelled_at AS pay_cancelled_at,
       CASE WHEN m.national_id IS NOT NULL AND pay.id IS NULL THEN nextval('receipt_seq')
       END AS receipt_sequence,
       (SELECT encode(sha256(convert_to(coalesce(string_agg(
    concat_ws('|', section, coalesce(s40_option::text, ''), to_char(first_month, 'YYYY-MM-DD'),
              coalesce(to_char(last_month, 'YYYY-MM-DD'), ''), amount_satang, government_satang),
    ',' ORDER BY id), ''), 'UTF8')), 'hex') FROM contribution_rates) AS rate_digest
  FROM (SELECT 1) AS one
  LEFT JOIN (
SELECT p.national_id, p.title, p.first_name, p.last_name, p.section, p.status,
       p.status_reason, p.ended_month, p.effective_date, p.s40_option, p.option_changed_on,
       p.return_code, p.period_of_payment, p.payment_method, p.last_paid_on, p.last_paid_satang,
       p.rules_from, p.s39_eligibility, cm.previous,
       COALESCE(pm.months, '{}') AS months, COALESCE(pm.paid_on, '{}') AS paid_on,
       oc.previous_option, oc.effective_month AS option_effective,
       p.section = 39 AND p.status = 'active' AS earlier_read,
       CASE WHEN p.section = 39 AND p.status = 'active' THEN (
            SELECT max(m.month) FROM paid_months m
             WHERE m.national_id = p.national_id AND m.section = 39 AND m.month < $2)
       END AS last_paid_before,
       CASE WHEN p.section = 39 AND p.status = 'active' THEN (
            SELECT m.month FROM paid_months m
             WHERE m.national_id = p.national_id AND m.section = 39 AND m.month < $2
               AND m.paid_on <= (m.month + interval '1 month 14 days')::date
             ORDER BY m.month DESC LIMIT 1)
       END AS last_on_time_before
  FROM insured_persons p
  LEFT JOIN LATERAL (  -- the window's months and their payment dates: one index range
        SELECT array_agg(m.month ORDER BY m.month) AS months,
               array_agg(m.paid_on ORDER BY m.month) AS paid_on
          FROM paid_months m
         WHERE m.national_id = p.national_id AND m.section = p.section AND m.month >= $2) pm
    ON true
  LEFT JOIN LATERAL (  -- of the changes taking effect last, the first: what it replaced held
        SELECT c.previous_option, c.effective_month FROM s40_option_changes c
         WHERE c.national_id = p.national_id AND p.option_changed_on IS NOT NULL
         ORDER BY c.effective_month DESC, c.changed_on, c.id LIMIT 1) oc ON true
  LEFT JOIN LATERAL (
        SELECT json_agg(json_build_array(c.section, c.coverage_start, c.ended_month,
                                         c.end_reason, c.s40_option)
                        ORDER BY c.ended_month DESC, c.id DESC) AS previous
          FROM closed_memberships c WHERE c.national_id = p.national_id) cm ON true
 WHERE p.national_id = $1
) AS m ON true
  LEFT JOIN LATERAL (SELECT id, partner_txn_id, receipt_no, national_id, section, s40_option, months, amount_satang, savings_satang, request_hash, state, business_date, paid_at, posted_at, cancelled_at FROM payments
                      WHERE $5 AND partner_id = $3 AND partner_txn_id = $4
                     UNION ALL
                     SELECT id, partner_txn_id, receipt_no, national_id, section, s40_option, months, amount_satang, savings_satang, request_hash, state, business_date, paid_at, posted_at, cancelled_at FROM payments
                      WHERE NOT $5 AND client_id = $3 AND partner_txn_id = $4) AS pay ON true
    ) AS r;
END
$fn$;

REVOKE ALL ON FUNCTION ssogw_confirm_read FROM PUBLIC;
