"""Attacks on the s17 fixes (c74c6dd rates, 027e768 workers), pure logic: each test fails on the
code it names because of the defect its docstring states.
"""

from __future__ import annotations

import asyncio
import time

from app.admission.failure_throttle import FailureThrottle
from app.domain.months import Month
from app.domain.rates import DEFAULT_RATE_HISTORY, Rate, RateTable
from app.errors import StoreUnavailable
from app.rates.book import ASK_AGAIN_S, RateBook
from app.settings import Settings
from app.workers.shares import worker_settings
from tests.support.clock import ManualMonotonic

CUT = Rate(40, 2, Month(2030, 1), Month(2030, 1), 6_000, 5_000)


class _Primary:
    """The primary's rate lines; once ``down``, a read hangs ``hang_s`` (a connect or command
    timeout against a primary that does not answer) and then fails as the driver's does."""

    def __init__(self) -> None:
        self.lines: list[Rate] = list(DEFAULT_RATE_HISTORY)
        self.down = False
        self.hang_s = 0.0
        self.reads = 0

    async def load_rates(self) -> list[Rate]:
        self.reads += 1
        if self.down:
            await asyncio.sleep(self.hang_s)
            raise StoreUnavailable("the primary database is unavailable; retry the same request")
        return list(self.lines)


async def test_an_inquiry_without_a_fingerprint_is_not_held_to_a_dead_primarys_reads() -> None:
    """c74c6dd (``RateBook._shown``): a call without a fingerprint is held to the last one shown.
    With the primary unreachable and a standby showing a fingerprint the book's table lacks (a
    rate another instance added just before the outage), every inquiry of the instance, the
    ~all whose reads bring no fingerprint included, now starts or queues behind a read of the
    dead primary once a second, and waits its whole timeout, only to be served the table it
    would have been served at once: before c74c6dd only the one read a second that brought the
    fingerprint waited. Inquiries must go on from the replica during a primary outage."""
    clock, primary = ManualMonotonic(), _Primary()
    book = RateBook(primary, ttl_s=60.0, monotonic=clock)
    old = await book.table()
    newer = RateTable([*primary.lines, CUT]).digest  # what the standby holds
    primary.down, primary.hang_s = True, 2.0

    # The one read a second that brings the standby's fingerprint: it waits for the primary
    # (by design) and is served the table the book holds.
    assert await book.table(digest=newer) is old

    clock.now += ASK_AGAIN_S + 0.1
    reads = primary.reads
    started = time.monotonic()
    served = await book.table()  # an inquiry whose read brought no fingerprint
    waited = time.monotonic() - started
    assert served is old
    assert waited < 0.5 and primary.reads == reads, (
        f"an inquiry without a fingerprint waited {waited:.1f} s for "
        f"{primary.reads - reads} read(s) of the unreachable primary, to be served the table "
        "the book already held"
    )


async def test_a_table_the_standby_proves_current_is_still_served_when_the_primary_is_down() -> (
    None
):
    """The book keeps its table when the primary cannot be read only while the table is within
    its TTL (``held`` in ``RateBook.table``). 60 s into a primary outage every inquiry answers
    server.store_unavailable, even when the standby's read shows the very fingerprint of the
    table the book holds (nothing changed), or none (held to ``_shown``, that same one). The
    replica can answer, the table is provably current, and the inquiry still fails."""
    clock, primary = ManualMonotonic(), _Primary()
    book = RateBook(primary, ttl_s=60.0, monotonic=clock)
    table = await book.table()
    primary.down = True
    clock.now += 61.0
    try:
        served = await book.table(digest=table.digest)
    except StoreUnavailable:
        served = None
    assert served is table, (
        "an inquiry whose standby read showed the book's own fingerprint failed with "
        "store_unavailable 61 s into a primary outage"
    )
    try:
        served = await book.table()
    except StoreUnavailable:
        served = None
    assert served is table, "an inquiry without a fingerprint failed likewise"


def test_one_failed_check_does_not_throttle_a_caller_of_a_pod_of_four_workers() -> None:
    """027e768 shares the credential-failure budgets out as ``budget // workers``, at least 1.
    With the defaults (5 failed checks per address and name per 60 s) and four workers (the
    pod's CPUs), each worker grants 1: a caller who mistypes a token once is refused its next
    check on that worker (``throttled``, the correct secret unchecked) for 60 s, having spent
    1 of the 5 failures the pod is configured to allow. A keep-alive connection keeps landing
    on the same worker, so its client is locked out after one typo."""
    settings = Settings(instance_id="gw")
    assert settings.credential_failures_per_pair == 5
    worker = worker_settings(settings, index=0, workers=4)
    throttle = FailureThrottle(
        per_pair=worker.credential_failures_per_pair,
        per_name=worker.credential_failures_per_name,
        per_address=worker.credential_failures_per_address,
        window_s=worker.credential_failure_window_s,
    )
    throttle.failed("203.0.113.7", "client:ops-script")
    assert not throttle.throttled("203.0.113.7", "client:ops-script"), (
        f"one failed check of the {settings.credential_failures_per_pair} a pod allows "
        f"throttles the caller on its worker (share {worker.credential_failures_per_pair})"
    )


def test_the_last_day_python_holds_is_refused_as_not_closed_not_an_overflow() -> None:
    """70ebdf1's ``ensure_day_closed`` adds ``SSOGW_SETTLEMENT_GRACE_S`` to the day's cut-off
    without a bound: with a grace of an hour (or a cut-off of 23:59 and the default 300 s) a
    settlement import or export of business date 9999-12-31, a valid ``businessDate`` query
    value and a valid ``--business-date``, raises OverflowError: a 500 server.internal on
    REST and a traceback from ``ssogw settlement`` (which catches ServiceError, OSError and
    RuntimeError only), where the day is simply not closed (client, reason day_not_closed)."""
    from datetime import date, datetime, time

    from app.domain.calendar import BANGKOK, ensure_day_closed
    from app.errors import InvalidInput

    now = datetime(2026, 12, 6, 12, 0, tzinfo=BANGKOK)
    for cutoff, grace_s in ((time(23, 0), 3600.0), (time(23, 59), 300.0)):
        try:
            ensure_day_closed(date(9999, 12, 31), instant=now, cutoff=cutoff, grace_s=grace_s)
        except InvalidInput as refused:
            assert refused.details["reason"] == "day_not_closed"
        except OverflowError as exc:
            raise AssertionError(
                f"cut-off {cutoff}, grace {grace_s:g} s: 9999-12-31 overflows ({exc})"
            ) from None
        else:
            raise AssertionError("9999-12-31 is not closed on 2026-12-06")
