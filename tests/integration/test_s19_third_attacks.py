"""Third attack on the session 19 fixes (1162c0a, 668dbc1): the extract line that would move a
person to the other section (refused now), and the persons of a listing recorded 500 at a time
(``commit_together``). (Its third finding, a Location of dots that a WHATWG client resolves as
a dot segment even as ``%2E``, is held in test_money_s19_fix_attacks.py: such ids are refused.)

Each test fails on the code it was written against, for the reason its docstring names.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, time

import httpx
import pytest

from app.cli.session import operator
from app.domain.calendar import BANGKOK
from app.insured.extract_file import ExtractHeader, PersonRecord, write_extract
from app.insured.import_repository import PersonImportRepository
from app.insured.person_import import PersonImportService
from app.main import Gateway, build_gateway, start_gateway, stop_gateway
from app.settings import Settings
from app.settlement.bank_file import SettlementLine
from tests.conftest import PartnerCredentials
from tests.integration.test_settlement_import import DAY, MAY, bank_bytes, business_day
from tests.integration.test_settlement_import import service as settlement_service
from tests.support.clock import PinnedClock
from tests.support.people import add_person, new_national_id
from tests.support.rest_api import bearer

pytestmark = pytest.mark.db


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=live_url, headers=bearer(client_token), timeout=30
    ) as client:
        yield client


def _extract(clock: PinnedClock, section: int, records: list[PersonRecord]) -> bytes:
    return b"".join(write_extract(ExtractHeader(section, clock.today(), "SSO-MF"), records))


def _imports(gateway: Gateway) -> PersonImportService:
    return PersonImportService(store=PersonImportRepository(lambda: gateway.db.primary))


def _s39(nid: str, status: str = "active") -> PersonRecord:
    return PersonRecord(0, nid, "นาง", "สมหญิง", "ใจดี", 39, status, date(2019, 4, 1),
                        period_of_payment="monthly", return_code="00")  # fmt: skip


# --- a registration committed while the import's upsert runs ----------------------------------
async def test_a_line_the_upsert_skips_for_its_section_is_refused_not_counted_unchanged(
    gateway: Gateway, clock: PinnedClock
) -> None:
    """1162c0a refuses a line for a person held under the other section (``_MOVES``, a
    Rejection on ``section``) and guards the upsert (``WHERE p.section = EXCLUDED.section``)
    against a change of section registered after ``_MOVES`` read the persons. But a line the
    guard skips is simply not returned by the upsert, and ``unchanged`` is computed as
    ``staged - inserted - updated``: the line is reported *unchanged* (the gateway already
    holds what it says), with no rejection, though it was not applied and the gateway holds
    the person under the other section. The window is the whole upsert statement (minutes on
    a full extract).

    Here a Section 40 registration of a person new to the gateway is in flight (its row
    inserted, not yet committed) while the Section 39 extract listing the same person is
    imported: ``_MOVES`` does not see the row, the upsert's insert waits for it, then finds
    the conflict and skips the row under the guard. The result says inserted 0, updated 0,
    unchanged 1, rejected 0."""
    nid = new_national_id()
    data = _extract(clock, 39, [_s39(nid)])
    conn = await gateway.db.primary.acquire()
    tx = conn.transaction()
    committed = False
    try:
        await tx.start()
        await add_person(conn, section=40, option=2, coverage_start=clock.month(),
                         national_id=nid)  # fmt: skip
        importing = _imports(gateway).import_extract(io.BytesIO(data), section=39)
        task = asyncio.ensure_future(importing)
        waiting = 0
        for _ in range(1000):
            await asyncio.sleep(0.02)
            if task.done():
                break
            waiting = await gateway.db.primary.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE '%INSERT INTO insured_persons AS p%'"
            )
            if waiting:
                break
        assert waiting, "the import's upsert did not wait for the registration's row"
        await tx.commit()
        committed = True
    finally:
        if not committed:
            await tx.rollback()
        await gateway.db.primary.release(conn)
    result = await task
    held = await gateway.db.primary.fetchval(
        "SELECT section FROM insured_persons WHERE national_id = $1", nid
    )
    assert held == 40
    counts = (result.inserted, result.updated, result.unchanged, result.rejected)
    assert [r.field for r in result.rejections] == ["section"] and counts == (0, 0, 0, 1), (
        f"the line was not applied (the person is held under Section {held}), yet the import"
        f" answers inserted/updated/unchanged/rejected = {counts},"
        f" rejections {[(r.field, r.reason) for r in result.rejections]}"
    )


# --- commit_together's groups against a writer configured smaller ------------------------------
async def test_a_settlement_page_is_recorded_with_a_smaller_audit_batch_setting(
    gateway: Gateway, settings: Settings, clock: PinnedClock, partner: PartnerCredentials
) -> None:
    """``commit_together`` sends a listing's records ``TOGETHER`` (500) at a time, "never past
    the writer's queue (20 batches of SSOGW_AUDIT_MAX_BATCH, 500)": the constant assumes the
    default. ``SSOGW_AUDIT_MAX_BATCH`` is an operator's setting (docs/operations.md, audit
    group commit; unbounded), and the writer's queue is 20 batches of it: an instance started
    with ``SSOGW_AUDIT_MAX_BATCH=20`` queues 400 records at most, so a group of 500 is refused
    (``AuditUnavailable``, reason ``queue_full``) with the writer idle. Every page of more than
    400 persons (a settlement report, ``ssogw settlement report --limit 1000``; the API offers
    10,000) then fails, every time. The group should follow the writer's capacity."""
    day = await business_day(gateway, partner)
    at = datetime.combine(DAY, time(10, 31), tzinfo=BANGKOK)
    many = [SettlementLine(0, f"TX-S20-{i:05d}", f"8{i:012d}", 40, (MAY,), 7_000, at)
            for i in range(1_000)]  # fmt: skip
    stored = await settlement_service(gateway).import_file(
        io.BytesIO(bank_bytes(day, many)), partner=day.partner, business_date=DAY
    )
    instance = f"{settings.instance_id}-s19t{uuid.uuid4().hex[:6]}"
    small = settings.model_copy(update={"audit_max_batch": 20, "instance_id": instance})
    other = build_gateway(small, clock=clock)
    await start_gateway(other, background=False)
    try:
        report = await other.settlement_files.report(
            stored.record.id, limit=1_000, requester=operator()
        )
    finally:
        await stop_gateway(other)
    assert len(report.lines) >= 1_000
