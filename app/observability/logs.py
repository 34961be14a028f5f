"""Structured JSON logs: one object per line, with the request id of the call being handled.

National IDs never go into ordinary log lines. What the code logs names none; what it does not
choose, a traceback or an error's text (a database error quotes the failing row: "Failing row
contains (…, 1234567890123, …)"), is masked by the formatter: every exception, and the message
of every warning or worse. The request's own line (``FieldsLogger``) is not looked through: it
is built from fields that never hold an ID, and it is written for every call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import orjson

from app.free_text import one_line
from app.observability.call_context import current_call

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


_json_line = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
# What orjson is handed: a line whose every value is one of these (the access line, and most
# lines). orjson writes them as the standard library does and runs no Python code doing it.
# A container, or any other value, goes the standard library's way: orjson walks a dict or a
# list by borrowed references, and Python code run half-way (a ``default=``, a dataclass's
# ``__repr__``, an Enum's ``value``) may change it, in this thread or another: orjson then
# reads freed memory, and the process dies of a segmentation fault or writes garbage
# (tests/unit/observability/test_s22_orjson_attacks.py). The standard library's encoder copies
# a dict's items and re-reads a list's length: it writes a line either way.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(entry: dict[str, Any]) -> str:
    """``entry`` as one compact JSON line, UTF-8 text unescaped but for three line breaks
    (``one_line``). orjson writes the access line in 0.53 µs against the standard library's
    4.35 (bench/RESULTS.md, session 22); the look at its values first costs about as much
    again (1.3 µs against 0.75 without it, and 4.7 for the standard library's, measured on a
    loaded host in session 22). orjson writes a line whose every value is a string, number,
    boolean or None (``_PLAIN``); what it will not write (an integer past 64 bits, a key that
    is not a string, a lone surrogate) and every other value the standard library writes, as
    before. One value comes out otherwise than before: a float that is not finite as null (it
    was NaN or Infinity, which is not JSON)."""
    if _PLAIN.issuperset(map(type, entry.values())):
        try:
            return one_line(orjson.dumps(entry).decode())
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return one_line(_json_line(entry))


# Thirteen ASCII digits not next to another ASCII digit (a digit of another script beside them,
# which ``\d`` also is, does not make them something else), or thirteen digits of any script.
_NATIONAL_ID = re.compile(r"(?<![0-9])[0-9]{13}(?![0-9])|(?<!\d)\d{13}(?!\d)")


def mask(text: str) -> str:
    """``text`` with anything shaped like a national ID (13 digits) masked, for log lines."""
    return _NATIONAL_ID.sub("*************", text)


_PLAIN_FIELDS = len(_RESERVED - {"message", "asctime", "color_message"})


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object; extra fields given with ``extra=`` are kept, and
    ``fields`` are on every line.

    Every request writes a line, so a line costs a few microseconds: the time's whole second
    is written once per second, and a record's own attributes are looked through only when
    it carries extra fields.
    """

    def __init__(self, fields: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._fields = dict(fields or {})
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        """``created`` as ISO 8601 in UTC to the millisecond (``isoformat``'s
        ``timespec="milliseconds"``)."""
        second = int(created)
        if second != self._second:
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"

    def entry(self, created: float, level: str, logger: str, message: str) -> dict[str, Any]:
        """What every line begins with: the time, level, logger and message, the request id
        of the call being handled, and this formatter's own fields."""
        entry: dict[str, Any] = {
            "time": self._time(created),
            "level": level,
            "logger": logger,
            "message": message,
        }
        call = current_call()
        if call is not None:
            entry["requestId"] = call.request_id
        if self._fields:
            entry.update(self._fields)
        return entry

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = mask(message)
        entry = self.entry(record.created, record.levelname.lower(), record.name, message)
        attributes = record.__dict__
        if len(attributes) > _PLAIN_FIELDS:  # extra= fields (or a formatter's own)
            # A record's own attributes come first, all of them (LogRecord.__init__ sets
            # each), so only those after them are looked at: extra= fields, in their order.
            for key, value in islice(attributes.items(), _PLAIN_FIELDS, None):
                if key not in _RESERVED:
                    entry[key] = value
        if record.exc_info:
            entry["exception"] = mask(self.formatException(record.exc_info))
        return _encode(entry)


class TurnWrittenHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the lines of one turn of the event loop in one write.

    Every request logs a line, and a write (and flush) of its own costs a system call each:
    lines logged on the loop's thread are held and written together once the turn's other
    callbacks have run (``loop.call_soon``), a turn later at most. A line logged where no loop
    runs (another thread, start-up, shutdown) is written at once, after what is held, so the
    lines keep their order. ``logging.shutdown()`` flushes what is still held at exit; a
    process killed outright loses at most the lines of its last turn.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._held: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.emit_line(line)

    def emit_line(self, line: str) -> None:
        """Write ``line`` (already formatted) as ``emit`` writes a record's; the caller holds
        the handler's lock, as ``Handler.handle`` does around ``emit``."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: at once, behind what is held
            self._held.append(line)
            self.flush()
            return
        if not self._held:
            loop.call_soon(self.flush)
        self._held.append(line)

    def flush(self) -> None:
        """Write what is held, as one write, and flush the stream."""
        self.acquire()
        try:
            held, self._held = self._held, []
            if held:
                held.append("")
                self.stream.write("\n".join(held))
            self.stream.flush()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": "log lines not written"}))
        finally:
            self.release()


def configure_logging(level: str = "INFO", *, worker: int | None = None) -> None:
    """Send every log line to stderr as JSON (the gateway's and uvicorn's); ``worker``: the
    index of this process in a group of workers (``ssogw serve --workers``), on every line."""
    handler = TurnWrittenHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(None if worker is None else {"worker": worker}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Process, thread and multiprocessing names are never written (they are LogRecord
    # attributes, left out above); not collecting them saves system calls on every line.
    logging.logProcesses = False
    logging.logThreads = False
    logging.logMultiprocessing = False
    # Nor the source file and line of each call (a walk up the stack per line): the logger's
    # name says where a line comes from. The logging HOWTO's "Optimization" names this switch.
    logging._srcfile = None
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our middleware logs each request


class FieldsLogger:
    """``logger.info(message, extra=fields)`` for a line written on every request, at the cost
    of formatting it.

    A log call builds a ``LogRecord`` (some thirty attributes) before its handler formats it:
    the access line cost 9.4 µs that way and costs 5.6 µs this way (measured). When the only
    handler the record would reach is the gateway's own (``configure_logging``: one
    ``TurnWrittenHandler`` with its ``JsonFormatter``, no filters), and records are made the
    standard way (no record factory or logger class of another library), the line is
    formatted from the fields and handed to that handler directly, exactly as the record would
    have been; otherwise (a test's capture handler, a filter, another handler), or when a
    value cannot be written as JSON, the call goes through ``logger.info`` as before. Fields
    named as a record's own attributes are left out (``logger.info`` would refuse them).
    """

    __slots__ = ("_logger", "_message", "_name")

    def __init__(self, logger: logging.Logger, message: str) -> None:
        self._logger = logger
        self._message = message
        self._name = logger.name

    def _sole_handler(self) -> TurnWrittenHandler | None:
        """The gateway's handler, when it is the only one an INFO record would reach."""
        logger: logging.Logger | None = self._logger
        if self._logger.disabled or self._logger.filters:
            return None
        if type(self._logger) is not logging.Logger or (
            logging.getLogRecordFactory() is not logging.LogRecord
        ):
            return None  # a record made otherwise may carry more than the fields
        found: logging.Handler | None = None
        while logger is not None:
            for handler in logger.handlers:
                if found is not None or handler.level > logging.INFO:
                    return None  # a second handler (or one this record does not reach)
                found = handler
            logger = logger.parent if logger.propagate else None
        if (
            type(found) is TurnWrittenHandler
            and not found.filters
            and type(found.formatter) is JsonFormatter
        ):
            return found
        return None

    def info(self, fields: dict[str, Any]) -> None:
        """Log the message with ``fields`` at INFO, as ``logger.info(message, extra=fields)``."""
        if not self._logger.isEnabledFor(logging.INFO):
            return
        handler = self._sole_handler()
        if handler is None:
            self._logger.info(self._message, extra=fields)
            return
        formatter = handler.formatter
        assert isinstance(formatter, JsonFormatter)  # _sole_handler checked its type
        created = time.time()
        handler.acquire()  # as Handler.handle holds it around the formatting and the write
        try:
            try:
                entry = formatter.entry(created, "info", self._name, self._message)
                for key, value in fields.items():
                    if key not in _RESERVED:
                        entry[key] = value
                line = _encode(entry)
            except Exception:
                line = None  # a value JSON cannot write: the record's way reports it
            if line is not None:
                handler.emit_line(line)
        finally:
            handler.release()
        if line is None:
            self._logger.info(self._message, extra=fields)
