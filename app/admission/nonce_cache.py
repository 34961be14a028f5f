"""WS-Security nonces this instance has seen within the freshness window: the free first line
of replay protection, in front of the fleet's shared ledger (``app.admission.replay_guard``).

A nonce is held as its decoded bytes, never its Base64 text: the same bytes re-encoded with
other padding bits are the same nonce (and make the same digest). A replay sent to this
instance is refused here without a round trip to the database; one sent to another instance,
or after a restart, is refused by the ledger.

At a thousand calls a second the window holds hundreds of thousands of nonces, so each is
kept small: a 64-bit fingerprint of (partner, nonce) (Python's keyed hash, random per
process) in an open-addressing hash table of machine integers (linear probing, at most half
full, deletion by shifting back), and the fingerprint and its time in a ring that expires in
arrival order. All three are sized once for ``max_entries``: 32 to 48 bytes a nonce held,
about 32 MB for the default million, and no Python object per nonce, where a set of
fingerprints took about 90 bytes and a dict of (partner, nonce) tuples about 250. Nothing is
rehashed as the window fills, so no call waits behind a pause.
With a million nonces held, a new nonce shares a fingerprint with one of them with a
probability of about 5 in 10^14 (it would then be refused as replayed).

A use can be taken back (``forget``: its call was refused because the fleet's ledger could not
answer, so the nonce was never used): it leaves the table at once, and its ring entry, which
expires in its turn, is counted as stale (a small dict, only ever filled while the ledger is
away) so that its expiry leaves a later use of the same nonce in place.
"""

from __future__ import annotations

import mmap
import time
from collections.abc import Callable

_EMPTY = 0  # a free slot; a fingerprint of 0 is stored as 1


def fingerprint(partner: str, nonce: bytes) -> int:
    """A 64-bit fingerprint of the pair, never 0 (the table's free-slot mark)."""
    return hash((partner, nonce)) or 1


def _zeroed(length: int) -> memoryview[int]:
    """``length`` 64-bit integers, all zero, in pages the OS hands over only when first written:
    sized once for ``max_entries``, never grown (no rehash pausing the event loop) and never
    holding more memory than the nonces written into it so far."""
    return memoryview(mmap.mmap(-1, 8 * length)).cast("q")


class NonceCache:
    """Remembers (partner, nonce) pairs for ``window_s`` seconds, at most ``max_entries``."""

    def __init__(
        self,
        *,
        window_s: float,
        max_entries: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
        fingerprint: Callable[[str, bytes], int] = fingerprint,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._window = window_s
        self._max = max_entries
        self._clock = clock
        self._fingerprint = fingerprint
        capacity = 1 << (2 * max_entries - 1).bit_length()  # a power of two, at most half full
        self._table = _zeroed(capacity)
        self._mask = capacity - 1
        # The fingerprints and times in arrival order, a ring: ``_head`` is the oldest held.
        self._keys = _zeroed(max_entries)
        self._times = _zeroed(max_entries)  # arrival, in clock microseconds
        self._head = 0
        self._count = 0
        # Fingerprints taken back (``forget``) whose ring entries have not expired yet, and how
        # many: the entry, when it expires, must not remove a later use of the same nonce.
        self._stale: dict[int, int] = {}
        self._stale_total = 0

    def __len__(self) -> int:
        return self._count - self._stale_total

    @property
    def capacity(self) -> int:
        """Slots in the hash table (for tests and sizing)."""
        return self._mask + 1

    def _slot(self, key: int) -> int:
        """The slot holding ``key``, or the free slot where it would go."""
        table, mask = self._table, self._mask
        i = key & mask
        while True:
            held = table[i]
            if held in (key, _EMPTY):
                return i
            i = (i + 1) & mask

    def _remove(self, key: int) -> None:
        """Take ``key`` out, shifting back the entries after it that it had pushed along."""
        table, mask = self._table, self._mask
        hole = self._slot(key)
        j = hole
        while True:
            j = (j + 1) & mask
            held = table[j]
            if held == _EMPTY:
                break
            home = held & mask
            # ``held`` may fill the hole unless its home lies cyclically in (hole, j].
            if (hole < j and not hole < home <= j) or (j < hole and j < home <= hole):
                table[hole] = held
                hole = j
        table[hole] = _EMPTY

    def _expire(self, now: float) -> None:
        keys, times, size = self._keys, self._times, self._max
        head, count = self._head, self._count
        oldest_kept = round((now - self._window) * 1_000_000)
        while count and (times[head] < oldest_kept or count >= size):
            key = keys[head]
            stale = self._stale.pop(key, 0)
            if stale:  # a forgotten use: the table holds none, or a later one, of this key
                self._stale_total -= 1
                if stale > 1:
                    self._stale[key] = stale - 1
            else:
                self._remove(key)
            head = (head + 1) % size
            count -= 1
        self._head, self._count = head, count

    def first_use(self, partner: str, nonce: bytes) -> bool:
        """Record the nonce (its decoded bytes); False when it was already used within the
        window."""
        now = self._clock()
        self._expire(now)
        key = self._fingerprint(partner, nonce)
        slot = self._slot(key)
        if self._table[slot] == key:
            return False
        self._table[slot] = key
        tail = (self._head + self._count) % self._max
        self._keys[tail] = key
        self._times[tail] = round(now * 1_000_000)
        self._count += 1
        return True

    def seen(self, partner: str, nonce: bytes) -> bool:
        """Whether the nonce was used within the window (``first_use`` without recording)."""
        self._expire(self._clock())
        key = self._fingerprint(partner, nonce)
        return self._table[self._slot(key)] == key

    def forget(self, partner: str, nonce: bytes) -> None:
        """Take back the use of a nonce recorded by ``first_use`` whose call was refused before
        it could be judged (the ledger did not answer): it may be used again."""
        key = self._fingerprint(partner, nonce)
        if self._table[self._slot(key)] != key:
            return  # expired meanwhile: nothing held
        self._remove(key)
        self._stale[key] = self._stale.get(key, 0) + 1
        self._stale_total += 1
