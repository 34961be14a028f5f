"""Counter scenarios shared by the protocol tests: the same people, requests and outcomes.

Each scenario says who the person is (relative to the current month), what is asked (an
inquiry or a confirm) and what must come back: ``ok`` or an error code, and fields under
protocol-neutral names (those of ``app.counter.records``; months as YYYY-MM, money in satang).
Months are relative to the session's business clock (tests/support/clock.py). A protocol test
arranges the person with ``arrange``, sends the request its own way, turns the
answer into an ``Outcome`` and calls ``check``; REST and SOAP run the same list, so both
protocols must give the same results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from app.domain.months import Month
from tests.support.clock import current_month as current_month  # re-exported
from tests.support.people import add_person, new_national_id
from tests.support.people import wait_replayed as wait_replayed  # re-exported

INVALID_CHECKSUM_ID = "3100600445636"  # 3100600445635 with its check digit changed


@dataclass(frozen=True)
class Person:
    """An insured person to create; months are offsets from the current month (0 = now)."""

    section: int
    option: int | None = None
    coverage_from: int = -24
    paid: tuple[int, ...] = ()
    status: str = "active"


@dataclass(frozen=True)
class Scenario:
    """One request and its expected outcome."""

    name: str
    operation: Literal["inquire", "confirm"]
    person: Person | None  # None: nobody has the ID
    expect_code: str  # "ok" or the error code
    section: int | None = None  # the section sent (a confirm always sends one)
    months: tuple[int, ...] = ()  # confirm: the months paid, as offsets
    amount_satang: int = 0  # confirm: the amount sent
    national_id: str | None = None  # a fixed ID (e.g. a malformed one) instead of a fresh one
    # Expected fields; "months"/"default_months" hold offsets, turned into YYYY-MM by arrange().
    expect: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Arranged:
    """A scenario made concrete for this run."""

    scenario: Scenario
    national_id: str
    months: tuple[str, ...]  # the months to send, YYYY-MM
    expect: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """What a protocol answered, in neutral terms."""

    code: str
    fields: Mapping[str, Any]


S39_PAID_TO_LAST_MONTH = Person(39, coverage_from=-40, paid=tuple(range(-13, -1)))
S39_NEVER_PAID = Person(39, coverage_from=-24)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "inquiry, Section 39 with last month and this month open",
        "inquire",
        S39_PAID_TO_LAST_MONTH,
        "ok",
        section=39,
        expect={
            "section": 39,
            "status": "active",
            "option": None,
            "months": (-1, 0),
            "default_months": (-1, 0),
            "default_total_satang": 86_400,
        },
    ),
    Scenario(
        "confirm, Section 39 pays last month and this month",
        "confirm",
        S39_PAID_TO_LAST_MONTH,
        "ok",
        section=39,
        months=(-1, 0),
        amount_satang=86_400,
        expect={"section": 39, "months": (-1, 0), "amount_satang": 86_400},
    ),
    Scenario(
        "inquiry, Section 40 option 2 offers this month and twelve ahead",
        "inquire",
        Person(40, option=2),
        "ok",
        expect={
            "section": 40,
            "status": "active",
            "option": 2,
            "months": tuple(range(13)),
            "default_months": (0,),
            "default_total_satang": 10_000,
        },
    ),
    Scenario(
        "confirm, Section 40 pays three months at once",
        "confirm",
        Person(40, option=2),
        "ok",
        section=40,
        months=(0, 1, 2),
        amount_satang=30_000,
        expect={"section": 40, "months": (0, 1, 2), "amount_satang": 30_000},
    ),
    Scenario(
        "confirm, a month already paid",
        "confirm",
        Person(40, option=1, paid=(0,)),
        "client.already_paid",
        section=40,
        months=(0,),
        amount_satang=7_000,
    ),
    Scenario(
        "confirm, the amount differs from the amount due",
        "confirm",
        Person(40, option=1),
        "client.amount_mismatch",
        section=40,
        months=(0,),
        amount_satang=8_000,
    ),
    Scenario(
        "confirm, a past Section 40 month cannot be paid",
        "confirm",
        Person(40, option=1),
        "client.month_not_payable",
        section=40,
        months=(-1,),
        amount_satang=7_000,
    ),
    Scenario(
        "confirm, next month without this month skips a month",
        "confirm",
        Person(40, option=1),
        "client.months_not_contiguous",
        section=40,
        months=(1,),
        amount_satang=7_000,
    ),
    Scenario(
        "inquiry, a Section 39 member who stopped paying is terminated",
        "inquire",
        S39_NEVER_PAID,
        "ok",
        expect={"section": 39, "status": "terminated", "months": ()},
    ),
    Scenario(
        "confirm, a terminated member cannot pay",
        "confirm",
        S39_NEVER_PAID,
        "client.member_terminated",
        section=39,
        months=(0,),
        amount_satang=43_200,
    ),
    Scenario("inquiry, nobody has this ID", "inquire", None, "client.person_not_found"),
    Scenario(
        "confirm, nobody has this ID",
        "confirm",
        None,
        "client.person_not_found",
        section=40,
        months=(0,),
        amount_satang=7_000,
    ),
    Scenario(
        "inquiry, the check digit is wrong",
        "inquire",
        None,
        "client.invalid_national_id",
        national_id=INVALID_CHECKSUM_ID,
    ),
    Scenario(
        "confirm, the check digit is wrong",
        "confirm",
        None,
        "client.invalid_national_id",
        section=39,
        months=(0,),
        amount_satang=43_200,
        national_id=INVALID_CHECKSUM_ID,
    ),
)


def _months(offsets: tuple[int, ...], current: Month) -> tuple[str, ...]:
    return tuple(str(current.plus(offset)) for offset in offsets)


async def arrange(
    conn: asyncpg.Connection, scenario: Scenario, *, replicas: Sequence[asyncpg.Pool] = ()
) -> Arranged:
    """Create the scenario's person (on the primary), wait until ``replicas`` have it, and
    make its months concrete."""
    current = current_month()
    nid = scenario.national_id or new_national_id()
    person = scenario.person
    if person is not None:
        await add_person(
            conn,
            national_id=nid,
            section=person.section,
            option=person.option,
            coverage_start=current.plus(person.coverage_from),
            paid=[current.plus(offset) for offset in person.paid],
            status=person.status,
        )
        await wait_replayed(conn, replicas)
    expect = dict(scenario.expect)
    for key in ("months", "default_months"):
        if key in expect:
            expect[key] = _months(expect[key], current)
    return Arranged(scenario, nid, _months(scenario.months, current), expect)


def check(arranged: Arranged, outcome: Outcome) -> None:
    """Assert that ``outcome`` is what the scenario expects."""
    name = arranged.scenario.name
    assert outcome.code == arranged.scenario.expect_code, (name, outcome)
    for key, value in arranged.expect.items():
        got = outcome.fields.get(key)
        if isinstance(value, tuple):
            got = tuple(got or ())
        assert got == value, (name, key, got, value)
