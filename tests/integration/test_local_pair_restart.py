"""`ssogw db up` starts a stopped pair whose standby was made synchronous.

``app.db.local_failover.synchronous`` names the standby in the primary's
``synchronous_standby_names`` (ALTER SYSTEM: it outlives a restart), as the bench does for every
run. ``LocalPair.up`` starts the primary, brings the roles into line, then starts the standby:
a commit of the roles' step that waited for the synchronous standby would wait for ever.
"""

from __future__ import annotations

import threading

from app.db.local_failover import synchronous
from app.db.local_pair import LocalPair
from tests.support.pair import session_pair


def test_a_stopped_pair_with_a_synchronous_standby_comes_up_again() -> None:
    with session_pair() as (pair, _record):
        synchronous(pair)
        pair.down()

        restarted = _up_within(pair, seconds=60)

        assert restarted, "ssogw db up did not return within 60 s: the roles' commit waited"
        synchronous(pair)  # returns once the primary reports its standby synchronous again


def _up_within(pair: LocalPair, *, seconds: float) -> bool:
    failed: list[BaseException] = []

    def up() -> None:
        try:
            pair.up()
        except BaseException as exc:  # reported below, not lost in the thread
            failed.append(exc)

    thread = threading.Thread(target=up, daemon=True)
    thread.start()
    thread.join(seconds)
    if failed:
        raise failed[0]
    return not thread.is_alive()
