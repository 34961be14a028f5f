"""Test data written straight to the primary: insured persons with a chosen payment history.

The gateway reads through the replica, so a test that writes here and then reads through the
gateway passes ``replicas``: the helper returns once every replica has replayed the write.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import asyncpg

from app.domain.months import Month
from app.domain.national_id import generate_national_id

_rng = random.Random()


@dataclass(frozen=True)
class SourceFields:
    """The source system's fields of a person beyond name, section, status and option (its
    extracts give them; docs/formats.md). None: the source has none."""

    return_code: str | None = None  # Section 39
    period_of_payment: str | None = None  # Section 39 and 40
    payment_method: str | None = None  # Section 40
    last_paid_on: date | None = None  # Section 40
    last_paid_satang: int | None = None  # Section 40


def new_national_id(first_digit: str | None = None) -> str:
    """A valid national ID not used before in this session (random, 10^11 space)."""
    return generate_national_id(_rng, first_digit=first_digit or str(_rng.randint(1, 8)))


async def add_person(
    conn: asyncpg.Connection,
    *,
    section: int,
    option: int | None = None,
    coverage_start: Month,
    paid: Iterable[Month] = (),
    status: str = "active",
    national_id: str | None = None,
    title: str = "นาง",
    first_name: str = "สมหญิง",
    last_name: str = "ใจดี",
    paid_amount_satang: int | None = None,
    effective_date: date | None = None,
    source: SourceFields | None = None,
    replicas: Sequence[asyncpg.Pool] = (),
) -> str:
    """Insert one insured person with ``paid`` months already paid; returns the ID. Cover
    starts on ``effective_date`` (by default the first day of ``coverage_start``); ``source``
    gives the source system's other fields. With ``replicas`` (``conn`` outside a transaction),
    wait until they have replayed it."""
    nid = national_id or new_national_id()
    if section == 40 and option is None:
        option = 1
    source = source or SourceFields()
    await conn.execute(
        "INSERT INTO insured_persons (national_id, title, first_name, last_name, section,"
        " status, effective_date, s40_option, return_code, period_of_payment, payment_method,"
        " last_paid_on, last_paid_satang)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        nid,
        title,
        first_name,
        last_name,
        section,
        status,
        effective_date or coverage_start.first_day,
        option if section == 40 else None,
        source.return_code,
        source.period_of_payment,
        source.payment_method,
        source.last_paid_on,
        source.last_paid_satang,
    )
    default = 43200 if section == 39 else {1: 7000, 2: 10000, 3: 30000}[option or 1]
    rows = [
        (
            nid,
            section,
            m.first_day,
            paid_amount_satang or default,
            option if section == 40 else None,
            date(m.year, m.month, 1),
        )
        for m in paid
    ]
    if rows:
        await conn.copy_records_to_table(
            "paid_months",
            records=rows,
            columns=("national_id", "section", "month", "amount_satang", "s40_option", "paid_on"),
        )
    if replicas:
        await wait_replayed(conn, replicas)
    return nid


async def end_membership(conn: asyncpg.Connection, nid: str, ended: Month) -> None:
    """End ``nid``'s membership at ``ended``, as a return to Section 33 recorded late leaves it
    (months paid after ``ended`` stay paid: the refund listing owes them as ``cover_ended``)."""
    await conn.execute(
        "UPDATE insured_persons SET status = 'terminated', status_reason ="
        " 'section33_employment', ended_month = $2 WHERE national_id = $1",
        nid, ended.first_day,
    )  # fmt: skip


async def wait_replayed(
    conn: asyncpg.Connection, replicas: Sequence[asyncpg.Pool], *, timeout_s: float = 10.0
) -> None:
    """Wait until every replica has replayed what the primary (``conn``) has written so far."""
    if conn.is_in_transaction():
        raise RuntimeError("a replica never sees an open transaction: commit before waiting")
    lsn = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + timeout_s
    for replica in replicas:
        while not await replica.fetchval(
            "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the replica did not replay the test data in time")
            await asyncio.sleep(0.01)


async def payment_business_day(
    conn: asyncpg.Connection | asyncpg.Pool, partner_txn_id: str
) -> date:
    """The business day a payment settles in (the gateway decided it; its cancel cut-off's day)."""
    day = await conn.fetchval(
        "SELECT business_date FROM payments WHERE partner_txn_id = $1", partner_txn_id
    )
    assert day is not None, f"no payment {partner_txn_id!r}"
    assert isinstance(day, date)
    return day
