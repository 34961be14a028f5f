"""Test data written straight to the primary: insured persons with a chosen payment history."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import date

import asyncpg

from app.domain.months import Month
from app.domain.national_id import generate_national_id

_rng = random.Random()


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
) -> str:
    """Insert one insured person with ``paid`` months already paid; returns the ID."""
    nid = national_id or new_national_id()
    if section == 40 and option is None:
        option = 1
    await conn.execute(
        "INSERT INTO insured_persons (national_id, title, first_name, last_name, section,"
        " status, effective_date, s40_option) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        nid,
        title,
        first_name,
        last_name,
        section,
        status,
        coverage_start.first_day,
        option if section == 40 else None,
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
    return nid
