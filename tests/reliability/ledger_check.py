"""What the ledger and the audit trail hold for a set of confirms and cancels, read from the
primary: payments and their months, and the audit records that claim them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from app.audit.queries import AuditQueries
from app.audit.records import VerifyResult

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
  FROM audit_records WHERE request_id = ANY($1)
"""
RECEIPTS = """
SELECT p.receipt_no, p.state FROM payments p JOIN partners pa ON pa.id = p.partner_id
 WHERE pa.name = $1
"""
# A partner's records of one operation, committed (linked or still waiting for the link).
CLAIMS = """
SELECT request_id, outcome, detail->>'receiptNo' AS receipt,
       COALESCE((detail->>$3)::boolean, false) AS repeated, seq IS NULL AS unlinked
  FROM audit_records WHERE principal_name = $1 AND operation = $2
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


@dataclass(frozen=True)
class AuditTally:
    """The audit records of a partner's confirms (or cancels) against its payments (or its
    cancelled payments): a record claims a payment by its receipt number, and only the call
    that made it claims it (a replay's or an already-cancelled answer's record says so)."""

    records: int  # 'ok' records of the operation
    claims: int  # of which claim to have made the payment (the cancel)
    without_record: int  # payments (cancels) that no record claims
    without_payment: int  # 'ok' records naming a payment (a cancel) that does not exist
    doubled: int  # claims beyond the first per payment, and records beyond the first per call
    lost: int  # acknowledged calls without their 'ok' record
    unlinked: int  # records still waiting for their chain link

    @property
    def clean(self) -> bool:
        return not (self.without_record or self.without_payment or self.doubled or self.lost)


async def audit_tally(
    pool: asyncpg.Pool,
    partner_name: str,
    operation: str,
    *,
    acknowledged: Iterable[str],
) -> AuditTally:
    """Confirms (``ConfirmPayment``: every payment) or cancels (``CancelPayment``: every
    cancelled payment) of ``partner_name`` against their records; ``acknowledged``: request
    ids of calls answered with success."""
    cancels = operation == "CancelPayment"
    payments = await pool.fetch(RECEIPTS, partner_name)
    done = {r["receipt_no"] for r in payments if not cancels or r["state"] == "cancelled"}
    repeat_key = "alreadyCancelled" if cancels else "replayed"
    rows = await pool.fetch(CLAIMS, partner_name, operation, repeat_key)
    ok = [r for r in rows if r["outcome"] == "ok"]
    claimed = Counter(r["receipt"] for r in ok if not r["repeated"])
    per_call = Counter(r["request_id"] for r in rows)
    answered = {r["request_id"] for r in ok}
    return AuditTally(
        records=len(ok),
        claims=sum(claimed.values()),
        without_record=len(done - set(claimed)),
        without_payment=sum(1 for r in ok if r["receipt"] not in done),
        doubled=sum(n - 1 for n in claimed.values()) + sum(n - 1 for n in per_call.values()),
        lost=sum(1 for rid in acknowledged if rid not in answered),
        unlinked=sum(1 for r in rows if r["unlinked"]),
    )


async def all_linked(pool: asyncpg.Pool, *, within_s: float = 15.0) -> None:
    """Wait until no committed record waits for its chain link any more."""
    deadline = time.monotonic() + within_s
    while await pool.fetchval("SELECT count(*) FROM audit_unlinked"):
        if time.monotonic() > deadline:
            raise TimeoutError("audit records were left unlinked")
        await asyncio.sleep(0.05)


async def chain_verified(pool: asyncpg.Pool) -> VerifyResult:
    """The whole hash chain of this pair, recomputed (as ``ssogw audit verify``)."""
    return await AuditQueries(pool_provider=lambda: pool).verify(from_=None, to=None)
