"""The guarded protocol's cuts on a real loopback server: what a request with a head too large
is told does not depend on what the connection carried before it, and is never written into
the midst of another answer nor before one still owed."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn

from app.observability.call_context import BODY_WHOLE
from app.observability.connection_guard import ConnectionGuard, ConnectionLimits
from app.observability.guarded_http import GuardedHttpProtocol, guarded_protocol

MAX_HEAD = 2048


async def _ok(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _render(reason: str, path: str, content_type: str, request_id: str) -> tuple[int, str, bytes]:
    return 431, "text/plain", f"{reason} {path}".encode()


@contextlib.asynccontextmanager
async def _serving(
    app: Callable[..., Any], *, keep_alive_s: float = 5.0, **limits: Any
) -> AsyncIterator[int]:
    guard = ConnectionGuard(ConnectionLimits(**{"max_head_bytes": MAX_HEAD, **limits}))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http=guarded_protocol(guard, answer=_render),
        lifespan="off",
        log_level="warning",
        timeout_keep_alive=keep_alive_s,  # type: ignore[arg-type]
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        yield sock.getsockname()[1]
    finally:
        await server.shutdown()


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async with _serving(_ok) as port:
        yield port


async def _too_large_after(port: int, before: int) -> bytes:
    """The answer to a head past the bound, sent after ``before`` answered requests."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(before):
            writer.write(b"GET /first HTTP/1.1\r\nhost: t\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await reader.readexactly(2) == b"ok"
        writer.write(b"GET /big HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 2 * MAX_HEAD)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize("before", [0, 1], ids=["fresh", "kept-alive"])
async def test_a_head_too_large_is_told_so_on_a_kept_alive_connection_too(
    port: int, before: int
) -> None:
    answer = await _too_large_after(port, before)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:40]
    assert answer.endswith(b"header_too_large /big")


async def _slow(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Half an answer, then the rest a while later."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"6")]}
    )
    await send({"type": "http.response.body", "body": b"abc", "more_body": True})
    await asyncio.sleep(0.2)
    await send({"type": "http.response.body", "body": b"def"})


async def test_a_head_too_large_behind_an_answer_being_written_is_not_written_into_it() -> None:
    big = b"GET /big HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 2 * MAX_HEAD
    async with _serving(_slow) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert await reader.readexactly(3) == b"abc"  # half the answer: the rest comes later
            writer.write(big)  # pipelined, and too large
            async with asyncio.timeout(5):
                rest = await reader.read()
        finally:
            writer.close()
        await asyncio.sleep(0.3)  # the app's last write meets the cut connection
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest == b""  # the connection is cut; no status line in the midst of the body


async def test_the_scope_says_when_the_whole_body_is_in_the_servers_hands() -> None:
    """``BODY_WHOLE`` is in a request's scope once its body has all arrived, not before: a body
    sent with its head is whole when the app begins; one sent later is not, until it comes."""
    seen: list[tuple[bool, bool]] = []

    async def app(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        at_start = bool(scope.get(BODY_WHOLE))
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        seen.append((at_start, bool(scope.get(BODY_WHOLE))))
        await _ok(scope, receive, send)

    head = b"POST /soap HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\n"
    async with _serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(head + b"0123456789")  # with its head
            await reader.readuntil(b"\r\n\r\n")
            assert await reader.readexactly(2) == b"ok"
            writer.write(head + b"01234")  # half now, half later
            await asyncio.sleep(0.2)
            writer.write(b"56789")
            await reader.readuntil(b"\r\n\r\n")
            assert await reader.readexactly(2) == b"ok"
        finally:
            writer.close()
    assert seen == [(True, True), (False, True)]


async def test_a_pipelined_body_still_coming_after_the_answer_before_it_is_read_as_a_body() -> None:
    """A request pipelined behind one being answered, whose body is still arriving when that
    answer is done: what comes next is its body, bound by the body's rules, not counted as a
    head (it was cut as a head too large before) nor left untimed."""
    bodies: dict[str, int] = {}

    async def app(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/first":
            await asyncio.sleep(0.2)  # the second request queues up behind this answer
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        bodies[scope["path"]] = size
        await _ok(scope, receive, send)

    async with _serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /first HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n"
                b"POST /second HTTP/1.1\r\nhost: t\r\ncontent-length: 10000\r\n\r\n" + b"a" * 100
            )
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
            assert await reader.readexactly(2) == b"ok"
            await asyncio.sleep(0.1)
            writer.write(b"a" * 3 * MAX_HEAD)  # more than a head may be: it is body
            await asyncio.sleep(0.1)
            writer.write(b"a" * (10000 - 100 - 3 * MAX_HEAD))
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
                assert await reader.readexactly(2) == b"ok"
        finally:
            writer.close()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
    assert bodies == {"/first": 0, "/second": 10000}


async def _read_then_ok(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Reads the whole body, then answers ``ok``."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await _ok(scope, receive, send)


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """One ``ok`` answer's head and body (or what came before the connection's end)."""
    async with asyncio.timeout(5):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as error:
            return error.partial
        return head + await reader.read(2)


async def test_a_body_and_the_next_head_in_one_read_count_only_the_head_as_head() -> None:
    """The end of a body and the start of the next request's head, arriving in one read: only
    the head's bytes count toward ``max_head_bytes`` (the body's were once counted too, and a
    body of twice the cap cut the next request with a 431)."""
    async with _serving(_read_then_ok) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"POST /soap HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n" % (2 * MAX_HEAD)
            )
            await asyncio.sleep(0.1)  # the head is read alone: the body comes in the next read
            writer.write(b"a" * 2 * MAX_HEAD + b"GET /next HTTP/1.1\r\nhost: t\r\n")
            first = await _answer(reader)
            writer.write(b"\r\n")
            second = await _answer(reader)
        finally:
            writer.close()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"ok"), first
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b"ok"), second


async def test_a_head_too_large_behind_a_queued_request_is_not_written_into_an_answer() -> None:
    """A head too large behind a whole request queued behind an answer being written: no 431
    in that answer's midst (the request looked at was the queued one, which had not begun its
    answer, so the 431 was written into the one being written)."""
    big = b"GET /big HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 2 * MAX_HEAD
    async with _serving(_slow) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /slow HTTP/1.1\r\nhost: t\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert await reader.readexactly(3) == b"abc"  # half the answer: the rest comes later
            writer.write(b"GET /queued HTTP/1.1\r\nhost: t\r\n\r\n" + big)
            async with asyncio.timeout(5):
                rest = await reader.read()
        finally:
            writer.close()
        await asyncio.sleep(0.3)  # the app's last write meets the cut connection
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert rest == b"", rest  # the connection is cut; no status line in the midst of the body


async def _late(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Answers ``ok`` after a while."""
    if scope["type"] == "http":
        await asyncio.sleep(0.3)
        await _ok(scope, receive, send)


async def test_a_head_too_large_behind_a_request_not_yet_answered_is_not_its_answer() -> None:
    """A head too large while the app before it has not begun its answer: no 431 written,
    which the client would take for that request's answer."""
    big = b"GET /big HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 2 * MAX_HEAD
    async with _serving(_late) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /late HTTP/1.1\r\nhost: t\r\n\r\n")
            await asyncio.sleep(0.05)  # the app has begun, and not answered
            writer.write(big)
            async with asyncio.timeout(5):
                rest = await reader.read()
        finally:
            writer.close()
        await asyncio.sleep(0.3)  # the app's answer meets the cut connection
    assert rest == b"", rest


async def test_a_head_too_slow_behind_a_request_not_yet_answered_is_not_told_408() -> None:
    """A head begun while the app before it has not answered, and not finished within the
    head's timeout: cut without a bare 408, which the client would take for that answer."""
    async with _serving(_late, header_timeout_s=0.1) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /late HTTP/1.1\r\nhost: t\r\n\r\nGET /next HTTP/1.1\r\n")
            async with asyncio.timeout(5):
                rest = await reader.read()
        finally:
            writer.close()
        await asyncio.sleep(0.3)  # the app's answer meets the cut connection
    assert rest == b"", rest


async def test_a_head_begun_during_the_answer_before_it_is_timed_as_a_head_not_as_idle() -> None:
    """A head that began while the answer before it was written, and is finished after that
    answer: its head timeout bounds it, not the keep-alive timeout (which closed it silently)."""
    async with _serving(_late, keep_alive_s=0.1) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /late HTTP/1.1\r\nhost: t\r\n\r\nGET /next HTTP/1.1\r\n")
            first = await _answer(reader)
            await asyncio.sleep(0.3)  # past the keep-alive timeout, within the head's
            writer.write(b"host: t\r\n\r\n")
            second = await _answer(reader)
        finally:
            writer.close()
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"ok"), first
    assert second.startswith(b"HTTP/1.1 200 OK\r\n") and second.endswith(b"ok"), second


async def _trickle_cuts(times: int) -> list[bytes]:
    """Bodies whose timer may first fire a fraction of a millisecond before its due time (one
    byte buys 0.25 ms at 4000 bytes a second), then stop: what each client is told. Whether it
    fires before its due time depends on how late the loop wakes: it is tried ``times`` times."""
    answers = []
    async with _serving(_read_then_ok, body_timeout_s=0.05, body_min_rate=4000) as port:
        for _ in range(times):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(b"POST /soap HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\n")
                await asyncio.sleep(0.01)
                writer.write(b"a")
                async with asyncio.timeout(5):
                    answers.append(await reader.read())
            finally:
                writer.close()
    return answers


def test_a_body_timer_due_within_a_millisecond_does_not_spin_under_uvloop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvloop counts whole milliseconds and runs a delay under half of one at once: the body's
    timer, re-armed for what was left of its time, ran again and again until its clock ticked."""
    uvloop = pytest.importorskip("uvloop")
    calls: list[float] = []
    body_due = GuardedHttpProtocol._body_due

    def counted(self: GuardedHttpProtocol) -> None:
        calls.append(self.loop.time())
        body_due(self)

    monkeypatch.setattr(GuardedHttpProtocol, "_body_due", counted)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        answers = runner.run(_trickle_cuts(8))
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 431 "), answer  # _render's status for every cut
        assert answer.endswith(b"body_timeout /soap")
    assert len(calls) <= 2 * len(answers), len(calls)  # at most one re-arm each


async def test_a_head_queued_behind_requests_is_not_timed_while_the_server_stops_reading() -> None:
    """Three pipelined requests, the first one's app slow and not reading: uvicorn stops
    reading behind the second, so the rest of the third's head waits in the socket; its head
    timeout does not run meanwhile (it cut the connection before the first was answered). The
    first answer (0.3 s) takes more than one head timeout and well under the paused span's
    three (0.6 s), which a busy machine must not cross."""
    async with _serving(_late, header_timeout_s=0.2) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"GET /late HTTP/1.1\r\nhost: t\r\n\r\n"
                b"GET /second HTTP/1.1\r\nhost: t\r\n\r\nGET /third HTTP/1.1\r\n"
            )
            await asyncio.sleep(0.01)
            writer.write(b"host: t\r\n\r\n")  # read once the first two are answered
            answers = [await _answer(reader) for _ in range(3)]
        finally:
            writer.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"ok"), answers
