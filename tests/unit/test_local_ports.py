"""The ports a local server is given (``free_port``): never one from the kernel's ephemeral
range where it leaves room outside. Any outgoing connection may take a released ephemeral port
before the server binds it (two test workers did: "address already in use")."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import local_pair
from app.db.local_pair import LOWEST_CHOSEN_PORT, free_port


def _ephemeral_range() -> tuple[int, int]:
    low, high = local_pair.EPHEMERAL_RANGE.read_text().split()
    return int(low), int(high)


def test_a_chosen_port_is_outside_the_ephemeral_range_and_free() -> None:
    low, high = _ephemeral_range()
    for _ in range(50):
        port = free_port()
        assert LOWEST_CHOSEN_PORT <= port < low or high < port < 65_536
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port below the ephemeral range that a listener holds."""
    low, _ = _ephemeral_range()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        for port in range(low - 1, LOWEST_CHOSEN_PORT, -1):
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            sock.listen()
            yield port
            return
        pytest.fail("no port below the ephemeral range could be held")


def test_a_port_something_listens_on_is_passed_over(
    held_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter([held_port - LOWEST_CHOSEN_PORT, held_port - LOWEST_CHOSEN_PORT - 1])
    monkeypatch.setattr(local_pair.secrets, "randbelow", lambda _n: next(draws))
    assert free_port() == held_port - 1


@pytest.mark.parametrize(
    ("ephemeral", "outside"),
    [
        ("10500\t60999", {*range(LOWEST_CHOSEN_PORT, 10_500), *range(61_000, 65_536)}),
        ("20000\t65535", {*range(LOWEST_CHOSEN_PORT, 20_000)}),
    ],
)
def test_a_port_is_chosen_wherever_the_range_leaves_room(
    ephemeral: str, outside: set[int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuned = tmp_path / "ip_local_port_range"
    tuned.write_text(f"{ephemeral}\n")
    monkeypatch.setattr(local_pair, "EPHEMERAL_RANGE", tuned)
    assert all(free_port() in outside for _ in range(20))


@pytest.mark.parametrize("ephemeral", ["1024\t65535", "not a range", None])
def test_without_room_outside_the_range_the_kernel_chooses(
    ephemeral: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuned = tmp_path / "ip_local_port_range"
    if ephemeral is not None:  # None: no such file (not Linux)
        tuned.write_text(f"{ephemeral}\n")
    monkeypatch.setattr(local_pair, "EPHEMERAL_RANGE", tuned)
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_a_port_chosen_for_a_server_not_yet_started_is_not_chosen_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pair's primary and standby get their ports before either server binds one."""
    spare = local_pair._outside_ephemeral_range()
    draws = itertools.chain([0, 0], itertools.count(1))  # the primary's port drawn again
    monkeypatch.setattr(local_pair.secrets, "randbelow", lambda _n: next(draws))
    primary = free_port()
    assert primary == spare[0]
    assert free_port(besides=(primary,)) != primary
