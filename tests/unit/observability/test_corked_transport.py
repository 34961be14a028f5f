"""The corked transport on real loopback sockets: the writes of one event-loop turn leave in one
write of the socket's transport, nothing written is lost or reordered by closing or half-closing,
and an abort drops what is held; served by uvicorn's protocol (as ``ssogw serve`` runs it), an
answer's head and body leave together."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import uvicorn

from app.observability.connection_guard import ConnectionGuard, ConnectionLimits
from app.observability.corked_transport import CorkedTransport
from app.observability.guarded_http import guarded_protocol


class _Spy:
    """The server side's real transport, its writes counted."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.writes: list[bytes] = []
        real = transport.write

        def write(data: Any) -> None:
            self.writes.append(bytes(data))
            real(data)

        transport.write = write  # type: ignore[method-assign]


class _Server(asyncio.Protocol):
    def __init__(self, made: asyncio.Future[tuple[CorkedTransport, _Spy]]) -> None:
        self._made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        spy = _Spy(transport)
        self._made.set_result((CorkedTransport(transport, asyncio.get_running_loop()), spy))


Pair = tuple[CorkedTransport, _Spy, asyncio.StreamReader]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    loop = asyncio.get_running_loop()
    made: asyncio.Future[tuple[CorkedTransport, _Spy]] = loop.create_future()
    server = await loop.create_server(lambda: _Server(made), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    corked, spy = await made
    yield corked, spy, reader
    writer.close()
    server.close()
    corked.abort()


async def _turns(count: int = 2) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_the_writes_of_one_turn_leave_in_one_write_in_order(pair: Pair) -> None:
    corked, spy, reader = pair
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(b"")  # nothing is nothing: no empty write
    corked.writelines([bytearray(b"{"), memoryview(b"}")])
    assert spy.writes == []  # held until the turn's other callbacks have run
    await _turns()
    assert spy.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]
    assert await reader.readexactly(21) == b"HTTP/1.1 200 OK\r\n\r\n{}"
    corked.write(b"next")
    await _turns()
    assert spy.writes[1:] == [b"next"]  # the next turn's writes are a write of their own


async def test_closing_sends_what_is_held_first(pair: Pair) -> None:
    corked, spy, reader = pair
    corked.write(b"last ")
    corked.write(b"words")
    corked.close()
    assert corked.is_closing()
    assert await reader.read() == b"last words"  # then the end of the stream
    assert spy.writes == [b"last words"]
    corked.write(b"after")
    await _turns()
    assert spy.writes == [b"last words"]  # a closing transport is written to no more


async def test_half_closing_sends_what_is_held_first(pair: Pair) -> None:
    corked, _spy, reader = pair
    corked.write(b"answer")
    assert corked.get_write_buffer_size() == len(b"answer")
    corked.write_eof()
    assert await reader.read() == b"answer"


async def test_an_abort_drops_what_is_held(pair: Pair) -> None:
    corked, spy, reader = pair
    corked.write(b"never sent")
    corked.abort()
    await _turns()
    assert spy.writes == []
    with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
        await reader.readexactly(1)


async def test_the_rest_is_the_wrapped_transports(pair: Pair) -> None:
    corked, _spy, _reader = pair
    assert corked.get_extra_info("peername")[0] == "127.0.0.1"
    assert corked.get_extra_info("no such thing", "default") == "default"
    corked.set_write_buffer_limits(high=1 << 20)  # not said by the class: passed through
    corked.pause_reading()
    assert not corked.is_reading()
    corked.resume_reading()
    assert corked.is_reading()


async def _plain_answer(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] != "http":
        return
    body = b'{"status":"ok"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def test_uvicorns_head_and_body_of_an_answer_leave_as_one_write() -> None:
    guard = ConnectionGuard(ConnectionLimits())
    protocol = guarded_protocol(guard)
    writes: list[int] = []
    original = protocol.connection_made

    def counting(self: Any, transport: asyncio.Transport) -> None:
        real = transport.write

        def write(data: Any) -> None:
            writes.append(len(data))
            real(data)

        transport.write = write  # type: ignore[method-assign]
        original(self, transport)

    protocol.connection_made = counting  # type: ignore[method-assign]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sent_when_done: list[int] = []

    async def app(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        await _plain_answer(scope, receive, send)
        sent_when_done.append(len(writes))  # before this task gives the loop another turn

    config = uvicorn.Config(app, http=protocol, lifespan="off", log_level="warning")
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):  # kept alive: every answer one write
            writer.write(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert await reader.readexactly(15) == b'{"status":"ok"}'
        writer.close()
        assert len(writes) == 3
        assert all(size > 15 for size in writes)  # each is the head and the body
        # A complete answer is not held for a turn behind other callbacks: it left with its
        # last byte, before the app's task went on.
        assert sent_when_done == [1, 2, 3]
    finally:
        await server.shutdown()


async def _answer_as_the_client_half_closes() -> bytes:
    """One request on a raw socket whose write side closes while the app answers it."""
    client = socket.socket()

    async def app(scope: Any, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        # The client's end of stream reaches the server as this turn writes the answer (on
        # loopback at once; elsewhere, while a busy turn runs other calls' work).
        client.shutdown(socket.SHUT_WR)
        await _plain_answer(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        http=guarded_protocol(ConnectionGuard(ConnectionLimits())),
        lifespan="off",
        log_level="warning",
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    loop = asyncio.get_running_loop()
    try:
        client.setblocking(False)
        await loop.sock_connect(client, sock.getsockname())
        await loop.sock_sendall(client, b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
        received = b""
        async with asyncio.timeout(5):
            while chunk := await loop.sock_recv(client, 4096):
                received += chunk
        return received
    finally:
        client.close()
        await server.shutdown()


def test_an_answer_leaves_although_the_client_half_closes_as_it_is_written() -> None:
    """Under uvloop (what ``ssogw serve`` runs) a turn's reads run between the app's writes and
    the flush: the client's end of stream read there closes the transport (uvicorn keeps no
    half-open connection), and the answer written before it must leave first, as uncorked."""
    uvloop = pytest.importorskip("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        received = runner.run(_answer_as_the_client_half_closes())
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b'{"status":"ok"}')


async def test_a_write_after_half_closing_is_refused_at_once(pair: Pair) -> None:
    corked, spy, _reader = pair
    corked.write_eof()
    with pytest.raises(RuntimeError, match="write_eof"):  # to the writer, not the loop's log
        corked.write(b"late")
    await _turns()
    assert spy.writes == []
