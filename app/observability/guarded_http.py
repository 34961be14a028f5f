"""uvicorn's HTTP/1.1 protocol (httptools), with the caps and read timeouts that keep one slow or
greedy client from holding the server (``ssogw serve`` runs it).

A connection goes through phases, each with at most one timer (a handle on the event loop, so
thousands of idle sockets cost a protocol object and a timer each, nothing more):

- **head**: from the connection (or, on a kept-alive one, the first byte of the next request)
  to the end of the headers, at most ``header_timeout_s``, after which the connection is cut
  (with a bare 408 if a request had begun). The request line and headers may not pass
  ``max_head_bytes`` either (uvicorn's parser has no bound of its own): past it, the client is
  answered 431 and cut. While a request before the cut one is still being answered, the cut
  is silent: words then would be read as that request's answer, or land in its midst (and
  uvicorn's 400 for bytes it cannot parse is not written). As for a body, time during which
  the server stopped reading (requests queued before it) does not count, up to
  ``_PAUSED_HEAD_SPAN`` head timeouts in all;
- **body**: the body has ``body_timeout_s`` of grace after the headers, and every
  ``body_min_rate`` bytes that arrive buy a second more; time during which the server itself
  stopped reading (the app has not taken what came) does not count. Past it, the connection is
  cut, after an answer if the app had not answered yet. An answer the app gives before the body
  is whole (413, 415) ends the connection, the rest unread, and says ``connection: close``;
- **app**: the request is whole and the app is answering: no timer here;
- **idle**: between requests on a kept-alive connection, uvicorn's own keep-alive timeout.

Answers are rendered by the composition root in the caller's protocol (a SOAP Fault on /soap,
problem+json elsewhere). After answering a client that is still sending (headers without end),
what it sends is read and dropped for ``LINGER_S``, so that the answer is not lost to a reset;
whatever a cut connection still has to write is dropped then (at once, if nothing is to be
told), and an app that waited for the client to read is let go at the cut. No WebSocket
upgrade: uvicorn's switch of protocol would take a connection out of the guard. Connections
over a cap are closed when accepted (``connection_guard``); every cut is counted and logged
there.
"""

from __future__ import annotations

import asyncio
import http
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from app.observability.call_context import BODY_WHOLE
from app.observability.connection_guard import ConnectionGuard
from app.observability.corked_transport import CorkedTransport

#: (reason, path, request content type, request id) -> (status, content type, body): the
#: answer to a request cut for ``body_timeout`` or ``header_too_large``, in the caller's protocol.
CutAnswer = Callable[[str, str, str, str], tuple[int, str, bytes]]

_BARE_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
#: After an answer to a client still sending: how long its bytes are read and dropped, so that
#: closing with them unread (a reset) does not destroy the answer before the client reads it.
LINGER_S = 2.0
#: The shortest wait a timer is re-armed for: uvloop counts whole milliseconds and runs a delay
#: under half of one at once, so a shorter one would run again and again until its clock ticks.
_RETRY_S = 0.001
#: A head behind answers the client does not read may wait this many head timeouts in all:
#: time with reading paused is not the client's, until it has held the connection this long.
_PAUSED_HEAD_SPAN = 3


@dataclass(frozen=True, slots=True)
class _Binding:
    guard: ConnectionGuard
    answer: CutAnswer | None


class _Phase(Enum):
    HEAD = "head"
    BODY = "body"
    APP = "app"
    IDLE = "idle"
    LINGER = "linger"  # answered and cut: what still comes is dropped


class GuardedHttpProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with connection caps, head and body timeouts (module docstring)."""

    binding: ClassVar[_Binding]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard = self.binding.guard
        self._address = ""
        self._kept = False
        self._corked: CorkedTransport | None = None
        self._current: RequestResponseCycle | None = None  # the request whose app runs
        self._phase = _Phase.HEAD
        self._timer: asyncio.TimerHandle | None = None
        self._begun = False  # a byte of the current request has arrived
        self._head_since = self._head_began = 0.0
        self._head_bytes = 0
        self._read_body = 0  # bytes of the read being parsed that were a body's
        self._head_from = 0  # where in that read the head in progress begins, as far as known
        self._body_since = 0.0
        self._body_bytes = 0

    # --- the connection ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        refused = self.guard.admit(self._address)
        if refused is not None:
            transport.abort()  # before a byte is read: no buffers, no protocol state
            self.guard.cut(self._address, refused)
            return
        self._kept = True
        # uvicorn writes an answer's head and body apart: corked, they leave in one send (when
        # the answer is complete, ``on_response_complete``).
        self._corked = CorkedTransport(transport, self.loop)
        super().connection_made(self._corked)  # type: ignore[arg-type]
        self._expect_head()  # timed from now: a connection that never sends is cut too
        self._start_timer(self.guard.limits.header_timeout_s, self._head_due)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._kept:
            return  # refused when accepted: never counted, never registered with uvicorn
        self._kept = False
        self._stop_timer()
        self.guard.release(self._address)
        super().connection_lost(exc)

    def eof_received(self) -> None:
        # The transport closes itself once this returns (uvicorn keeps no half-open connection),
        # past the cork: what it holds leaves first. Under uvloop a turn's reads run between
        # the app's writes and the flush, so an answer may be held when the client's end comes.
        if self._corked is not None:
            self._corked.flush()
        super().eof_received()

    def data_received(self, data: bytes) -> None:
        if self._phase is _Phase.LINGER:
            return
        if self._phase is _Phase.IDLE:
            self._expect_head()  # the next request on a kept-alive connection begins
        self._begun = True
        if self._phase is _Phase.BODY:
            self._body_bytes += len(data)
        self._read_body = self._head_from = 0
        super().data_received(data)
        if not self._kept or self.transport.is_closing():
            return
        # Timers start only for what this chunk left unfinished: a request that arrives whole
        # in one read (most of them) never sets one.
        if self._phase is _Phase.HEAD:
            # Only this read's bytes from where the head began: not the end of a body before it
            # (a body's framing, or whole requests before it in the read, still count).
            self._head_bytes += len(data) - self._head_from
            if self._head_bytes > self.guard.limits.max_head_bytes:
                answer = self._answer("header_too_large")
                if not answer and self._unanswered() is None:
                    answer = _BARE_408  # no renderer (never words before or in another answer)
                self._cut("header_too_large", answer, linger=True)
            elif self._timer is None:
                due = self._head_since + self.guard.limits.header_timeout_s - self.loop.time()
                self._start_timer(due, self._head_due)
        elif self._phase is _Phase.BODY and self._timer is None:
            self._start_timer(self.guard.limits.body_timeout_s, self._body_due)
            _closing_if_early(self.cycle)  # its app runs after this read, its body to come

    # --- parser callbacks ----------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase is not _Phase.HEAD:  # a pipelined request behind one being answered
            self._stop_timer()
            self._expect_head()
            self._head_from = self._read_body  # what this read gave a body before is no head

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._read_body += len(body)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.pipeline:  # queued behind the request being answered: uvicorn stops reading
            self._phase = _Phase.APP
            self._stop_timer()
            return
        self._stop_timer()
        self._phase = _Phase.BODY
        self._body_since = self.loop.time()
        self._body_bytes = 0

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _Phase.APP
        self._stop_timer()
        self.scope[BODY_WHOLE] = True  # type: ignore[typeddict-unknown-key]

    def on_response_complete(self) -> None:
        # The answer's last write is done: it leaves now, with the head the cork held, not a
        # turn later behind every callback queued meanwhile.
        if self._corked is not None:
            self._corked.flush()
        # The pipelined request uvicorn starts now, if one waits behind this answer.
        queued = self.pipeline[-1][0] if self.pipeline else None
        paused = self.flow.read_paused  # uvicorn reads again now
        super().on_response_complete()
        if self._phase is _Phase.HEAD:
            # The next head began while this answer was written: its own timer bounds it, not
            # the keep-alive timeout uvicorn has just armed (made for a connection at rest).
            self._unset_keepalive_if_required()
            if paused and not self.transport.is_closing():
                self._restart_head()  # the rest of it was left unread until now
        elif self._phase is _Phase.BODY:
            # Answered before the body was whole (too large, too slow for the endpoint's own
            # bound): the rest is not read, the connection ends with the answer.
            self._stop_timer()
            self.transport.close()
        elif self._phase is not _Phase.APP or self.transport.is_closing():
            return
        elif queued is not None and queued.more_body:
            # A pipelined request whose body was still coming when uvicorn stopped reading:
            # now read again, what comes is its body, timed from now as a body.
            self._phase = _Phase.BODY
            self._body_since = self.loop.time()
            self._body_bytes = 0
            self._start_timer(self.guard.limits.body_timeout_s, self._body_due)
            _closing_if_early(queued)
        elif queued is None:
            self._phase = _Phase.IDLE  # uvicorn's keep-alive timer runs now
            self._begun = False

    # --- timers --------------------------------------------------------------------------------
    def _expect_head(self) -> None:
        self._phase = _Phase.HEAD
        self._head_since = self._head_began = self.loop.time()
        self._head_bytes = 0

    def _head_due(self) -> None:
        self._timer = None
        spent = self.loop.time() - self._head_began
        if self.flow.read_paused and spent < _PAUSED_HEAD_SPAN * self.guard.limits.header_timeout_s:
            self._restart_head()  # the server stopped reading, not the client: start afresh
            return
        told = self._begun and self._unanswered() is None  # else it would be another's answer
        self._cut("header_timeout", _BARE_408 if told else b"")

    def _restart_head(self) -> None:
        # Behind queued requests uvicorn stops reading: the rest of the head waits unread.
        self._head_since = self.loop.time()
        self._start_timer(self.guard.limits.header_timeout_s, self._head_due)

    def _body_due(self) -> None:
        self._timer = None
        now = self.loop.time()
        if self.flow.read_paused:  # the server stopped reading, not the client: start afresh
            self._body_since, self._body_bytes = now, 0
        limits = self.guard.limits
        due = self._body_since + limits.body_timeout_s + self._body_bytes / limits.body_min_rate
        if now < due:
            self._start_timer(max(due - now, _RETRY_S), self._body_due)
            return
        self._cut("body_timeout", self._answer("body_timeout"))

    def _answer(self, reason: str) -> bytes:
        """The answer to a request cut for ``reason``, unless the app has begun its own or a
        request before it is still to be answered (the client would take it for that one's)."""
        answer = self.binding.answer
        # A body's request is the one being answered; a head's has no cycle yet, so an unanswered
        # one is a request before it.
        cycle = self._unanswered()
        if answer is None or (
            cycle is not None and (self._phase is not _Phase.BODY or cycle.response_started)
        ):
            return b""
        # The path as far as it came (a request line cut short is still a path to go by).
        path = getattr(self, "url", b"").partition(b"?")[0].decode("latin-1")
        content_type = dict(self.headers or []).get(b"content-type", b"").decode("latin-1")
        request_id = os.urandom(16).hex()
        status, media_type, body = answer(reason, path, content_type, request_id)
        if cycle is not None:
            # The app still waits for the body: it learns the client went, and answers no one.
            cycle.response_started = cycle.disconnected = True
            cycle.message_event.set()
        phrase = http.HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {phrase}\r\ncontent-type: {media_type}\r\n"
            f"content-length: {len(body)}\r\nx-request-id: {request_id}\r\n"
            "connection: close\r\n\r\n"
        )
        return head.encode("latin-1") + body

    def _unanswered(self) -> RequestResponseCycle | None:
        """The request being answered (its app runs), unless its answer is complete."""
        cycle = self._current
        return cycle if cycle is not None and not cycle.response_complete else None

    def _should_upgrade_to_ws(self) -> bool:
        # The gateway serves no WebSocket: an upgrade is answered as the plain request it also
        # is. uvicorn's switch of protocol would take the connection out of the guard, and
        # its slot would never be released (connection_lost is the WebSocket protocol's then).
        return False

    def _unsupported_upgrade_warning(self) -> None:
        pass  # not two warnings a request, for any client to fill the log with

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        self._current = cycle  # uvicorn runs one request's app at a time, in order
        super()._start_asgi_task(cycle, app)

    def _start_timer(self, delay_s: float, callback: Callable[[], None]) -> None:
        self._stop_timer()
        self._timer = self.loop.call_later(delay_s, callback)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _cut(self, reason: str, last_words: bytes, *, linger: bool = False) -> None:
        self._stop_timer()
        if self.transport.is_closing():
            return
        self.guard.cut(self._address, reason)
        self._forsake_unanswered()
        if not last_words and not linger:  # what is still written (cut short) is no one's now
            self._end()
            return
        if last_words:
            self.transport.write(last_words)
        if linger:
            self.transport.write_eof()  # once the answer is out; the client's bytes are dropped
            self._phase = _Phase.LINGER
            self.flow.resume_reading()
        else:  # nothing of the client's is waiting unread: a plain close
            self.transport.close()
        self._start_timer(LINGER_S, self._end)

    def _forsake_unanswered(self) -> bool:
        """Whether a request is still being answered; it is told no one hears it any more, and
        an app waiting for the client to read its answer goes on."""
        unanswered = self._unanswered()
        if unanswered is not None:
            unanswered.disconnected = True
            unanswered.message_event.set()
        self.flow.resume_writing()
        return unanswered is not None

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to bytes it cannot parse. Behind a request still being answered the
        # client would take it for that answer: the connection ends without a word then.
        if self._forsake_unanswered():
            self._end()
            return
        super().send_400_response(msg)
        self._start_timer(LINGER_S, self._end)  # a client that does not read it is let go

    def _end(self) -> None:
        """The connection's end after a cut: what is still written waits for a client that
        has not read it for ``LINGER_S`` (a close would wait for it as long as it likes)."""
        self._timer = None
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()


def _closing_if_early(cycle: RequestResponseCycle) -> None:
    """An answer the app begins while ``cycle``'s body is still arriving says ``connection:
    close`` (uvicorn writes it for a cycle not kept alive): the connection ends with it, the
    rest of the body unread (``on_response_complete``). Set only for a request whose body was
    not whole at the end of a read, so the calls that arrive in one read pay nothing."""
    send = cycle.send

    async def closing_send(message: ASGISendEvent) -> None:
        if cycle.more_body and not cycle.response_started:
            cycle.keep_alive = False
        await send(message)

    cycle.send = closing_send  # type: ignore[method-assign]


def guarded_protocol(
    guard: ConnectionGuard, *, answer: CutAnswer | None = None
) -> type[GuardedHttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, bound to ``guard``; ``answer``
    renders what a cut request is told (else a bare 408)."""
    return type("GuardedHttp", (GuardedHttpProtocol,), {"binding": _Binding(guard, answer)})
