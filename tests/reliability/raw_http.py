"""HTTP/1.1 over a bare socket, for what an HTTP client library will not send: oversized
headers, bodies trickled a byte at a time, requests that stop half-way."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

STILL_OPEN = "still open"


@dataclass(frozen=True)
class RawAnswer:
    """What came back: a status line and body, or nothing before the connection ended."""

    status: int | None
    head: str
    body: bytes
    seconds: float

    def describe(self) -> str:
        if self.status is None:
            if self.head == STILL_OPEN:
                return f"no answer, connection still open after {self.seconds:.1f} s"
            return f"connection closed without an answer ({self.head})"
        media = next(
            (
                line.partition(":")[2].strip()
                for line in self.head.split("\r\n")
                if line.lower().startswith("content-type:")
            ),
            "no content-type",
        )
        return f"{self.status} ({media})"


def build_request(
    method: str, target: str, headers: Sequence[tuple[str, str]], body: bytes
) -> bytes:
    """A complete HTTP/1.1 request with a Content-Length."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_answer(reader: asyncio.StreamReader, started: float) -> RawAnswer:
    """Read one response (status line, headers, Content-Length body)."""
    try:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        return RawAnswer(None, type(exc).__name__, b"", time.monotonic() - started)
    status = int(head.split(" ", 2)[1])
    length = 0
    for line in head.split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.partition(":")[2])
    body = await reader.readexactly(length) if length else b""
    return RawAnswer(status, head, body, time.monotonic() - started)


async def exchange(port: int, request: bytes, *, timeout_s: float = 10.0) -> RawAnswer:
    """Send ``request`` to 127.0.0.1:``port`` and read the answer, within ``timeout_s``."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(timeout_s):
            try:
                writer.write(request)
                await writer.drain()
            except ConnectionError:
                pass  # the server may answer and close before it has read everything
            return await read_answer(reader, started)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def trickle(
    port: int,
    request: bytes,
    *,
    fast_bytes: int = 0,
    slow_bytes: int,
    interval_s: float,
    timeout_s: float = 30.0,
) -> RawAnswer:
    """Send the first ``fast_bytes`` of ``request`` at once, the next ``slow_bytes`` one byte
    every ``interval_s``, then the rest at once, and read the answer."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        async with asyncio.timeout(timeout_s):
            writer.write(request[:fast_bytes])
            await writer.drain()
            end = min(fast_bytes + slow_bytes, len(request))
            for index in range(fast_bytes, end):
                writer.write(request[index : index + 1])
                await writer.drain()
                await asyncio.sleep(interval_s)
            writer.write(request[end:])
            await writer.drain()
            return await read_answer(reader, started)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def stall(port: int, request: bytes, *, send_bytes: int, wait_s: float) -> RawAnswer:
    """Send only the first ``send_bytes`` of ``request``, then nothing; wait at most ``wait_s``
    for the server to answer or close the connection."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request[:send_bytes])
        await writer.drain()
        try:
            async with asyncio.timeout(wait_s):
                return await read_answer(reader, started)
        except TimeoutError:
            return RawAnswer(None, STILL_OPEN, b"", time.monotonic() - started)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
