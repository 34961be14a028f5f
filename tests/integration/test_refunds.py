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
from app.cli.session import operator
from app.domain.months import Month
from app.errors import InvalidInput
from app.main import Gateway
from app.refunds.service import PersonRefund
from app.settings import Settings
from tests.support.people import add_person, end_membership

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


async def listing(gw: Gateway, first: Month, last: Month, ids: set[str]) -> list[PersonRefund]:
    owed = gw.refunds.refunds(first, last, requester=operator())
    return [p async for p in owed if p.national_id in ids]


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
    assert list(rows[0])[-2:] == ["month_th", "reason"]
    assert {r["reason"] for r in rows} == {"rate_cut"}

    assert await asyncio.to_thread(cli.main, [*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    mine = {r["nationalId"]: r for r in document["refunds"] if r["nationalId"] in people.values()}
    assert mine[people["s40"]]["refund"] == "56.00"
    assert mine[people["s39"]]["months"] == [
        {"month": "2041-03", "option": None, "paid": "432.00", "due": "235.00",
         "refund": "197.00", "reason": "rate_cut"}]  # fmt: skip
    assert mine[people["s39"]]["name"] == "นายประเสริฐ รุ่งเรือง"


async def test_months_paid_after_cover_ended_are_listed_with_their_reason(
    gateway: Gateway, settings: Settings,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A month paid after its membership ended is owed in full (due 0), as ``cover_ended``, in
    every format of the listing; a rate cut's months stay ``rate_cut``."""
    first, ended = Month(2043, 1), Month(2043, 3)
    async with gateway.db.primary.acquire() as conn:
        nid = await add_person(conn, section=39, coverage_start=first,
                               paid=list(Month.range(first, Month(2043, 4))))  # fmt: skip
        await end_membership(conn, nid, ended)
    (refund,) = await listing(gateway, first, Month(2043, 12), {nid})
    assert [(m.month, m.paid_satang, m.due_satang, m.refund_satang, m.reason)
            for m in refund.months] == [
        (Month(2043, 3), 43_200, 0, 43_200, "cover_ended"),
        (Month(2043, 4), 43_200, 0, 43_200, "cover_ended"),
    ]  # fmt: skip

    monkeypatch.setenv("SSOGW_PRIMARY_DSN", settings.primary_dsn or "")
    argv = ["refunds", "list", "--from", "2043-01", "--to", "2043-04"]
    assert await asyncio.to_thread(cli.main, [*argv, "--csv"]) == 0
    rows = [r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))
            if r["national_id"] == nid]  # fmt: skip
    assert [(r["month"], r["paid"], r["due"], r["refund"], r["reason"]) for r in rows] == [
        ("2043-03", "432.00", "0.00", "432.00", "cover_ended"),
        ("2043-04", "432.00", "0.00", "432.00", "cover_ended"),
    ]
    assert await asyncio.to_thread(cli.main, [*argv, "--json"]) == 0
    (mine,) = [r for r in json.loads(capsys.readouterr().out)["refunds"] if r["nationalId"] == nid]
    assert {m["reason"] for m in mine["months"]} == {"cover_ended"} and mine["refund"] == "864.00"
    assert await asyncio.to_thread(cli.main, argv) == 0
    (line,) = [text for text in capsys.readouterr().out.splitlines() if text.startswith(nid)]
    assert "2043-03 cover_ended, 2043-04 cover_ended" in line
