"""The inquiry's member reads, several in one statement: one round trip for the calls waiting.

Every round trip to PostgreSQL costs the gateway a socket write that wakes the server (the
largest single item of an inquiry's CPU under load: bench/RESULTS.md) and costs the server a
statement of its own. So the inquiries in progress share their reads: at most ``IN_FLIGHT``
statements are out at once, and the reads that arrive meanwhile go together in the next
(``unnest`` of the national IDs, the member query joined laterally to each). An idle gateway
sends a read at once, alone: nothing waits for company. A statement a second also reads the
rate table's fingerprint, so that an instance whose table is not the store's reads it again
(``RateBook.table(digest=...)``): on every statement it cost the standby some 50 µs an inquiry
at half load (bench/RESULTS.md, session 16).

A statement that does not come back (a stalled standby) holds up only the calls in it: after
``STALL_S`` without an answer one more statement may go out, which the router may send
elsewhere. A failed batch fails each of its calls with a copy of the error of its own.

A batch is routed as one read (``ReplicaRouter.run_read``): to a fresh standby that has
replayed the newest write any of its calls must see (the largest ``min_lsn`` of the batch),
else to the primary, and the standby's replay position comes back with the rows, so a
standby found behind is not believed for any of them. Each call gets its own row, in order.

The member query itself (``MEMBER_SQL``) and the snapshot it reads are here too: a confirm
reads the same row on the primary, under the person's lock (``app.counter.ledger``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import asyncpg

from app.counter.ports import MemberSnapshot
from app.counter.records import EndedMembership
from app.db.replica_router import ReadInfo, ReplicaRouter, parse_lsn
from app.domain.months import Month
from app.domain.standing import TERMINATED, Earlier, reason_code
from app.rates.repository import RATE_DIGEST_SQL

#: The inquiry's one read: the person (with the source system's fields), their paid months since
#: $2, their pending option change (with two made before the first takes effect, the option
#: held before both), the memberships that ended before (newest first; one index
#: probe, nearly always empty). For a Section 39 member recorded active, the latest month paid
#: before $2 (at all, and on time: by the 15th of the next month, as
#: ``app.domain.calendar.s39_due_date``): two probes backwards from where the window's months
#: begin, which date an ending older than the window (``app.domain.standing``). Every read of
#: ``paid_months`` takes only the key's columns and ``paid_on``, which the key holds (migration
#: 0019): index-only scans, no page of the table (``test_member_reads.py`` holds it to that).
MEMBER_SQL = """
SELECT p.national_id, p.title, p.first_name, p.last_name, p.section, p.status,
       p.status_reason, p.ended_month, p.effective_date, p.s40_option, p.option_changed_on,
       p.return_code, p.period_of_payment, p.payment_method, p.last_paid_on, p.last_paid_satang,
       p.rules_from, p.s39_eligibility, cm.previous,
       COALESCE(pm.months, '{}') AS months, COALESCE(pm.paid_on, '{}') AS paid_on,
       oc.previous_option, oc.effective_month AS option_effective,
       p.section = 39 AND p.status = 'active' AS earlier_read,
       CASE WHEN p.section = 39 AND p.status = 'active' THEN (
            SELECT max(m.month) FROM paid_months m
             WHERE m.national_id = p.national_id AND m.section = 39 AND m.month < $2)
       END AS last_paid_before,
       CASE WHEN p.section = 39 AND p.status = 'active' THEN (
            SELECT m.month FROM paid_months m
             WHERE m.national_id = p.national_id AND m.section = 39 AND m.month < $2
               AND m.paid_on <= (m.month + interval '1 month 14 days')::date
             ORDER BY m.month DESC LIMIT 1)
       END AS last_on_time_before
  FROM insured_persons p
  LEFT JOIN LATERAL (  -- the window's months and their payment dates: one index range
        SELECT array_agg(m.month ORDER BY m.month) AS months,
               array_agg(m.paid_on ORDER BY m.month) AS paid_on
          FROM paid_months m
         WHERE m.national_id = p.national_id AND m.section = p.section AND m.month >= $2) pm
    ON true
  LEFT JOIN LATERAL (  -- of the changes taking effect last, the first: what it replaced held
        SELECT c.previous_option, c.effective_month FROM s40_option_changes c
         WHERE c.national_id = p.national_id AND p.option_changed_on IS NOT NULL
         ORDER BY c.effective_month DESC, c.changed_on, c.id LIMIT 1) oc ON true
  LEFT JOIN LATERAL (
        SELECT json_agg(json_build_array(c.section, c.coverage_start, c.ended_month,
                                         c.end_reason, c.s40_option)
                        ORDER BY c.ended_month DESC, c.id DESC) AS previous
          FROM closed_memberships c WHERE c.national_id = p.national_id) cm ON true
 WHERE p.national_id = $1
"""

#: Statements out at once; more reads wait for one of them and go with the next.
IN_FLIGHT: Final = 2
#: When no statement has come back for this long (a stalled standby the probe has not yet
#: marked down), one more may go out, up to ``MAX_IN_FLIGHT``: the router may send it
#: elsewhere, so a stuck read holds up only the calls in its own statement.
STALL_S: Final = 0.2
MAX_IN_FLIGHT: Final = 8
#: A statement this often brings the rate table's fingerprint (the others bring NULL).
DIGEST_EVERY_S: Final = 1.0
#: National IDs in one statement at most.
MAX_BATCH: Final = 64


def month_of(day: date) -> Month:
    """The month a date of the database falls in."""
    return Month.from_index(day.year * 12 + day.month - 1)


def ended_memberships(text: str | None) -> tuple[EndedMembership, ...]:
    """The memberships of ``MEMBER_SQL``'s ``previous`` column (JSON), newest first."""
    if not text:
        return ()
    return tuple(
        EndedMembership(
            section=section,
            coverage_start=date.fromisoformat(start),
            ended_month=ended[:7],
            end_reason=reason_code(TERMINATED, reason),  # a code, never an officer's words
            option=option,
        )
        for section, start, ended, reason, option in json.loads(text)
    )


def earlier_of(row: asyncpg.Record) -> Earlier | None:
    """The months paid before the window, when the row read them (else None)."""
    if not row["earlier_read"]:
        return None
    last, on_time = row["last_paid_before"], row["last_on_time_before"]
    return Earlier(month_of(last) if last else None, month_of(on_time) if on_time else None)


def member_snapshot(row: asyncpg.Record | None) -> MemberSnapshot | None:
    """The person of a ``MEMBER_SQL`` row (None when its columns are null: no such person)."""
    if row is None or row["national_id"] is None:
        return None
    return MemberSnapshot(
        national_id=row["national_id"],
        title=row["title"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        section=row["section"],
        status=row["status"],
        status_reason=row["status_reason"],
        ended_month=month_of(row["ended_month"]) if row["ended_month"] else None,
        coverage_start=month_of(row["effective_date"]),
        option=row["s40_option"],
        option_changed_on=row["option_changed_on"],
        previous_option=row["previous_option"],
        option_effective=month_of(row["option_effective"]) if row["option_effective"] else None,
        paid={month_of(m): d for m, d in zip(row["months"], row["paid_on"], strict=True)},
        effective_date=row["effective_date"],
        return_code=row["return_code"],
        period_of_payment=row["period_of_payment"],
        payment_method=row["payment_method"],
        last_paid_on=row["last_paid_on"],
        last_paid_satang=row["last_paid_satang"],
        rules_from=month_of(row["rules_from"]) if row["rules_from"] else None,
        s39_eligibility=row["s39_eligibility"],
        previous=ended_memberships(row["previous"]),
        earlier=earlier_of(row),
    )


@dataclass(slots=True)
class _Read:
    national_id: str
    since: date
    min_lsn: int | None
    answer: asyncio.Future[tuple[asyncpg.Record, ReadInfo]]


class MemberReads:
    """Reads members for the inquiry, batching the reads of concurrent calls."""

    def __init__(
        self,
        router: Callable[[], ReplicaRouter],
        member_sql: str = MEMBER_SQL,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``member_sql``: the member query with ``$1`` the national ID in its WHERE clause
        (``p.national_id = $1``) and ``$2`` the first month of history."""
        clause = "WHERE p.national_id = $1"
        if member_sql.count(clause) != 1:
            raise ValueError(f"the member query must say {clause!r} once")
        laterally = member_sql.replace(clause, "WHERE p.national_id = b.national_id")
        statement = f"""
SELECT m.*,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END AS replay_lsn,
       {{digest}} AS rate_digest
  FROM unnest($1::text[]) WITH ORDINALITY AS b(national_id, i)
  LEFT JOIN LATERAL ({laterally}) AS m ON true
 ORDER BY b.i
"""
        self._sql = statement.replace("{digest}", "NULL::text")
        self._sql_with_digest = statement.replace("{digest}", RATE_DIGEST_SQL)
        self._digest_at = float("-inf")  # when a statement last brought the fingerprint
        self._router = router
        self._monotonic = monotonic
        self._waiting: deque[_Read] = deque()
        self._in_flight = 0
        self._progress_at = monotonic()  # the last statement back, or the first out
        self._tasks: set[asyncio.Task[None]] = set()  # held until done
        self.statements = 0  # sent so far (for tests and the bench)

    async def read(
        self, national_id: str, *, since: date, min_lsn: int | None
    ) -> tuple[asyncpg.Record, ReadInfo]:
        """The member query's row for ``national_id`` (its columns null when there is none),
        and where it was read."""
        answer: asyncio.Future[tuple[asyncpg.Record, ReadInfo]]
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append(_Read(national_id, since, min_lsn, answer))
        if self._may_send():
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send(), name="member-reads")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await answer

    def _may_send(self) -> bool:
        now = self._monotonic()
        if self._in_flight == 0:
            self._progress_at = now
        elif self._in_flight >= IN_FLIGHT:
            if self._in_flight >= MAX_IN_FLIGHT or now - self._progress_at < STALL_S:
                return False
            self._progress_at = now  # one more per STALL_S while none comes back
        return True

    async def _send(self) -> None:
        try:
            while self._waiting:
                await self._one_batch(self._take())
        finally:
            self._in_flight -= 1

    def _take(self) -> list[_Read]:
        """The next batch: reads of the same history start, oldest first."""
        first = self._waiting.popleft()
        batch: list[_Read] = [first]
        others: list[_Read] = []
        while self._waiting and len(batch) < MAX_BATCH:
            read = self._waiting.popleft()
            (batch if read.since == first.since else others).append(read)
        self._waiting.extendleft(reversed(others))
        return batch

    async def _one_batch(self, batch: Sequence[_Read]) -> None:
        batch = [read for read in batch if not read.answer.done()]  # cancelled meanwhile
        if not batch:
            return
        floors = [read.min_lsn for read in batch if read.min_lsn is not None]
        national_ids = [read.national_id for read in batch]

        sql = self._sql
        if self._monotonic() - self._digest_at >= DIGEST_EVERY_S:
            sql, self._digest_at = self._sql_with_digest, self._monotonic()

        async def fetch(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            self.statements += 1
            rows: list[asyncpg.Record] = await conn.fetch(sql, national_ids, batch[0].since)
            return rows

        def replayed(rows: list[asyncpg.Record]) -> int | None:
            return parse_lsn(rows[0]["replay_lsn"])

        try:
            rows, info = await self._router().run_read(
                fetch, min_lsn=max(floors) if floors else None, replayed=replayed, reads=len(batch)
            )
            answers = list(zip(batch, rows, strict=True))
        except Exception as exc:
            self._progress_at = self._monotonic()
            for read in batch:
                if not read.answer.done():
                    read.answer.set_exception(_own_copy(exc))
            return
        except BaseException:  # cancelled (the loop is stopping): so are the calls
            for read in batch:
                read.answer.cancel()
            raise
        self._progress_at = self._monotonic()
        for read, row in answers:
            if not read.answer.done():
                read.answer.set_result((row, info))


def _own_copy(error: Exception) -> Exception:
    """``error`` for one caller of a failed batch: a copy of its own (same type, message,
    details and cause), so that the callers' tracebacks do not pile up on one object."""
    try:
        fresh = copy.copy(error)
    except Exception:
        return error
    fresh.__cause__ = error.__cause__
    fresh.__suppress_context__ = error.__suppress_context__
    return fresh
