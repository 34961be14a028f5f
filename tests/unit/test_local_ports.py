"""The ports a local server is given (``free_port``): never one from the kernel's ephemeral
range, from which any outgoing connection may take a released port before the server binds it
(two test workers did, and a gateway failed with "address already in use")."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import local_pair
from app.db.local_pair import LOWEST_CHOSEN_PORT, free_port


def _ephemeral_range() -> tuple[int, int]:
    low, high = local_pair.EPHEMERAL_RANGE.read_text().split()
    return int(low), int(high)


def test_a_chosen_port_is_below_the_ephemeral_range_and_free() -> None:
    low, _ = _ephemeral_range()
    for _ in range(50):
        port = free_port()
        assert LOWEST_CHOSEN_PORT <= port < low
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


def test_without_room_below_the_range_the_kernel_chooses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squeezed = tmp_path / "ip_local_port_range"
    squeezed.write_text(f"{LOWEST_CHOSEN_PORT + 10}\t60999\n")
    monkeypatch.setattr(local_pair, "EPHEMERAL_RANGE", squeezed)
    assert free_port() >= LOWEST_CHOSEN_PORT + 10
