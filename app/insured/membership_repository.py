"""A person's memberships in SQL: registration and moves between sections, status events, and
the memberships that ended before the latest one.

``MembershipTx`` implements ``app.insured.records.MembershipTransaction`` on one primary
transaction; the person's row is locked first, so a registration and a change of status for one
person are serialised. ``insured_persons`` holds the latest membership; a registration over an
ended one copies it into ``closed_memberships`` first (migration 0014).
"""

from __future__ import annotations

from datetime import date
from typing import Final

import asyncpg

from app.audit.records import AuditRecord
from app.audit.unlinked import add_unlinked
from app.domain.months import Month
from app.domain.standing import Earlier, Standing
from app.errors import AlreadyExists
from app.insured.records import ClosedMembership, InsuredPerson, NewInsured, StatusEvent

PERSON_COLUMNS: Final = (
    "national_id, title, first_name, last_name, section, status, status_reason, ended_month,"
    " effective_date, s40_option, option_changed_on, payment_method, period_of_payment,"
    " return_code, birth_date, last_paid_on, last_paid_satang, created_at, updated_at,"
    " s33_months, s33_employment_ended_on, s39_applied_on, s39_eligibility, rules_from"
)
CLOSED_SQL: Final = """
SELECT national_id, section, s40_option, coverage_start, ended_month, end_reason, s33_months,
       s33_employment_ended_on, s39_applied_on, s39_eligibility, closed_on, closed_by
  FROM closed_memberships
 WHERE national_id = $1
 ORDER BY ended_month DESC, id DESC
"""
EVENTS_SQL: Final = """
SELECT national_id, section, kind, status, ended_month, rules_from, reason, recorded_on,
       recorded_by, operator, created_at
  FROM membership_events
 WHERE national_id = $1
 ORDER BY id DESC
 LIMIT $2
"""
# The latest months of Section 39 paid before $2 (at all, and on time: by the 15th of the next
# month, as app.domain.calendar.s39_due_date), for each national ID of $1: two probes backwards
# from where the window's months begin, which date an ending older than the window
# (app.domain.standing).
EARLIER_SQL: Final = """
SELECT n.national_id,
       (SELECT max(m.month) FROM paid_months m
         WHERE m.national_id = n.national_id AND m.section = 39 AND m.month < $2)
           AS last_paid_before,
       (SELECT m.month FROM paid_months m
         WHERE m.national_id = n.national_id AND m.section = 39 AND m.month < $2
           AND m.paid_on <= (m.month + interval '1 month 14 days')::date
         ORDER BY m.month DESC LIMIT 1) AS last_on_time_before
  FROM unnest($1::text[]) AS n(national_id)
"""
# The new membership's fields; the person's name comes with the registration too.
_NEW_VALUES: Final = (
    "title, first_name, last_name, section, s40_option, effective_date, birth_date,"
    " payment_method, period_of_payment, return_code, s33_months, s33_employment_ended_on,"
    " s39_applied_on, s39_eligibility"
)


def month_of(day: date | None) -> Month | None:
    """The month of a first-of-month ``date`` column (None stays None)."""
    return Month(day.year, day.month) if day is not None else None


def person_of(row: asyncpg.Record) -> InsuredPerson:
    """An ``InsuredPerson`` from a row of ``PERSON_COLUMNS``."""
    return InsuredPerson(
        national_id=row["national_id"],
        title=row["title"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        section=row["section"],
        status=row["status"],
        status_reason=row["status_reason"],
        ended_month=month_of(row["ended_month"]),
        effective_date=row["effective_date"],
        option=row["s40_option"],
        option_changed_on=row["option_changed_on"],
        payment_method=row["payment_method"],
        period_of_payment=row["period_of_payment"],
        return_code=row["return_code"],
        birth_date=row["birth_date"],
        last_paid_on=row["last_paid_on"],
        last_paid_satang=row["last_paid_satang"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        s33_months=row["s33_months"],
        s33_employment_ended_on=row["s33_employment_ended_on"],
        s39_applied_on=row["s39_applied_on"],
        s39_eligibility=row["s39_eligibility"],
        rules_from=month_of(row["rules_from"]),
    )


def earlier_of(row: asyncpg.Record) -> Earlier:
    """The months paid before the window, from a row of ``EARLIER_SQL``."""
    return Earlier(month_of(row["last_paid_before"]), month_of(row["last_on_time_before"]))


def judged_by_rules(person: InsuredPerson) -> bool:
    """Whether the Section 39 rules judge ``person``'s status (recorded active, Section 39)."""
    return person.section == 39 and person.status == "active"


def closed_membership_of(row: asyncpg.Record) -> ClosedMembership:
    """A ``ClosedMembership`` from a row of ``CLOSED_SQL``."""
    ended = month_of(row["ended_month"])
    assert ended is not None  # NOT NULL
    return ClosedMembership(
        national_id=row["national_id"],
        section=row["section"],
        option=row["s40_option"],
        coverage_start=row["coverage_start"],
        ended_month=ended,
        end_reason=row["end_reason"],
        s33_months=row["s33_months"],
        s33_employment_ended_on=row["s33_employment_ended_on"],
        s39_applied_on=row["s39_applied_on"],
        s39_eligibility=row["s39_eligibility"],
        closed_on=row["closed_on"],
        closed_by=row["closed_by"],
    )


def status_event_of(row: asyncpg.Record) -> StatusEvent:
    """A ``StatusEvent`` from a row of ``EVENTS_SQL``."""
    return StatusEvent(
        national_id=row["national_id"],
        section=row["section"],
        kind=row["kind"],
        status=row["status"],
        ended_month=month_of(row["ended_month"]),
        rules_from=month_of(row["rules_from"]),
        reason=row["reason"],
        recorded_on=row["recorded_on"],
        recorded_by=row["recorded_by"],
        operator=row["operator"],
        created_at=row["created_at"],
    )


def _new_args(new: NewInsured) -> tuple[object, ...]:
    return (
        new.title, new.first_name, new.last_name, new.section, new.option, new.effective_date,
        new.birth_date, new.payment_method, new.period_of_payment, new.return_code,
        new.s33_months, new.s33_employment_ended_on, new.s39_applied_on, new.s39_eligibility,
    )  # fmt: skip


class MembershipTx:
    """One open primary transaction of a registration or a change of status."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def lock_person(self, national_id: str) -> InsuredPerson | None:
        row = await self._conn.fetchrow(
            f"SELECT {PERSON_COLUMNS} FROM insured_persons WHERE national_id = $1 FOR UPDATE",
            national_id,
        )
        return person_of(row) if row is not None else None

    async def paid_months(
        self, national_id: str, section: int, *, since: Month
    ) -> dict[Month, date]:
        rows = await self._conn.fetch(
            "SELECT month, paid_on FROM paid_months"
            " WHERE national_id = $1 AND section = $2 AND month >= $3",
            national_id,
            section,
            since.first_day,
        )
        return {Month(r["month"].year, r["month"].month): r["paid_on"] for r in rows}

    async def earlier_payments(self, national_id: str, *, before: Month) -> Earlier:
        row = await self._conn.fetchrow(EARLIER_SQL, [national_id], before.first_day)
        assert row is not None  # one row per ID given
        return earlier_of(row)

    async def last_s39_end(self, national_id: str) -> Month | None:
        return month_of(
            await self._conn.fetchval(
                "SELECT max(ended_month) FROM closed_memberships"
                " WHERE national_id = $1 AND section = 39",
                national_id,
            )
        )

    async def insert_person(self, new: NewInsured) -> InsuredPerson:
        try:
            row = await self._conn.fetchrow(
                f"INSERT INTO insured_persons (national_id, {_NEW_VALUES}) VALUES ($1, $2, $3,"
                f" $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING"
                f" {PERSON_COLUMNS}",
                new.national_id,
                *_new_args(new),
            )
        except asyncpg.UniqueViolationError as exc:  # registered at this moment by another call
            raise AlreadyExists(
                "An insured person with this national ID already exists.", field="nationalId"
            ) from exc
        assert row is not None
        return person_of(row)

    async def close_and_replace(self, closing: ClosedMembership, new: NewInsured) -> InsuredPerson:
        await self._conn.execute(
            "INSERT INTO closed_memberships (national_id, section, s40_option, coverage_start,"
            " ended_month, end_reason, s33_months, s33_employment_ended_on, s39_applied_on,"
            " s39_eligibility, closed_on, closed_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            closing.national_id, closing.section, closing.option, closing.coverage_start,
            closing.ended_month.first_day, closing.end_reason, closing.s33_months,
            closing.s33_employment_ended_on, closing.s39_applied_on, closing.s39_eligibility,
            closing.closed_on, closing.closed_by,
        )  # fmt: skip
        # The row takes the new membership: a fresh status, no option history of its own yet.
        row = await self._conn.fetchrow(
            f"UPDATE insured_persons SET ({_NEW_VALUES}, status, status_reason, ended_month,"
            " option_changed_on, rules_from, last_paid_on, last_paid_satang, updated_at)"
            " = ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
            " 'active', NULL, NULL, NULL, NULL, NULL, NULL, now())"
            f" WHERE national_id = $1 RETURNING {PERSON_COLUMNS}",
            new.national_id,
            *_new_args(new),
        )
        assert row is not None  # locked by the caller
        return person_of(row)

    async def record_status(
        self, national_id: str, *, standing: Standing, rules_from: Month | None
    ) -> InsuredPerson:
        row = await self._conn.fetchrow(
            "UPDATE insured_persons SET status = $2, status_reason = $3, ended_month = $4,"
            f" rules_from = $5, updated_at = now() WHERE national_id = $1 RETURNING"
            f" {PERSON_COLUMNS}",
            national_id,
            standing.status,
            standing.reason,
            None if standing.ended_month is None else standing.ended_month.first_day,
            None if rules_from is None else rules_from.first_day,
        )
        assert row is not None  # locked by the caller
        return person_of(row)

    async def add_event(self, event: StatusEvent) -> None:
        await self._conn.execute(
            "INSERT INTO membership_events (national_id, section, kind, status, ended_month,"
            " rules_from, reason, recorded_on, recorded_by, operator)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            event.national_id, event.section, event.kind, event.status,
            None if event.ended_month is None else event.ended_month.first_day,
            None if event.rules_from is None else event.rules_from.first_day,
            event.reason, event.recorded_on, event.recorded_by, event.operator,
        )  # fmt: skip

    async def add_audit_record(self, record: AuditRecord) -> None:
        await add_unlinked(self._conn, record)
