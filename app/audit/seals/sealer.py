"""The sealer: at a fixed cadence, and when the instance stops, it seals the chain head.

One round, in one transaction under the fleet's seal lock (so instances sharing the database
never write two checkpoints with one number): read the chain head and the database's last
checkpoint; sign a checkpoint of the head, chained to that one; keep it in the store outside
the database (created whole, never replacing a file); copy it into ``audit_seals``; commit. A
round with nothing new since the last checkpoint writes nothing. A round that finds the head
behind the last checkpoint, or the store ahead of the database with a checkpoint that does not
follow, refuses to seal (``SealRefused``): that is for ``ssogw audit verify`` and a person.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.audit.seals.checkpoint import Checkpoint, CheckpointStore, digest_of, next_number
from app.audit.seals.seal_key import SealKey
from app.errors import InvalidInput

log = logging.getLogger(__name__)
FINAL_SEAL_S = 5.0  # the seal when stopping waits no longer (the primary may be gone)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The chain's last record, as the head row names it."""

    seq: int
    hash: bytes


MakeCheckpoints = Callable[[ChainHead, Checkpoint | None], Awaitable[list[Checkpoint]]]


class SealLedger(Protocol):
    """The database side of sealing (``app.audit.queries``)."""

    async def seal(self, make: MakeCheckpoints) -> bool:
        """Under the fleet's seal lock, in one transaction: call ``make`` with the chain head and
        the database's last checkpoint, and add the checkpoints it returns; False (and nothing
        done) when another instance holds the lock."""
        ...


class SealEvents(Protocol):
    """Where a seal round is counted (``app.observability.metrics``)."""

    def audit_sealed(self, outcome: str) -> None:
        """Count one round: sealed, skipped, refused or failed."""


class SealRefused(RuntimeError):
    """The head or the store is not where the last checkpoint left it: sealing would hide it."""


class Sealer:
    """Seals the chain head every ``interval_s`` and once more when stopped."""

    def __init__(
        self,
        *,
        ledger: SealLedger,
        store: CheckpointStore,
        key: Callable[[], SealKey],
        clock: Callable[[], datetime],
        interval_s: float,
        events: SealEvents | None = None,
    ) -> None:
        self._ledger = ledger
        self.store = store
        self._key_source = key
        self._key: SealKey | None = None
        self._clock = clock
        self._interval_s = interval_s
        self._events = events
        self._task: asyncio.Task[None] | None = None

    def key(self) -> SealKey:
        """The signing key (read once)."""
        if self._key is None:
            self._key = self._key_source()
        return self._key

    async def seal(self) -> Checkpoint | None:
        """Seal the head now: the new checkpoint, or None when nothing was written since the last
        one or another instance is sealing. SealRefused when the head went back."""
        key = self.key()
        made: list[Checkpoint] = []

        async def make(head: ChainHead, last: Checkpoint | None) -> list[Checkpoint]:
            added = await self._recovered(last)
            last = added[-1] if added else last
            if last is None and head.seq == 0:
                return added
            if last is not None and head.seq <= last.seq:
                if (head.seq, head.hash) == (last.seq, last.head_hash):
                    return added
                raise SealRefused(
                    f"the chain head (seq {head.seq}) is not where checkpoint {last.number} "
                    f"sealed it (seq {last.seq}): run `ssogw audit verify`"
                )
            checkpoint = key.sign(
                number=next_number(last), seq=head.seq, head_hash=head.hash,
                sealed_at=self._clock(), prev_digest=digest_of(last),
            )  # fmt: skip
            if not await asyncio.to_thread(self.store.add, checkpoint):
                raise SealRefused(f"checkpoint {checkpoint.number} is in the store already")
            made.append(checkpoint)
            return [*added, checkpoint]

        try:
            await self._ledger.seal(make)
        except SealRefused:
            self._count("refused")
            raise
        except Exception:
            self._count("failed")
            raise
        self._count("sealed" if made else "skipped")
        return made[0] if made else None

    async def _recovered(self, last: Checkpoint | None) -> list[Checkpoint]:
        """Checkpoints in the store after the database's last one: a round whose transaction
        failed after its file was kept, or copies someone removed. They are copied back."""
        found: list[Checkpoint] = []
        while stored := await asyncio.to_thread(self.store.get, next_number(last)):
            if stored.checkpoint is None or stored.checkpoint.prev_digest != digest_of(last):
                raise SealRefused(
                    f"checkpoint {stored.number} in {self.store.where} does not follow the "
                    "database's last checkpoint: run `ssogw audit verify`"
                )
            last = stored.checkpoint
            found.append(last)
            log.warning("checkpoint %d copied back from the store to the database", last.number)
        return found

    async def start(self) -> None:
        """Read the key (a missing or unreadable key stops the start) and seal at the cadence."""
        try:
            self.key()
        except (OSError, ValueError, InvalidInput) as exc:
            raise RuntimeError(
                f"the audit seal key cannot be read (SSOGW_AUDIT_SEAL_KEY_FILE): {exc}"
            ) from exc
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-sealer")

    async def stop(self) -> None:
        """Stop the cadence, then seal what was written since the last seal."""
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        try:
            async with asyncio.timeout(FINAL_SEAL_S):
                await self._seal_logged()
        except TimeoutError:
            log.warning("audit chain not sealed at stop: no answer in %.0f s", FINAL_SEAL_S)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self._seal_logged()

    async def _seal_logged(self) -> None:
        try:
            await self.seal()
        except SealRefused as exc:
            log.error("audit chain not sealed: %s", exc)
        except Exception as exc:  # the next round tries again
            log.warning("audit chain not sealed: %s: %s", type(exc).__name__, exc)

    def _count(self, outcome: str) -> None:
        if self._events is not None:
            self._events.audit_sealed(outcome)
