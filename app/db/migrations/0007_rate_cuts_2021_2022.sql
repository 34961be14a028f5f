-- 0007: the published rate cuts that 0001 left out (DOMAIN.md, "Rates are effective-dated").
--
--   Section 39, Jun-Aug 2021: 216 baht (4.5% of the fixed 4,800 base). Cabinet resolution of
--     May 2021, as the Ministry of Labour announced it (M: press reports).
--   Section 39, May-Jul 2022: 91 baht (1.9% of 4,800 = 91.20). Cabinet resolution of March
--     2022 (M: press reports give the 1.9%; DOMAIN.md gives 91).
--     ROUNDING UNCONFIRMED: 91.00 is stored, not 91.20. Every Section 39 amount published so
--     far is whole baht, and each matches a percentage of 4,800 rounded to the nearest baht:
--     86 (1.8% = 86.40), the 221 of the first March 2020 resolution (4.6% = 220.80), 235
--     (4.9% = 235.20). If SSO confirms 91.20, add a corrected line for 2022-05..2022-07
--     (POST /api/v1/rates/retroactive): a later line with the same first month wins, and the
--     answer lists the months paid above it. The amount is data here, never code.
--   Section 40 options 1/2/3, May-Jul 2022: 42/60/180 baht (60% of 70/100/300), same
--     resolution (M). The government share stays 30/50/150, as in the Aug 2021-Jan 2022 cut.
--
-- The government share of Section 39 is not confirmed (DOMAIN.md, ?). contribution_rates has
-- no way to store "unknown" (government_satang is NOT NULL DEFAULT 0, as for the other Section
-- 39 lines of 0001), so these lines store 0 like those; 0 here means "not known", not "none".
--
-- A line an operator already entered for the same section, option and span (the rate
-- administration was the way to add these before this migration) is kept, not duplicated:
-- the operator's decision stands. Months already paid above these amounts are overpayments;
-- `ssogw refunds list` lists them.
INSERT INTO contribution_rates (section, s40_option, first_month, last_month,
                                amount_satang, government_satang, note)
SELECT v.section, v.s40_option, v.first_month, v.last_month,
       v.amount_satang, v.government_satang, v.note
  FROM (VALUES
    (39::smallint, NULL::smallint, '2021-06-01'::date, '2021-08-01'::date, 21600,     0,
     'S39 cut Jun-Aug 2021: 4.5% of 4,800'),
    (39,           NULL,           '2022-05-01',       '2022-07-01',        9100,     0,
     'S39 cut May-Jul 2022: 1.9% of 4,800 = 91.20, stored as 91.00 (rounding unconfirmed)'),
    (40,           1,              '2022-05-01',       '2022-07-01',        4200,  3000,
     'S40 option 1 cut to 60% May-Jul 2022'),
    (40,           2,              '2022-05-01',       '2022-07-01',        6000,  5000,
     'S40 option 2 cut to 60% May-Jul 2022'),
    (40,           3,              '2022-05-01',       '2022-07-01',       18000, 15000,
     'S40 option 3 cut to 60% May-Jul 2022')
  ) AS v (section, s40_option, first_month, last_month, amount_satang, government_satang, note)
 WHERE NOT EXISTS (
       SELECT 1 FROM contribution_rates c
        WHERE c.section = v.section
          AND c.s40_option IS NOT DISTINCT FROM v.s40_option
          AND c.first_month = v.first_month
          AND c.last_month IS NOT DISTINCT FROM v.last_month)
 ORDER BY v.section, v.s40_option NULLS FIRST, v.first_month;
