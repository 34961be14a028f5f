"""What the ledger and the audit trail hold for a set of confirms, read from the primary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

PAYMENTS = """
SELECT p.partner_txn_id, p.national_id, p.months,
       COALESCE((SELECT array_agg(m.month ORDER BY m.month) FROM paid_months m
                  WHERE m.payment_id = p.id), '{}') AS paid
  FROM payments p JOIN partners pa ON pa.id = p.partner_id
 WHERE pa.name = $1 AND p.national_id = ANY($2)
"""
PAID_MONTHS = """
SELECT national_id, count(*) AS n, count(*) FILTER (WHERE payment_id IS NULL) AS unowned
  FROM paid_months WHERE national_id = ANY($1) GROUP BY national_id
"""
AUDIT = """
SELECT request_id, operation, outcome, national_id, detail
  FROM audit_log WHERE request_id = ANY($1)
"""


@dataclass(frozen=True)
class LedgerState:
    """The payments of one partner to a set of persons, and those persons' paid months."""

    by_txn: Counter[str]  # partner transaction id -> payments with it
    by_person: Counter[str]  # national ID -> payments for that person
    half_written: list[str]  # transaction ids whose paid_months rows do not match their months
    months_by_person: Counter[str]  # national ID -> paid_months rows
    unowned_months: int  # paid_months rows of these persons with no payment

    @property
    def doubled(self) -> int:
        """Payments beyond the first, per transaction id and per person."""
        extra_txn = sum(n - 1 for n in self.by_txn.values() if n > 1)
        extra_person = sum(n - 1 for n in self.by_person.values() if n > 1)
        extra_months = sum(n - 1 for n in self.months_by_person.values() if n > 1)
        return max(extra_txn, extra_person, extra_months)


async def ledger_state(pool: asyncpg.Pool, partner_name: str, people: Iterable[str]) -> LedgerState:
    persons = list(people)
    rows = await pool.fetch(PAYMENTS, partner_name, persons)
    half = [r["partner_txn_id"] for r in rows if list(r["months"]) != list(r["paid"])]
    months = await pool.fetch(PAID_MONTHS, persons)
    return LedgerState(
        by_txn=Counter(r["partner_txn_id"] for r in rows),
        by_person=Counter(r["national_id"] for r in rows),
        half_written=half,
        months_by_person=Counter({r["national_id"]: r["n"] for r in months}),
        unowned_months=sum(r["unowned"] for r in months),
    )


async def audit_outcomes(pool: asyncpg.Pool, request_ids: Iterable[str]) -> dict[str, list[str]]:
    """request id -> the outcomes of its ConfirmPayment audit records."""
    found: dict[str, list[str]] = {}
    for row in await pool.fetch(AUDIT, list(request_ids)):
        if row["operation"] == "ConfirmPayment":
            found.setdefault(row["request_id"], []).append(row["outcome"])
    return found
