"""The guarded protocol against clients that upgrade or do not read: every connection gives
back its slot, a head is cut even behind answers the client never reads, and a cut lets go of
the connection and of an app waiting for the client to read. Found by a review (2026-12-06);
each test failed before its fix."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from app.observability.guarded_http import GuardedHttpProtocol
from tests.unit.observability.test_guarded_http import _answer, _late, _ok, _read_then_ok, _serving

_UPGRADE = (
    b"GET /ws HTTP/1.1\r\nhost: t\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
    b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
)


@pytest.fixture
def protocols(monkeypatch: pytest.MonkeyPatch) -> list[GuardedHttpProtocol]:
    """Every protocol instance the server makes, to look at its guard and state."""
    made: list[GuardedHttpProtocol] = []
    connection_made = GuardedHttpProtocol.connection_made

    def spy(self: GuardedHttpProtocol, transport: Any) -> None:
        made.append(self)
        connection_made(self, transport)

    monkeypatch.setattr(GuardedHttpProtocol, "connection_made", spy)
    return made


# --- A WebSocket upgrade is answered as the plain request it also is --------------------------
async def _ws_app(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
    elif scope["type"] == "http":
        await _ok(scope, receive, send)


async def test_review_a_websocket_upgrade_releases_its_connection_slot(
    protocols: list[GuardedHttpProtocol],
) -> None:
    """uvicorn handed an upgraded connection to its WebSocket protocol, whose connection_lost
    never released the guard's slot: ``max_per_address`` upgrades locked an address out, and
    through the trusted ingress (exempt per address) ``max_connections`` the whole server."""
    async with _serving(_ws_app, max_per_address=2) as port:
        for _ in range(2):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_UPGRADE)
            await reader.readuntil(b"\r\n\r\n")  # the plain answer (was 101 Switching Protocols)
            writer.close()
        await asyncio.sleep(0.3)
        assert protocols[0].guard.open_connections == 0, "slots leaked by closed websockets"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            async with asyncio.timeout(3):
                answer = await reader.read(40)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK"), answer  # was b"": refused, address_cap


# --- A head behind answers the client does not read is cut all the same ----------------------
_BIG = 64 * 1024 * 1024


def _streaming(done: list[bool]) -> Callable[..., Any]:
    async def app(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(_BIG).encode())],
                }
            )
            for _ in range(_BIG >> 20):  # a streamed answer, yielding between chunks
                await send(
                    {"type": "http.response.body", "body": b"x" * (1 << 20), "more_body": True}
                )
                await asyncio.sleep(0)
            await send({"type": "http.response.body", "body": b""})
        finally:
            done.append(True)

    return app


async def _non_reading_client(port: int, data: bytes) -> asyncio.StreamWriter:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    _reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(data)
    return writer


async def test_review_a_head_behind_a_stalled_answer_and_a_queued_request_is_cut(
    protocols: list[GuardedHttpProtocol],
) -> None:
    """A client that does not read its (large) answer, a whole request queued behind it and a
    head begun after that: reading stays paused as long as the client likes, and the head's time
    restarted each time it fell due. Now it waits at most ``_PAUSED_HEAD_SPAN`` timeouts."""
    done: list[bool] = []
    async with _serving(_streaming(done), header_timeout_s=0.2) as port:
        writer = await _non_reading_client(
            port,
            b"GET /big HTTP/1.1\r\nhost: t\r\n\r\n"
            b"GET /queued HTTP/1.1\r\nhost: t\r\n\r\n"
            b"GET /never-finished HTTP/1.1\r\n",
        )
        try:
            await asyncio.sleep(1.5)  # more than seven head timeouts
            cut = protocols[-1].transport.is_closing()
        finally:
            writer.transport.abort()
    assert cut, "the unfinished head was never cut (its timer restarted while reading paused)"


# --- A cut ends the connection, and the app that waited for the client to read ---------------
async def test_review_a_cut_ends_the_connection_and_the_app_of_a_non_reading_client(
    protocols: list[GuardedHttpProtocol],
) -> None:
    """Same client, without the queued request: the cut closed the transport, and close() waits
    for the write buffer to drain, which a client that does not read never lets happen; the app
    stayed in ``flow.drain()``. The connection, its slot, the buffered answer and the app's task
    lived until the client went."""
    done: list[bool] = []
    async with _serving(_streaming(done), header_timeout_s=0.2) as port:
        writer = await _non_reading_client(
            port, b"GET /big HTTP/1.1\r\nhost: t\r\n\r\nGET /never-finished HTTP/1.1\r\n"
        )
        try:
            await asyncio.sleep(1.0)  # five head timeouts: cut at the first
            guard = protocols[-1].guard
            open_after_cut, app_ended = guard.open_connections, bool(done)
        finally:
            writer.transport.abort()
    assert protocols[-1].transport.is_closing()
    assert (open_after_cut, app_ended) == (0, True)  # was (1, False)


# --- uvicorn's 400 for bytes it cannot parse is never another request's answer ----------------
async def test_an_unreadable_request_behind_one_not_yet_answered_is_not_told_400() -> None:
    """uvicorn answers bytes it cannot parse with a 400 at once: behind a request not yet
    answered, the client read it as that request's answer. The connection ends silently."""
    async with _serving(_late) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /late HTTP/1.1\r\nhost: t\r\n\r\n")
            await asyncio.sleep(0.05)  # the app has begun, and not answered
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            async with asyncio.timeout(5):
                rest = await reader.read()
        finally:
            writer.close()
        await asyncio.sleep(0.4)  # the app's answer meets the ended connection
    assert rest == b"", rest


async def test_an_unreadable_request_on_its_own_is_told_400() -> None:
    async with _serving(_ok) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
            async with asyncio.timeout(5):
                answer = await reader.read()
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 400 "), answer


# --- An answer given before the body is whole says the connection closes ----------------------
async def _refusing(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Answers 413 at once, reading none of the body (as the SOAP endpoint's early refusals)."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-length", b"2")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"no"})


_POST = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 1000\r\n\r\n"


@pytest.mark.parametrize("first", [b"", b"a" * 100], ids=["head-only", "part-of-the-body"])
async def test_an_answer_before_the_body_is_whole_says_connection_close(first: bytes) -> None:
    """The guard closes the connection after such an answer (the rest of the body unread);
    without ``connection: close`` a client would take it for persistent and send its next
    call on it (RFC 9112, 9.3)."""
    async with _serving(_refusing) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(_POST + first)
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
                assert await reader.readexactly(2) == b"no"
                assert await reader.read() == b""  # and it is closed
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"\r\nconnection: close\r\n" in head.lower(), head


async def test_an_answer_after_a_body_in_pieces_keeps_the_connection() -> None:
    """A body that arrives over several reads, read whole before the answer: the connection
    persists, and its next request is answered."""
    async with _serving(_read_then_ok) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(_POST + b"a" * 100)
            await asyncio.sleep(0.05)
            writer.write(b"a" * 900)
            first = await _answer(reader)
            writer.write(b"GET /next HTTP/1.1\r\nhost: t\r\n\r\n")
            second = await _answer(reader)
        finally:
            writer.close()
    assert first.startswith(b"HTTP/1.1 200 ") and b"connection: close" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200 "), second
