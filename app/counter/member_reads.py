"""The inquiry's member reads, several in one statement: one round trip for the calls waiting.

Every round trip to PostgreSQL costs the gateway a socket write that wakes the server (the
largest single item of an inquiry's CPU under load: bench/RESULTS.md) and costs the server a
statement of its own. So the inquiries in progress share their reads: at most ``IN_FLIGHT``
statements are out at once, and the reads that arrive meanwhile go together in the next
(``unnest`` of the national IDs, the member query joined laterally to each). An idle gateway
sends a read at once, alone: nothing waits for company.

A statement that does not come back (a stalled standby) holds up only the calls in it: after
``STALL_S`` without an answer one more statement may go out, which the router may send
elsewhere. A failed batch fails each of its calls with a copy of the error of its own.

A batch is routed as one read (``ReplicaRouter.run_read``): to a fresh standby that has
replayed the newest write any of its calls must see (the largest ``min_lsn`` of the batch),
else to the primary, and the standby's replay position comes back with the rows, so a
standby found behind is not believed for any of them. Each call gets its own row, in order.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import asyncpg

from app.db.replica_router import ReadInfo, ReplicaRouter, parse_lsn

#: Statements out at once; more reads wait for one of them and go with the next.
IN_FLIGHT: Final = 2
#: When no statement has come back for this long (a stalled standby the probe has not yet
#: marked down), one more may go out, up to ``MAX_IN_FLIGHT``: the router may send it
#: elsewhere, so a stuck read holds up only the calls in its own statement.
STALL_S: Final = 0.2
MAX_IN_FLIGHT: Final = 8
#: National IDs in one statement at most.
MAX_BATCH: Final = 64


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
        member_sql: str,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``member_sql``: the member query with ``$1`` the national ID in its WHERE clause
        (``p.national_id = $1``) and ``$2`` the first month of history."""
        clause = "WHERE p.national_id = $1"
        if member_sql.count(clause) != 1:
            raise ValueError(f"the member query must say {clause!r} once")
        laterally = member_sql.replace(clause, "WHERE p.national_id = b.national_id")
        self._sql = f"""
SELECT m.*,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END AS replay_lsn
  FROM unnest($1::text[]) WITH ORDINALITY AS b(national_id, i)
  LEFT JOIN LATERAL ({laterally}) AS m ON true
 ORDER BY b.i
"""
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

        async def fetch(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            self.statements += 1
            rows: list[asyncpg.Record] = await conn.fetch(self._sql, national_ids, batch[0].since)
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
