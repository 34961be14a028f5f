"""Refusals of callers never admitted are counted in memory and written per window
(``app.audit.refusals``): a test that reads their records first lets them be written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.main import Gateway

T = TypeVar("T")


async def recorded(
    gateway: Gateway, fetch: Callable[[], Awaitable[list[T]]], *, timeout_s: float = 5.0
) -> list[T]:
    """What ``fetch`` finds once counted refusals are written: the in-process gateway's at once,
    a live server's (its windows are short in tests) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        await gateway.refusals.flush(everything=True)
        found = await fetch()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)
