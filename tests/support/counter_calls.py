"""The counter service called directly, as the SOAP and REST adapters call it: callers,
confirm requests at the session's business time, fresh Section 40 members, a person's lock held
by another session (and a statement seen waiting for it), audit rows."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, time, timedelta
from typing import Any, TypeVar

import asyncpg

from app.admission.records import Caller, Protocol
from app.counter.records import ConfirmRequest, CounterInfo
from app.domain.calendar import settlement_day
from app.domain.months import Month
from app.main import Gateway
from tests.support.clock import business_clock
from tests.support.people import add_person
from tests.support.refusals import recorded
from tests.support.rest_api import replicas


def today() -> Month:
    return business_clock().month()


def caller(request_id: str | None = None, ip: str = "127.0.0.1") -> Caller:
    return Caller(Protocol.SOAP, ip, request_id or uuid.uuid4().hex, terminal="T-01")


def confirm_request(
    nid: str,
    months: list[str],
    amount: int,
    *,
    section: int = 40,
    txn: str | None = None,
    savings: int = 0,
) -> ConfirmRequest:
    now = business_clock()()
    return ConfirmRequest(
        partner_txn_id=txn or uuid.uuid4().hex[:20],
        national_id=nid,
        section=section,
        months=tuple(months),
        amount_satang=amount,
        savings_satang=savings,
        business_date=settlement_day(now),
        paid_at=now,
        counter=CounterInfo(store_id="S-0001", terminal_id="T-01", shift="1", operator_id="op7"),
    )


async def s40_person(gw: Gateway, option: int = 1) -> str:
    async with gw.db.primary.acquire() as conn:
        return await add_person(
            conn,
            section=40,
            option=option,
            coverage_start=today().minus(24),
            replicas=replicas(gw),
        )


@asynccontextmanager
async def person_locked(
    pool: asyncpg.Pool, national_id: str
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The person's row locked by another session's open transaction, as a concurrent confirm
    holds it; yields the rollback that lets go (leaving the block lets go in any case)."""
    holder = await pool.acquire()
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute(
            "SELECT 1 FROM insured_persons WHERE national_id = $1 FOR UPDATE", national_id
        )
        yield held.rollback
    finally:
        await pool.release(holder)  # an open transaction is rolled back on release


T = TypeVar("T")


async def paid_while_queued(
    gw: Gateway, national_id: str, month: Month, read: Callable[[], Awaitable[T]]
) -> T:
    """What ``read`` returns, started while another session holds the person's lock: once
    ``read`` waits behind it, that session pays ``month`` (Section 40, option 1) and commits."""
    holder = await gw.db.primary.acquire()
    try:
        held = holder.transaction()
        await held.start()
        await holder.execute(
            "SELECT 1 FROM insured_persons WHERE national_id = $1 FOR UPDATE", national_id
        )
        reading = asyncio.ensure_future(read())
        await waiting_on_person_lock(gw)
        await holder.execute(
            "INSERT INTO paid_months (national_id, section, month, amount_satang, s40_option,"
            " paid_on) VALUES ($1, 40, $2, 7000, 1, $2)",
            national_id,
            month.first_day,
        )
        assert not reading.done(), "the read did not wait for the lock"
        await held.commit()
    finally:
        await gw.db.primary.release(holder)
    return await reading


async def waiting_on_person_lock(gw: Gateway) -> None:
    """Return once a statement on ``insured_persons`` waits for a lock (``person_locked``): a
    confirm's ``ssogw_confirm_read`` (its lock within), or a cancel's or another lock's."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND (query LIKE '%insured_persons%' OR query LIKE '%ssogw_confirm_read%')"
    )
    async with asyncio.timeout(10):
        while True:
            if await gw.db.primary.fetchval(query):
                return
            await asyncio.sleep(0.02)


async def audit_rows(gw: Gateway, request_id: str) -> list[dict[str, object]]:
    rows = await recorded(gw, lambda: gw.db.primary.fetch(
        "SELECT operation, outcome, national_id, name_returned, principal_name"
        " FROM audit_records WHERE request_id = $1",
        request_id,
    ))  # fmt: skip
    return [dict(r) for r in rows]


async def settlement_round_trip(
    gateway: Gateway, *, partner: str, business_date: date, now: bool = False
) -> tuple[Any, bytes, Any]:
    """The partner's settlement CSV of the day exported and imported back: (the export's
    summary, its bytes, the import's report). Taken the morning after the day, once it has
    closed (``app.settlement.service``); ``now``: at the clock's time instead."""
    if not now:
        with business_clock().at(time(9, 0), on=business_date + timedelta(days=1)):
            return await settlement_round_trip(
                gateway, partner=partner, business_date=business_date, now=True
            )
    export = io.BytesIO()
    summary = await gateway.settlement_files.export(
        export.write, partner=partner, business_date=business_date, file_format="csv"
    )
    report = await gateway.settlement_files.import_file(
        io.BytesIO(export.getvalue()), partner=partner, business_date=business_date,
        file_format="csv",
    )  # fmt: skip
    return summary, export.getvalue(), report
