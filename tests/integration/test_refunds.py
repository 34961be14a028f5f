"""`ssogw refunds list`: overpayments after a retroactive rate cut, from the paid months."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.cli import main as cli
from app.counter.ledger import PgLedger
from app.domain.months import Month
from app.errors import InvalidInput
from app.main import Gateway
from app.refunds.repository import RefundsRepository
from app.refunds.service import PersonRefund, RefundsService
from app.settings import Settings
from tests.support.people import add_person

pytestmark = pytest.mark.db

# Far enough ahead that no other test pays or prices these months.
MARCH, APRIL, MAY = Month(2041, 3), Month(2041, 4), Month(2041, 5)


@pytest.fixture
async def retroactive_cut(
    gateway: Gateway, owner_pool: asyncpg.Pool
) -> AsyncIterator[dict[str, str]]:
    """Three members who paid March-May 2041, then a cut for March-April entered afterwards."""
    async with gateway.db.primary.acquire() as conn:
        people = {
            "s40": await add_person(conn, section=40, option=1, coverage_start=Month(2040, 1),
                                    paid=[MARCH, APRIL, MAY], first_name="มาลี",
                                    last_name="ทองดี"),
            "s39": await add_person(conn, section=39, coverage_start=Month(2039, 1),
                                    paid=[MARCH, MAY], title="นาย", first_name="ประเสริฐ",
                                    last_name="รุ่งเรือง"),
            # paid at the cut rate already: owed nothing
            "at_cut": await add_person(conn, section=40, option=1,
                                       coverage_start=Month(2040, 1), paid=[MARCH],
                                       paid_amount_satang=4_200),
            "option3": await add_person(conn, section=40, option=3,
                                        coverage_start=Month(2040, 1), paid=[APRIL]),
        }  # fmt: skip
        ids = await conn.fetch(
            "INSERT INTO contribution_rates (section, s40_option, first_month, last_month,"
            " amount_satang, government_satang, note) VALUES"
            " (40, 1, '2041-03-01', '2041-04-01', 4200, 3000, 'test: retroactive cut'),"
            " (39, NULL, '2041-03-01', '2041-04-01', 23500, 0, 'test: retroactive cut')"
            " RETURNING id"
        )
    try:
        yield people
    finally:
        # The gateway never deletes a rate: the test's own lines go with the owner's rights.
        await owner_pool.execute(
            "DELETE FROM contribution_rates WHERE id = ANY($1::int[])", [r["id"] for r in ids]
        )


def service(gw: Gateway) -> RefundsService:
    ledger = PgLedger(primary=lambda: gw.db.primary, router=lambda: gw.db.router)
    return RefundsService(source=RefundsRepository(lambda: gw.db.primary), rates=ledger)


async def listing(gw: Gateway, first: Month, last: Month, ids: set[str]) -> list[PersonRefund]:
    return [p async for p in service(gw).refunds(first, last) if p.national_id in ids]


async def test_months_paid_above_the_new_rate_are_listed_per_person(
    gateway: Gateway, retroactive_cut: dict[str, str]
) -> None:
    people = retroactive_cut
    refunds = await listing(gateway, Month(2041, 1), Month(2041, 12), set(people.values()))
    by_id = {r.national_id: r for r in refunds}
    assert set(by_id) == {people["s40"], people["s39"]}
    s40 = by_id[people["s40"]]
    assert [(m.month, m.paid_satang, m.due_satang, m.refund_satang) for m in s40.months] == [
        (MARCH, 7_000, 4_200, 2_800), (APRIL, 7_000, 4_200, 2_800)]  # fmt: skip
    assert s40.refund_satang == 5_600 and s40.first_name == "มาลี"
    s39 = by_id[people["s39"]]
    assert [(m.month, m.refund_satang) for m in s39.months] == [(MARCH, 19_700)]
    assert s39.document()["refund"] == "197.00"

    april_only = await listing(gateway, APRIL, APRIL, set(people.values()))
    assert [(r.national_id, r.refund_satang) for r in april_only] == [(people["s40"], 2_800)]


async def test_no_cut_no_refund_and_a_backward_period_is_refused(gateway: Gateway) -> None:
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=40, option=2, coverage_start=Month(2040, 1),
                               paid=[Month(2042, 1)])  # fmt: skip
    assert await listing(gateway, Month(2042, 1), Month(2042, 1), {nid}) == []
    with pytest.raises(InvalidInput):
        await listing(gateway, Month(2042, 2), Month(2042, 1), {nid})


async def test_the_command_line_lists_refunds_as_csv_and_json(
    gateway: Gateway, retroactive_cut: dict[str, str], settings: Settings,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    people = retroactive_cut
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", settings.primary_dsn or "")
    argv = ["refunds", "list", "--from", "2041-03", "--to", "2041-05"]
    assert await asyncio.to_thread(cli.main, [*argv, "--csv"]) == 0
    rows = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))
            if r["national_id"] in people.values()]  # fmt: skip
    assert sorted(
        (r["national_id"], r["month"], r["paid"], r["due"], r["refund"]) for r in rows
    ) == sorted(
        [
            (people["s40"], "2041-03", "70.00", "42.00", "28.00"),
            (people["s40"], "2041-04", "70.00", "42.00", "28.00"),
            (people["s39"], "2041-03", "432.00", "235.00", "197.00"),
        ]
    )
    assert [r["national_id"] for r in rows] == sorted(r["national_id"] for r in rows)
    # For officers: the month in the Buddhist Era too, in the last column (2041 + 543).
    assert {r["month"]: r["month_th"] for r in rows} == {
        "2041-03": "มี.ค. 2584",
        "2041-04": "เม.ย. 2584",
    }
    assert list(rows[0])[-1] == "month_th"

    assert await asyncio.to_thread(cli.main, [*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    mine = {r["nationalId"]: r for r in document["refunds"] if r["nationalId"] in people.values()}
    assert mine[people["s40"]]["refund"] == "56.00"
    assert mine[people["s39"]]["months"] == [
        {"month": "2041-03", "option": None, "paid": "432.00", "due": "235.00",
         "refund": "197.00"}]  # fmt: skip
    assert mine[people["s39"]]["name"] == "นายประเสริฐ รุ่งเรือง"
