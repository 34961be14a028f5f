"""Payment transactions committed on the standbys too: ``synchronous_commit = remote_apply``,
with the wait for the standbys bounded.

Read-your-writes for the whole fleet. A payment (a confirm, a cancel) commits with
``SET LOCAL synchronous_commit = remote_apply``: the primary answers the COMMIT only once every
standby that ``synchronous_standby_names`` requires has *applied* it, so an inquiry on any
instance that reads such a standby afterwards sees the payment, and the months just paid are
never offered again. The enquiry standbys must all be in the synchronous set for this
(CloudNativePG: ``postgresql.synchronous`` with ``number`` = the standbys; locally
``app.db.local_failover.synchronous``). A primary that names no synchronous standby commits as
with ``on``: nothing to wait for, nothing changes. Every other write keeps the server's
``synchronous_commit``.

The wait is bounded: the COMMIT is given ``wait_s`` (``SSOGW_PAYMENT_COMMIT_WAIT_S``). When it
is not answered in time, the client cancels it. PostgreSQL then stops waiting for the standbys
but the transaction *has committed on the primary* (the commit record is written before the
wait); it is only not known to be on a standby. The caller is not told "paid": it gets the
retryable ``server.store_unavailable`` (reason ``commit_unconfirmed``) and sends the same
request again, which then answers with the payment it finds (by transaction id, once), waiting
for the standbys once more. What follows from it:

- **A synchronous standby down or disconnected**: every payment waits ``wait_s`` and answers
  retryable, until the primary's synchronous set no longer requires that standby. CloudNativePG
  with ``dataDurability: preferred`` drops an unavailable standby from the set by itself (the
  fleet's read-your-writes then rests on the replay check of each read: see
  ``app.db.replica_router``); with ``required``, or with a local pair whose standby is stopped,
  payments are refused until the standby is back or an operator takes it out of the set
  (``synchronous(pair, on=False)``). Inquiries are not affected.
- **A failover with the old primary still running** (a standby promoted while clients still
  reach the old one): the old primary's payments wait for a standby that now follows no one,
  time out and are answered retryable; they exist only on the old primary's abandoned
  timeline, which nobody acknowledged, and the counters' retries land on the new primary.
  Without the synchronous wait they would have been acknowledged and then lost.
- **A slow standby** (a replay conflict, a long query holding replay back up to
  ``max_standby_streaming_delay``): payments take as long; beyond ``wait_s`` as above.
- **The cost**: one round trip primary → standby → primary plus the standby's replay of the
  transaction, on every payment (docs/operations.md, "Read-your-writes across the fleet",
  has the measured figures). Inquiries pay nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Literal

import asyncpg

from app.errors import StoreUnavailable

log = logging.getLogger(__name__)

SyncLevel = Literal["remote_apply", "remote_write", "on", "local"]
#: ``application_name`` of a session while a payment transaction is open on it.
PAYMENT_APPLICATION: Final = "ssogw-payment"


@dataclass(frozen=True, slots=True)
class CommitPolicy:
    """How a payment transaction commits: its ``synchronous_commit`` and the COMMIT's bound."""

    level: SyncLevel = "remote_apply"
    wait_s: float = 2.0


@asynccontextmanager
async def synchronous_transaction(
    conn: asyncpg.Connection, policy: CommitPolicy
) -> AsyncIterator[asyncpg.Connection]:
    """A transaction on ``conn`` committed as ``policy`` says; rolled back if the block fails.

    ``StoreUnavailable`` (reason ``commit_unconfirmed``) when the COMMIT is not answered within
    ``policy.wait_s``: the transaction may have committed on the primary all the same.
    """
    # One round trip, as asyncpg's own BEGIN: the settings last until the transaction ends.
    # The name tells other sessions a payment is open (``app.rates.repository`` waits for them).
    await conn.execute(
        f"BEGIN; SET LOCAL synchronous_commit = {_level(policy.level)};"
        f" SET LOCAL application_name = '{PAYMENT_APPLICATION}'"
    )
    try:
        yield conn
    except BaseException:
        if not conn.is_closed() and conn.is_in_transaction():
            with contextlib.suppress(Exception):  # a dead connection: the pool drops it
                await conn.execute("ROLLBACK")
        raise
    try:
        await conn.execute("COMMIT", timeout=policy.wait_s)
    except TimeoutError as exc:
        log.warning(
            "a payment's commit was not confirmed within %.1f s (synchronous_commit %s):"
            " committed on the primary, not known to be on its standbys; answered retryable",
            policy.wait_s, policy.level,
        )  # fmt: skip
        raise StoreUnavailable(
            "The payment was not confirmed by the database's standbys in time; send the same"
            " request again (the same transaction id is answered once).",
            store="primary",
            reason="commit_unconfirmed",
        ) from exc


def _level(level: str) -> str:
    # Interpolated into SQL: only the four names PostgreSQL knows are ever let through.
    if level not in ("remote_apply", "remote_write", "on", "local"):
        raise ValueError(f"not a synchronous_commit level for payments: {level!r}")
    return level
