"""Attacks on 4c60393: payment transactions named ``ssogw-payment`` (``app/db/sync_commit.py``)
and the settle wait after a rate line (``app/rates/repository.py`` ``_settled``), bounded by
``settle_s`` = the adding instance's ``payment_commit_wait_s`` + 5 s (``app/main/gateway.py``).

Each test here fails on 4c60393; the docstring of each says what should happen and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from app.db.local_failover import synchronous
from app.db.local_pair import SUPERUSER, LocalPair, PairRecord
from app.errors import ServiceError
from app.main import Gateway
from app.rates.service import RateChange
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.support.clock import PinnedClock
from tests.support.counter_calls import s40_person
from tests.support.fleet import instance
from tests.support.rate_changes import (
    BAHT,
    add_rate,
    confirm_in_background,
    rate_change_list,
    refund_list,
    sessions_where,
    until,
)

pytestmark = pytest.mark.db


@pytest.fixture
def synchronous_standby(pg_pair: tuple[LocalPair, PairRecord]) -> Iterator[None]:
    """The session's standby in the primary's synchronous_standby_names (as production's
    enquiry standbys are: app/db/sync_commit.py), for this test only."""
    pair, _ = pg_pair
    synchronous(pair, on=True)
    try:
        yield
    finally:
        synchronous(pair, on=False)


async def _resume_after(replica_superuser: asyncpg.Connection, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await replica_superuser.execute("SELECT pg_wal_replay_resume()")


# --- the bound is the adding instance's, not the paying one's -----------------------------------
async def test_a_cut_on_an_instance_with_a_shorter_commit_wait_lists_a_slower_instances_payment(
    pg_pair: tuple[LocalPair, PairRecord],
    synchronous_standby: None,
    settings: Settings,
    gateway: Gateway,
    partner: PartnerCredentials,
    clock: PinnedClock,
    owner_pool: asyncpg.Pool,
    replica_superuser: asyncpg.Connection,
) -> None:
    """A fleet whose instances do not all have the same ``payment_commit_wait_s`` (a rolling
    change of the setting, or one instance given more for a standby known to lag: the
    setting is per instance, ``tests/support/fleet.py`` ``instance``). A confirm of this month
    at option 2 (100 baht) on the instance with 12 s has read the fingerprint (no cut yet) and
    is in its COMMIT, waiting 9 s for the standby. A retroactive cut to 60 baht is added
    meanwhile through an instance with the default 2 s. The confirm is then answered *paid,
    100 baht* — after the cut. The refund listing owes 40 baht for the month; the cut's
    answer should list it too (app/rates/repository.py ``insert_rate``: "once those have
    ended, what is listed of the paid months ... holds their payments").

    On 4c60393 the cut's answer does not list it: ``_settled`` gives up after ``settle_s``,
    which app/main/gateway.py computes from the *adding* instance's own setting
    (``settings.payment_commit_wait_s + 5.0`` = 7 s), not from the commit wait of the
    payments it waits for (12 s on the paying instance). It logs a warning and the answer
    streams a tally that claims to be complete."""
    current = clock.month()
    nid = await s40_person(gateway, option=2)
    _, record = pg_pair
    superuser = await asyncpg.connect(record.dsn(record.primary_port, role=SUPERUSER))
    change: RateChange | None = None
    confirming: asyncio.Task[Any] | None = None
    try:
        async with instance(settings, clock, "slow-commit-12", payment_commit_wait_s=12.0) as slow:
            await replica_superuser.execute("SELECT pg_wal_replay_pause()")
            confirming = confirm_in_background(slow, partner, nid, current, 100 * BAHT)
            in_sync_wait = sessions_where(superuser, "wait_event = 'SyncRep' AND query = 'COMMIT'")
            await until(in_sync_wait, "the confirm waits for its standby in COMMIT", 5.0)
            resumed = asyncio.create_task(_resume_after(replica_superuser, 9.0))
            started = time.monotonic()
            change = await add_rate(gateway, 2, current, 60 * BAHT, retroactive=True)
            settled_after = time.monotonic() - started
            listed = await rate_change_list(change, nid)  # streamed at once, as REST does
            await resumed
            try:
                outcome: Any = await asyncio.wait_for(confirming, 10)
            except ServiceError as refused:
                outcome = refused
        owed = await refund_list(gateway, current, nid)
        assert getattr(outcome, "amount_satang", None) == 100 * BAHT, outcome
        assert owed == [(str(current), 40 * BAHT, "rate_cut")], owed
        assert listed == owed, (
            f"the cut's answer (after a {settled_after:.1f} s wait) lists {listed};"
            f" the refund listing owes {owed}"
        )
    finally:
        with contextlib.suppress(Exception):
            await replica_superuser.execute("SELECT pg_wal_replay_resume()")
        if confirming is not None and not confirming.done():
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(confirming, 15)
        await superuser.close()
        await owner_pool.execute("DELETE FROM paid_months WHERE national_id = $1", nid)
        if change is not None:
            await owner_pool.execute(
                "DELETE FROM contribution_rates WHERE id = $1", change.record.id
            )
        gateway.rates.invalidate()
