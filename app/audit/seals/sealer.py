"""The sealer: at a fixed cadence, and when the instance stops, it seals the chain head.

One round, in one transaction under the fleet's seal lock (so instances sharing the database
never write two checkpoints with one number): read the chain head and the database's copies of
the checkpoints; take the newest copy whose signature verifies as the last checkpoint (a forged
copy is passed over: it takes its number, nothing more); sign a checkpoint of the head, chained
to that one; keep it in the store outside the database (created whole, never replacing a file);
copy it into ``audit_seals``; commit. A round with nothing new since the last checkpoint writes
nothing. A file in the store after the last checkpoint that this gateway's keys signed and that
follows it (a round whose transaction failed after its file was kept) is copied back; any other
file there (unsigned, foreign, not following) is forged or planted: its number is passed over,
so it can stop no one (``ssogw audit verify`` names it). A round that finds the head behind the
last checkpoint refuses to seal (``SealRefused``): that is for verify and a person.

Hold-off: a round waits for the seal lock (and for any row of ``audit_seals`` it must write) at
most ``wait_s`` (the cadence, by default). A session holding them longer — any session of the
service role can take the same advisory lock, or leave an insert into ``audit_seals``
uncommitted — makes the round ``blocked``: ``SealBlocked``, counted under that outcome
(``ssogw_audit_seals_total{outcome="blocked"}``, alert ``SsogwAuditSealBlocked``) and logged as
an error naming the sessions holding the seal lock. Records written meanwhile stay unsealed
until a round gets through; verify shows how many.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from app.audit.seals.checkpoint import (
    Checkpoint,
    CheckpointStore,
    TrustedKeys,
    digest_of,
    next_number,
    signature_fault,
)
from app.audit.seals.seal_key import SealKey
from app.errors import InvalidInput

log = logging.getLogger(__name__)
FINAL_SEAL_S = 5.0  # the seal when stopping waits no longer (the primary may be gone)
COPIES_PAGE: Final = 100  # the database's copies read at a time, newest first
SIGN_ATTEMPTS: Final = 8  # numbers tried when files keep appearing under the next one


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The chain's last record, as the head row names it."""

    seq: int
    hash: bytes


class SealRound(Protocol):
    """What a round sees under the seal lock (``app.audit.queries``)."""

    @property
    def head(self) -> ChainHead:
        """The chain head."""
        ...

    async def copies(self, *, before: int | None) -> list[Checkpoint]:
        """The database's copies numbered below ``before`` (all when None), newest first, at
        most ``COPIES_PAGE``."""
        ...


MakeCheckpoints = Callable[[SealRound], Awaitable[list[Checkpoint]]]


class SealLedger(Protocol):
    """The database side of sealing (``app.audit.queries``)."""

    async def seal(self, make: MakeCheckpoints, *, wait_s: float) -> None:
        """Under the fleet's seal lock, in one transaction: call ``make`` and add the copies it
        returns. SealBlocked when the lock, or a row to add, is not had within ``wait_s``."""
        ...


class SealEvents(Protocol):
    """Where a seal round is counted (``app.observability.metrics``)."""

    def audit_sealed(self, outcome: str) -> None:
        """Count one round: sealed, skipped, refused, blocked or failed."""


class SealRefused(RuntimeError):
    """The head is not where the last checkpoint left it: sealing would hide it."""


class SealBlocked(RuntimeError):
    """Another session held the seal lock, or a row the round had to write, past the wait."""


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
        trusted: Callable[[], TrustedKeys] | None = None,
        wait_s: float | None = None,
    ) -> None:
        """``trusted``: the public keys of earlier seal keys, whose checkpoints the chain of
        checkpoints continues from (the signing key's own is always trusted); ``wait_s``: how
        long a round waits for the seal lock (the cadence unless given)."""
        self._ledger = ledger
        self.store = store
        self._key_source = key
        self._key: SealKey | None = None
        self._trusted_source = trusted
        self._clock = clock
        self._interval_s = interval_s
        self._wait_s = interval_s if wait_s is None else wait_s
        self._events = events
        self._task: asyncio.Task[None] | None = None

    def key(self) -> SealKey:
        """The signing key (read once)."""
        if self._key is None:
            self._key = self._key_source()
        return self._key

    def _keys(self) -> TrustedKeys:
        own = self.key()
        earlier = self._trusted_source() if self._trusted_source is not None else {}
        return {**earlier, own.key_id: own.public}

    async def seal(self, *, wait_s: float | None = None) -> Checkpoint | None:
        """Seal the head now: the new checkpoint, or None when nothing was written since the last
        one. SealRefused when the head went back; SealBlocked when the seal lock was held by
        another session for longer than ``wait_s`` (this sealer's wait unless given)."""
        key, keys = self.key(), self._keys()
        made: list[Checkpoint] = []

        async def make(round_: SealRound) -> list[Checkpoint]:
            last, forged = await self._last_copy(round_, keys)
            last, number, copy_back = await self._recovered(last, forged, keys)
            head = round_.head
            if last is None and head.seq == 0:
                return copy_back
            if last is not None and head.seq <= last.seq:
                if (head.seq, head.hash) == (last.seq, last.head_hash):
                    return copy_back
                raise SealRefused(
                    f"the chain head (seq {head.seq}) is not where checkpoint {last.number} "
                    f"sealed it (seq {last.seq}): run `ssogw audit verify`"
                )
            for _ in range(SIGN_ATTEMPTS):
                checkpoint = key.sign(
                    number=number, seq=head.seq, head_hash=head.hash, sealed_at=self._clock(),
                    prev_digest=digest_of(last),
                )  # fmt: skip
                if await asyncio.to_thread(self.store.add, checkpoint):
                    made.append(checkpoint)
                    return [*copy_back, checkpoint]
                log.error("checkpoint %d appeared in %s while sealing: passed over",
                          number, self.store.where)  # fmt: skip
                number += 1
            raise SealRefused(f"checkpoints keep appearing in {self.store.where}: not sealed")

        try:
            await self._ledger.seal(make, wait_s=self._wait_s if wait_s is None else wait_s)
        except SealRefused:
            self._count("refused")
            raise
        except SealBlocked:
            self._count("blocked")
            raise
        except Exception:
            self._count("failed")
            raise
        self._count("sealed" if made else "skipped")
        return made[0] if made else None

    async def _last_copy(
        self, round_: SealRound, keys: TrustedKeys
    ) -> tuple[Checkpoint | None, set[int]]:
        """The newest of the database's copies that a trusted key signed, and the numbers of
        the copies above it: forged (the service role may insert copies), passed over."""
        forged: set[int] = set()
        page = await round_.copies(before=None)
        while page:
            for copy in page:
                fault = signature_fault(copy, keys)
                if fault is None:
                    return copy, forged
                forged.add(copy.number)
                log.error("the database's copy of checkpoint %d is forged (%s): passed over",
                          copy.number, fault)  # fmt: skip
            if len(page) < COPIES_PAGE:
                break
            page = await round_.copies(before=page[-1].number)
        return None, forged

    async def _recovered(
        self, last: Checkpoint | None, forged: set[int], keys: TrustedKeys
    ) -> tuple[Checkpoint | None, int, list[Checkpoint]]:
        """Walk the store past ``last``, one number at a time: files this gateway signed that
        follow it are a round whose transaction failed after its file was kept (copied back
        where the database has no copy under the number); anything else there, and numbers a
        forged copy took, are passed over. The walk visits only numbers something occupies (a
        forged copy numbered far ahead costs nothing). The last checkpoint, the number to sign
        under, and the copies to add."""
        number, copy_back = next_number(last), list[Checkpoint]()
        while True:
            stored = await asyncio.to_thread(self.store.get, number)
            if stored is None:
                if number not in forged:
                    return last, number, copy_back
                number += 1  # a forged copy nothing in the store backs
                continue
            cp = stored.checkpoint
            fault = stored.problem if cp is None else signature_fault(cp, keys)
            if fault is None and cp is not None and cp.prev_digest != digest_of(last):
                fault = "it does not follow the last checkpoint"
            if fault is not None or cp is None:
                log.error("checkpoint file %d in %s is forged or planted (%s): passed over",
                          number, self.store.where, fault)  # fmt: skip
            else:
                last = cp
                if number not in forged:
                    copy_back.append(cp)
                    log.warning("checkpoint %d copied back from the store to the database", number)
            number += 1

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
                await self._seal_logged(wait_s=min(self._wait_s, FINAL_SEAL_S / 2))
        except TimeoutError:
            log.warning("audit chain not sealed at stop: no answer in %.0f s", FINAL_SEAL_S)

    async def _run(self) -> None:
        began = time.monotonic()
        while True:
            # A round that waited (blocked) keeps to the cadence: the next starts on time.
            await asyncio.sleep(max(0.0, self._interval_s - (time.monotonic() - began)))
            began = time.monotonic()
            await self._seal_logged()

    async def _seal_logged(self, *, wait_s: float | None = None) -> None:
        try:
            await self.seal(wait_s=wait_s)
        except SealRefused as exc:
            log.error("audit chain not sealed: %s", exc)
        except SealBlocked as exc:
            log.error("audit chain not sealed: blocked: %s", exc)
        except Exception as exc:  # the next round tries again
            log.warning("audit chain not sealed: %s: %s", type(exc).__name__, exc)

    def _count(self, outcome: str) -> None:
        if self._events is not None:
            self._events.audit_sealed(outcome)
