"""A transport that sends what one turn of the event loop wrote to it as one ``send()``.

uvicorn writes a response in two calls, the status line and headers when the app starts its
answer and the body when it sends it, and the event loop's transport tries each write on the
socket at once: two system calls and two TCP segments for an answer of a few hundred bytes.
Corked, writes are held and sent as one: by ``flush()``, which the HTTP protocol calls as soon
as an answer is complete (``GuardedHttpProtocol.on_response_complete``), so a whole answer leaves
in one segment at the moment its last byte is written; writes that do not complete an answer
(a streamed body's chunks, ``100 Continue``) leave when the turn's other callbacks have run
(``loop.call_soon``), a turn later at most.

Closing, half-closing (``write_eof``) and handing the transport on send what is held first, so
nothing written is lost or reordered; ``abort`` drops it, as it drops the transport's own buffer.
A transport that closes itself (the peer's end of stream) does so past this class: its protocol
flushes first (``GuardedHttpProtocol.eof_received``).
Everything else is the wrapped transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CorkedTransport:
    """``transport`` with its writes held and joined into one (module docstring)."""

    __slots__ = ("_eof", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._eof = False

    @property
    def wrapped(self) -> asyncio.Transport:
        """The transport underneath."""
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Hold ``data`` until ``flush()``, or the end of this turn of the loop."""
        if self._eof:  # refused now, as the transport would: not later, in the flush
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self.flush)
        self._held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        """Hold each of ``lines``."""
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what is held, as one write (nothing once the transport is closing)."""
        held = self._held
        if not held:
            return
        self._held = []
        if not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def write_eof(self) -> None:
        """Send what is held, then half-close."""
        self.flush()
        self._eof = True
        self._transport.write_eof()

    def close(self) -> None:
        """Send what is held, then close (the transport sends its buffer before it closes)."""
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        """Drop what is held and close at once."""
        self._held = []
        self._transport.abort()

    def is_closing(self) -> bool:
        """Whether the transport is closing or closed."""
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        """Bytes held here and in the transport's own buffer."""
        return sum(map(len, self._held)) + self._transport.get_write_buffer_size()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The transport's ``get_extra_info``."""
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        """The transport's ``pause_reading``."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        """The transport's ``resume_reading``."""
        self._transport.resume_reading()

    def __getattr__(self, name: str) -> Any:
        """What this class does not say is the transport's (``set_write_buffer_limits``...)."""
        return getattr(self._transport, name)
