"""The nonce cache against a plain model: same answers, whatever the collisions and expiry."""

from __future__ import annotations

import random
import tracemalloc
from dataclasses import dataclass

import pytest

from app.admission.nonce_cache import NonceCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Model:
    """What the cache must answer: a dict of pair -> time, expired in arrival order."""

    def __init__(self, window_s: float, max_entries: int) -> None:
        self.window, self.max = window_s, max_entries
        self.seen: dict[tuple[str, bytes], float] = {}

    def first_use(self, now: float, pair: tuple[str, bytes]) -> bool:
        for old, at in list(self.seen.items()):  # insertion order is arrival order
            if now - at > self.window or len(self.seen) >= self.max:
                del self.seen[old]
            else:
                break
        if pair in self.seen:
            return False
        self.seen[pair] = now
        return True


def crowded(username: str, nonce: bytes) -> int:
    """Fingerprints that pile onto a few home slots (and wrap past the table's end)."""
    n = int(nonce)
    return (n * 1024 + (1023 if n % 3 else 5)) * (1 if username == "u" else -1)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("max_entries", [10_000, 40])
def test_the_cache_answers_as_the_model_does(seed: int, max_entries: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    cache = NonceCache(window_s=5.0, max_entries=max_entries, clock=clock, fingerprint=crowded)
    model = Model(5.0, max_entries)
    for _ in range(6_000):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.5, 3.0])
        pair = (rng.choice("uv"), str(rng.randrange(400)).encode())
        assert cache.first_use(*pair) == model.first_use(clock.now, pair), pair
        assert len(cache) == len(model.seen)


@dataclass
class Arrival:
    pair: tuple[str, bytes]
    at: float
    held: bool = True


class ForgettingModel:
    """What the cache must answer when uses are also taken back: arrivals in order, each held
    until it expires (a use taken back still holds its place, as the ring's entry does)."""

    def __init__(self, window_s: float, max_entries: int) -> None:
        self.window, self.max = window_s, max_entries
        self.arrivals: list[Arrival] = []

    def first_use(self, now: float, pair: tuple[str, bytes]) -> bool:
        while self.arrivals and (
            now - self.arrivals[0].at > self.window or len(self.arrivals) >= self.max
        ):
            del self.arrivals[0]
        if any(a.pair == pair and a.held for a in self.arrivals):
            return False
        self.arrivals.append(Arrival(pair, now))
        return True

    def forget(self, pair: tuple[str, bytes]) -> None:
        for arrival in self.arrivals:
            if arrival.pair == pair:
                arrival.held = False

    def __len__(self) -> int:
        return sum(a.held for a in self.arrivals)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("max_entries", [10_000, 40])
def test_uses_taken_back_answer_as_the_model_does(seed: int, max_entries: int) -> None:
    rng = random.Random(seed)
    clock = Clock()
    cache = NonceCache(window_s=5.0, max_entries=max_entries, clock=clock, fingerprint=crowded)
    model = ForgettingModel(5.0, max_entries)
    for _ in range(4_000):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.5, 3.0])
        pair = (rng.choice("uv"), str(rng.randrange(200)).encode())
        first = cache.first_use(*pair)
        assert first == model.first_use(clock.now, pair), pair
        if first and rng.random() < 0.3:  # its call refused for want of the ledger
            cache.forget(*pair)
            model.forget(pair)
        assert len(cache) == len(model)


def test_a_use_taken_back_may_be_made_again_and_its_old_entry_expires_harmlessly() -> None:
    clock = Clock()
    cache = NonceCache(window_s=5, clock=clock)
    assert cache.first_use("p", b"n")
    cache.forget("p", b"n")
    assert len(cache) == 0
    clock.now += 2
    assert cache.first_use("p", b"n"), "the retry of a call refused for the ledger"
    assert not cache.first_use("p", b"n")
    clock.now += 3.5  # the use taken back expires; the retry's is held 1.5 s more
    assert not cache.first_use("p", b"n"), "the old entry's expiry took the retry's with it"
    assert len(cache) == 1
    clock.now += 2
    assert cache.first_use("p", b"n")


def test_a_replay_is_refused_until_the_window_has_passed() -> None:
    clock = Clock()
    cache = NonceCache(window_s=600, clock=clock)
    assert cache.first_use("partner", b"nonce")
    clock.now += 599
    assert not cache.first_use("partner", b"nonce")
    assert cache.first_use("other-partner", b"nonce")
    clock.now += 2
    assert cache.first_use("partner", b"nonce")


def test_the_table_is_at_most_half_full_when_the_cache_is() -> None:
    cache = NonceCache(window_s=1e9, max_entries=50_000, clock=Clock())
    for n in range(60_000):
        assert cache.first_use("u", str(n).encode())
    assert len(cache) == 50_000  # the oldest 10,000 made room
    assert cache.capacity >= 2 * len(cache)
    assert all(cache.first_use("u", str(n).encode()) for n in range(0, 10_000, 7))
    assert all(not cache.first_use("u", str(n).encode()) for n in range(20_000, 60_000, 7))


def test_a_nonce_allocates_no_python_object() -> None:
    nonces = [f"{n:024d}".encode() for n in range(20_000)]
    cache = NonceCache(window_s=1e9, max_entries=10_000, clock=Clock())
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for nonce in nonces:
            cache.first_use("partner", nonce)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(cache) == 10_000
    # The table and the ring are sized once, outside the Python heap: whatever else the process
    # allocated meanwhile, far less than a byte a nonce (a Python int alone takes 32).
    assert grown < len(nonces)
