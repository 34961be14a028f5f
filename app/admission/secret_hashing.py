"""argon2 work off the event loop: a few threads, a bounded wait, and the same cost for a secret
that no principal holds.

argon2id is slow on purpose (half a second with the library's default parameters on a small,
busy core); run on the event loop it would stall every call while it works. Here it runs in
``workers`` threads (argon2's C code releases the GIL) at the lowest CPU priority where the OS
allows it (Linux: nice 19 for these threads, which argon2's own threads inherit), so hashing
takes the CPU the event loop and the database leave. At most ``workers + queue`` verifications
are in hand at once; one more is refused at once (``server.overloaded``) instead of waiting
behind an attacker's. A caller may take its place first (``reserve``), so as to know there is
one before doing other work for the check. Hashing a new secret (registering, rotating) is not
refused: it waits.

A secret checked against no hash (an unknown username or token id, PasswordText for a partner
not allowed it) is checked against a dummy hash made with the same parameters, so that answer
takes as long as a wrong secret for a real principal. Hashes made with other parameters (before
they were changed) take their own time until their secrets are rotated.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

from argon2 import PasswordHasher

from app.admission.credential_vault import new_secret, verify_secret
from app.errors import Overloaded

HASHING_NICE = 19  # the lowest CPU priority: hashing waits for everything else


def _lower_priority() -> None:
    """Run this thread (and the threads argon2 starts from it) behind everything else."""
    if sys.platform != "linux":  # elsewhere setpriority would lower the whole process
        return
    with suppress(OSError):  # a sandbox that forbids it: hashing runs at the loop's priority
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


class Slot:
    """A place among the ``workers + queue`` a verification holds, given back once."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots: threading.BoundedSemaphore | None = slots

    def release(self) -> None:
        """Give the place back (again: nothing)."""
        slots, self._slots = self._slots, None
        if slots is not None:
            slots.release()


class SecretHashing:
    """argon2id hashing and verification in a small pool of threads, with a bounded wait."""

    def __init__(
        self,
        *,
        workers: int = 2,
        queue: int = 4,
        memory_kib: int = 65536,
        time_cost: int = 3,
        parallelism: int = 4,
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("SecretHashing needs at least one worker and a queue of 0 or more")
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="ssogw-argon2", initializer=_lower_priority
        )
        self._slots = threading.BoundedSemaphore(workers + queue)
        self._dummy: str | None = None

    def reserve(self) -> Slot:
        """A place for one verification; ``Overloaded`` when the pool is full."""
        if not self._slots.acquire(blocking=False):
            raise Overloaded("The gateway is busy checking credentials; retry later.")
        return Slot(self._slots)

    async def verify(
        self, stored_hash: str | None, secret: str, *, slot: Slot | None = None
    ) -> bool:
        """Whether ``secret`` matches ``stored_hash``; None: no principal holds it (checked
        against the dummy hash all the same, and False). In ``slot`` when one was reserved,
        else ``Overloaded`` when the pool is full."""
        held = self.reserve() if slot is None else slot
        try:
            work = self._pool.submit(self._verify, stored_hash, secret)
        except BaseException:
            held.release()
            raise
        # Released when the work is done or dropped: a caller that gives up waiting does not
        # free the thread its verification still holds.
        work.add_done_callback(lambda _work: held.release())
        return await asyncio.wrap_future(work)

    async def hash(self, secret: str) -> str:
        """An argon2id hash of ``secret`` with the configured parameters."""
        return await asyncio.wrap_future(self._pool.submit(self._hasher.hash, secret))

    def close(self) -> None:
        """Stop the threads (work not started is dropped)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _verify(self, stored_hash: str | None, secret: str) -> bool:
        if stored_hash is not None:
            return verify_secret(stored_hash, secret, hasher=self._hasher)
        verify_secret(self._dummy_hash(), secret, hasher=self._hasher)
        return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:  # two threads may both make one: either will do
            self._dummy = self._hasher.hash(new_secret())
        return self._dummy
