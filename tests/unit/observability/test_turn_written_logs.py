"""The log handler of ``ssogw serve``: the lines of one event-loop turn leave in one write, in
their order; lines from elsewhere are written at once, behind what is held; nothing held is
lost at shutdown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from app.observability.logs import JsonFormatter, TurnWrittenHandler


class _Stream(io.StringIO):
    """A text stream that keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, TurnWrittenHandler, _Stream]]:
    stream = _Stream()
    handler = TurnWrittenHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("test.turn_written")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, handler, stream
    logger.handlers[:] = []


def _messages(stream: _Stream) -> list[str]:
    return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]


async def test_the_lines_of_one_turn_leave_in_one_write_in_order(
    logged: tuple[logging.Logger, TurnWrittenHandler, _Stream],
) -> None:
    logger, _handler, stream = logged
    for n in range(5):
        logger.info("line %d", n)
    assert stream.writes == []  # held until the turn's other callbacks have run
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(stream.writes) == 1
    assert _messages(stream) == [f"line {n}" for n in range(5)]
    logger.info("next turn")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(stream.writes) == 2
    assert stream.getvalue().endswith("\n")


async def test_a_line_from_another_thread_is_written_at_once_behind_what_is_held(
    logged: tuple[logging.Logger, TurnWrittenHandler, _Stream],
) -> None:
    logger, _handler, stream = logged
    logger.info("on the loop")
    thread = threading.Thread(target=logger.info, args=("from a thread",))
    thread.start()
    thread.join()
    assert _messages(stream) == ["on the loop", "from a thread"]  # written, in order
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert _messages(stream) == ["on the loop", "from a thread"]  # nothing twice


def test_without_a_loop_each_line_is_written_at_once(
    logged: tuple[logging.Logger, TurnWrittenHandler, _Stream],
) -> None:
    logger, _handler, stream = logged
    logger.info("starting")
    logger.info("started")
    assert _messages(stream) == ["starting", "started"]


async def test_what_is_held_is_written_when_the_handler_is_flushed_at_shutdown(
    logged: tuple[logging.Logger, TurnWrittenHandler, _Stream],
) -> None:
    logger, handler, stream = logged
    logger.info("the last words")
    logging.shutdown([lambda: handler])  # what logging's atexit hook does for every handler
    assert _messages(stream) == ["the last words"]
