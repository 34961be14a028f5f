"""The published rate history as the migrations load it, priced through the real rate store.

Migration 0007 adds the cuts of May 2021 (Section 39, Jun-Aug 2021: 216 baht) and March 2022
(May-Jul 2022: Section 39 91 baht, Section 40 options 1/2/3 42/60/180 baht). Each window is
priced at its edges and just outside, by the rate book the counter reads, by the rate listing
over REST, and by the refunds listing that compares paid months with the table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from app.cli.session import operator
from app.db.migrator import load_migrations
from app.domain.months import Month
from app.domain.rates import RateTable
from app.main import Gateway
from app.rates.repository import RATE_DIGEST_SQL, fetch_rates
from tests.support.people import add_person
from tests.support.rest_api import rest

pytestmark = pytest.mark.db

S39_NORMAL, S40_NORMAL = 43_200, {1: 7_000, 2: 10_000, 3: 30_000}
S40_GOVERNMENT = {1: 3_000, 2: 5_000, 3: 15_000}


@pytest.fixture
async def api(live_url: str, client_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with rest(live_url, client_token) as client:
        yield client


@pytest.mark.parametrize(
    ("month", "amount"),
    [
        (Month(2021, 5), S39_NORMAL),  # the month before the Jun-Aug 2021 cut
        (Month(2021, 6), 21_600),
        (Month(2021, 7), 21_600),
        (Month(2021, 8), 21_600),
        (Month(2021, 9), 23_500),  # the Sep-Nov 2021 cut follows at once
        (Month(2021, 12), S39_NORMAL),
        (Month(2022, 4), S39_NORMAL),  # the month before the May-Jul 2022 cut
        (Month(2022, 5), 9_100),  # 1.9% of 4,800 = 91.20, stored as 91.00 (data, unconfirmed)
        (Month(2022, 6), 9_100),
        (Month(2022, 7), 9_100),
        (Month(2022, 8), S39_NORMAL),  # the month after
    ],
)
async def test_section_39_months_are_priced_from_the_table(
    gateway: Gateway, month: Month, amount: int
) -> None:
    table = await gateway.rates.table()
    assert table.amount(39, None, month) == amount
    assert table.government(39, None, month) == 0  # not confirmed; the table cannot say so


@pytest.mark.parametrize("option", [1, 2, 3])
@pytest.mark.parametrize(
    ("month", "cut"),
    [
        (Month(2022, 2), False),  # after the Aug 2021-Jan 2022 cut
        (Month(2022, 4), False),
        (Month(2022, 5), True),
        (Month(2022, 6), True),
        (Month(2022, 7), True),
        (Month(2022, 8), False),
    ],
)
async def test_section_40_may_to_july_2022_is_sixty_percent(
    gateway: Gateway, option: int, month: Month, cut: bool
) -> None:
    table = await gateway.rates.table()
    normal = S40_NORMAL[option]
    assert table.amount(40, option, month) == (normal * 60 // 100 if cut else normal)
    assert table.government(40, option, month) == S40_GOVERNMENT[option]


async def test_the_rate_listing_shows_the_added_lines(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/v1/rates")
    assert response.status_code == 200, response.text
    lines = [
        (r["section"], r["option"], r["firstMonth"], r["lastMonth"], r["amount"])
        for r in response.json()["rates"]
    ]
    for line in [
        (39, None, "2021-06", "2021-08", "216.00"),
        (39, None, "2022-05", "2022-07", "91.00"),
        (40, 1, "2022-05", "2022-07", "42.00"),
        (40, 2, "2022-05", "2022-07", "60.00"),
        (40, 3, "2022-05", "2022-07", "180.00"),
    ]:
        assert lines.count(line) == 1, line  # loaded once, whatever ran before


async def test_full_amounts_paid_in_the_cut_months_are_listed_as_refunds(
    gateway: Gateway,
) -> None:
    s39_months = [Month(2021, m) for m in (5, 6, 8, 9)] + [Month(2022, m) for m in (4, 5, 7, 8)]
    s40_months = [Month(2022, m) for m in (4, 5, 7, 8)]
    async with gateway.db.primary.acquire() as conn:
        s39 = await add_person(conn, section=39, coverage_start=Month(2020, 1), paid=s39_months)
        s40 = {
            option: await add_person(
                conn, section=40, option=option, coverage_start=Month(2020, 1), paid=s40_months
            )
            for option in (1, 2, 3)
        }
    mine = {s39, *s40.values()}
    refunds = {
        person.national_id: [
            (str(m.month), m.paid_satang, m.due_satang, m.refund_satang) for m in person.months
        ]
        async for person in gateway.refunds.refunds(
            Month(2021, 1), Month(2022, 12), requester=operator()
        )
        if person.national_id in mine
    }
    assert refunds[s39] == [
        ("2021-06", 43_200, 21_600, 21_600),
        ("2021-08", 43_200, 21_600, 21_600),
        ("2021-09", 43_200, 23_500, 19_700),
        ("2022-05", 43_200, 9_100, 34_100),
        ("2022-07", 43_200, 9_100, 34_100),
    ]
    for option, nid in s40.items():
        normal, due = S40_NORMAL[option], S40_NORMAL[option] * 60 // 100
        assert refunds[nid] == [
            ("2022-05", normal, due, normal - due),
            ("2022-07", normal, due, normal - due),
        ]


async def test_the_migration_keeps_a_line_already_entered(owner_pool: asyncpg.Pool) -> None:
    # Before 0007 these lines were entered through the rate administration; where one is,
    # running 0007 over it adds nothing (so an operator's decision is never overridden).
    # Migrations run as the owner, who alone may delete a rate.
    [migration] = [m for m in load_migrations() if m.version == 7]
    count = "SELECT count(*) FROM contribution_rates"
    async with owner_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            before = await conn.fetchval(count)
            await conn.execute(
                "DELETE FROM contribution_rates WHERE section = 40 AND s40_option = 2"
                " AND first_month = '2022-05-01'"
            )
            await conn.execute(migration.sql)
            assert await conn.fetchval(count) == before  # only the deleted line came back
        finally:
            await tx.rollback()


async def test_the_stores_fingerprint_of_the_rate_table_is_the_one_a_read_of_it_has(
    gateway: Gateway,
) -> None:
    """A confirm and an inquiry tell a stale table by the store's fingerprint of the rate
    lines (``RATE_DIGEST_SQL``) against the table's own (``lines_digest``): they must agree
    on the same lines, Section 39's (no option) and open-ended ones included, or every
    confirm would read the table again."""
    pool = gateway.db.primary
    table = RateTable(await fetch_rates(pool))
    assert any(r.option is None for r in table.rates)
    assert any(r.last_month is None for r in table.rates)
    assert any(r.last_month is not None for r in table.rates)
    assert await pool.fetchval(f"SELECT {RATE_DIGEST_SQL}") == table.digest
