"""Partner traffic for fault tests: counters sending inquiries and confirms over raw SOAP while
a test breaks something, each call recorded with its answer (or its transport error) and time.

Every loop is bounded: by a stop event, a maximum number of calls and a maximum duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from types import TracebackType

import httpx

from app.domain.calendar import DEFAULT_CUTOFF, bangkok_date, settlement_day
from app.domain.months import Month
from tests.reliability.soap_wire import (
    CT11,
    Partner,
    SoapAnswer,
    cancel_body,
    confirm_body,
    inquire_body,
    new_request_id,
    read_answer,
    signed,
)

NOT_SOAP = "not a SOAP answer"


def current_month() -> str:
    """The current contribution month in Bangkok, YYYY-MM."""
    return str(Month.of(bangkok_date(datetime.now(UTC))))


@dataclass(frozen=True)
class ConfirmSpec:
    """One payment a counter takes: sent again, it must be byte-for-byte the same request."""

    txn: str
    national_id: str
    month: str
    business_date: date
    paid_at: datetime

    @classmethod
    def new(
        cls, national_id: str, month: str, *, cutoff: time_of_day = DEFAULT_CUTOFF
    ) -> ConfirmSpec:
        """A new payment now, in the business day of a gateway with this ``cutoff``."""
        now = datetime.now(UTC).replace(microsecond=0)
        txn = f"REL-{uuid.uuid4().hex[:20]}"
        return cls(txn, national_id, month, settlement_day(now, cutoff), now)

    def body(self) -> str:
        return confirm_body(
            txn=self.txn,
            national_id=self.national_id,
            section=40,
            months=[self.month],
            amount="70.00",
            business_date=self.business_date,
            paid_at=self.paid_at,
        )


@dataclass
class Call:
    """One call and what became of it."""

    kind: str  # "inquire", "confirm" or "cancel"
    request_id: str
    started: float  # time.monotonic()
    seconds: float = 0.0
    answer: SoapAnswer | None = None
    error: str | None = None  # the transport error, or NOT_SOAP, when there was no SOAP answer
    spec: ConfirmSpec | None = None  # a confirm's, or the one a cancel takes back

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.answer.ok


async def send(client: httpx.AsyncClient, partner: Partner, body: str, *, kind: str) -> Call:
    """Send one call; a transport failure or an answer that is no SOAP message is recorded in
    ``error`` instead of raised."""
    call = Call(kind, new_request_id(), time.monotonic())
    try:
        response = await client.post(
            "/soap/v1",
            content=signed(partner, body),
            headers={"content-type": CT11, "x-request-id": call.request_id},
        )
        call.answer = read_answer(response)
    except httpx.TransportError as exc:
        call.error = type(exc).__name__
    except AssertionError as exc:  # an answer, but no proper SOAP message: kept as evidence
        call.error = f"{NOT_SOAP}: {exc}"
    call.seconds = time.monotonic() - call.started
    return call


async def confirm(client: httpx.AsyncClient, partner: Partner, spec: ConfirmSpec) -> Call:
    call = await send(client, partner, spec.body(), kind="confirm")
    call.spec = spec
    return call


async def cancel(client: httpx.AsyncClient, partner: Partner, spec: ConfirmSpec) -> Call:
    """Cancel the payment ``spec`` made (sent again, the very same request)."""
    call = await send(client, partner, cancel_body(spec.txn, "counter error"), kind="cancel")
    call.spec = spec
    return call


@dataclass
class Workload:
    """Inquirers cycling over ``inquire_ids`` and confirmers paying for each of ``confirm_ids``
    once, until stopped (or a bound is reached)."""

    client: httpx.AsyncClient
    partner: Partner
    inquire_ids: Sequence[str]
    confirm_ids: Sequence[str] = ()
    month: str = ""
    inquirers: int = 4
    confirmers: int = 0
    pause_s: float = 0.01
    max_calls: int = 20_000
    max_seconds: float = 120.0
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._unpaid = deque(self.confirm_ids)
        self._deadline = 0.0

    def _running(self) -> bool:
        return (
            not self._stop.is_set()
            and len(self.calls) < self.max_calls
            and time.monotonic() < self._deadline
        )

    async def _inquirer(self, offset: int) -> None:
        index = offset
        while self._running():
            nid = self.inquire_ids[index % len(self.inquire_ids)]
            index += 1
            self.calls.append(
                await send(self.client, self.partner, inquire_body(nid), kind="inquire")
            )
            await asyncio.sleep(self.pause_s)

    async def _confirmer(self) -> None:
        while self._running() and self._unpaid:
            spec = ConfirmSpec.new(self._unpaid.popleft(), self.month)
            self.calls.append(await confirm(self.client, self.partner, spec))
            await asyncio.sleep(self.pause_s)

    async def __aenter__(self) -> Workload:
        self._deadline = time.monotonic() + self.max_seconds
        self._tasks = [
            *(asyncio.create_task(self._inquirer(i)) for i in range(self.inquirers)),
            *(asyncio.create_task(self._confirmer()) for _ in range(self.confirmers)),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.gather(*self._tasks), timeout=30)

    def of(self, kind: str, *, since: float = 0.0, until: float = float("inf")) -> list[Call]:
        """The calls of ``kind`` started in [since, until)."""
        return [c for c in self.calls if c.kind == kind and since <= c.started < until]
