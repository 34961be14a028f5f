"""The access line's short way (``FieldsLogger``): the same line as ``logger.info(message,
extra=fields)`` when the gateway's handler is the only one, and the long way whenever anything
else would see the record."""

from __future__ import annotations

import contextvars
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from app.observability.call_context import begin_call
from app.observability.logs import FieldsLogger, JsonFormatter, TurnWrittenHandler

FIELDS = {"protocol": "soap", "operation": "InquireContribution", "outcome": "ok",
          "partner": "ร้านค้า \"7\"\n", "status": 200, "durationMs": 1.25}  # fmt: skip


@pytest.fixture
def parent() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger tree like ``configure_logging``'s: the gateway's handler on the parent only."""
    stream = io.StringIO()
    handler = TurnWrittenHandler(stream)
    handler.setFormatter(JsonFormatter({"worker": 1}))
    top = logging.getLogger("test.fields")
    top.handlers[:] = [handler]
    top.propagate = False
    top.setLevel(logging.INFO)
    yield top, stream
    top.handlers[:] = []
    logging.getLogger("test.fields.access").handlers[:] = []
    logging.getLogger("test.fields.access").filters[:] = []


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    logging.getLogger("test.fields").handlers[0].flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _without_time(line: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in line.items() if key != "time"}


def test_the_short_way_writes_the_line_logging_writes(
    parent: tuple[logging.Logger, io.StringIO],
) -> None:
    _top, stream = parent
    logger = logging.getLogger("test.fields.access")

    def log_both() -> None:  # in a context of its own: the call ends with it
        begin_call("req-1", "soap")
        FieldsLogger(logger, "request").info(FIELDS)
        logger.info("request", extra=FIELDS)

    contextvars.copy_context().run(log_both)
    short, long = _lines(stream)
    assert list(short) == list(long)  # the same keys, in the same order
    assert _without_time(short) == _without_time(long)
    assert short["requestId"] == "req-1" and short["worker"] == 1
    assert short["partner"] == FIELDS["partner"]


def test_another_handler_takes_the_long_way_and_sees_the_record(
    parent: tuple[logging.Logger, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    _top, stream = parent
    logger = logging.getLogger("test.fields.access")
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    logger.addHandler(Keep())
    FieldsLogger(logger, "request").info(FIELDS)
    assert [getattr(record, "operation", None) for record in seen] == ["InquireContribution"]
    assert len(_lines(stream)) == 1  # and the gateway's handler still writes it


def test_a_filter_is_honoured(parent: tuple[logging.Logger, io.StringIO]) -> None:
    _top, stream = parent
    logger = logging.getLogger("test.fields.access")
    logger.addFilter(lambda record: getattr(record, "outcome", None) != "ok")
    FieldsLogger(logger, "request").info(FIELDS)
    FieldsLogger(logger, "request").info({**FIELDS, "outcome": "client.invalid"})
    assert [line["outcome"] for line in _lines(stream)] == ["client.invalid"]


def test_below_the_level_nothing_is_written(parent: tuple[logging.Logger, io.StringIO]) -> None:
    top, stream = parent
    top.setLevel(logging.WARNING)
    FieldsLogger(logging.getLogger("test.fields.access"), "request").info(FIELDS)
    top.handlers[0].setLevel(logging.WARNING)
    top.setLevel(logging.INFO)
    FieldsLogger(logging.getLogger("test.fields.access"), "request").info(FIELDS)
    assert _lines(stream) == []


class _Unwritable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


def test_a_value_json_cannot_write_goes_the_records_way_and_never_raises(
    parent: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    _top, _stream = parent
    errors: list[logging.LogRecord] = []
    monkeypatch.setattr(TurnWrittenHandler, "handleError", lambda _h, r: errors.append(r))
    FieldsLogger(logging.getLogger("test.fields.access"), "request").info(
        {**FIELDS, "odd": _Unwritable()}
    )
    assert len(errors) == 1  # reported as logging reports it, not raised into the request


def test_a_record_factory_of_another_library_takes_the_long_way(
    parent: tuple[logging.Logger, io.StringIO],
) -> None:
    _top, stream = parent
    standard = logging.getLogRecordFactory()

    def traced(*args: object, **kwargs: object) -> logging.LogRecord:
        record = standard(*args, **kwargs)
        record.traceId = "t-1"
        return record

    logging.setLogRecordFactory(traced)
    try:
        FieldsLogger(logging.getLogger("test.fields.access"), "request").info(FIELDS)
    finally:
        logging.setLogRecordFactory(standard)
    assert [line.get("traceId") for line in _lines(stream)] == ["t-1"]


def test_a_value_orjson_will_not_write_is_written_as_the_standard_library_writes_it(
    parent: tuple[logging.Logger, io.StringIO],
) -> None:
    # orjson refuses an integer past 64 bits and a key that is not a string; the line is not
    # lost: the standard library's encoder writes it, compact like every other line.
    _top, stream = parent
    logger = logging.getLogger("test.fields.access")
    FieldsLogger(logger, "request").info({**FIELDS, "status": 2**70})
    logger.info("request", extra={"counts": {1: "one"}})
    logging.getLogger("test.fields").handlers[0].flush()
    big, keyed = stream.getvalue().splitlines()
    assert json.loads(big)["status"] == 2**70
    assert json.loads(keyed)["counts"] == {"1": "one"}
    assert '": ' not in big and '": ' not in keyed  # compact, as orjson writes


def test_dates_and_records_are_written_as_their_text_as_before(
    parent: tuple[logging.Logger, io.StringIO],
) -> None:
    _top, stream = parent
    at = datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC)
    logging.getLogger("test.fields.access").info("seen", extra={"at": at, "day": at.date()})
    (line,) = _lines(stream)
    assert (line["at"], line["day"]) == (str(at), "2026-12-07")
    assert line["message"] == "seen"


@pytest.mark.parametrize("brk", ["\x85", "\u2028", "\u2029"])
def test_a_line_break_json_carries_raw_does_not_split_a_line(
    parent: tuple[logging.Logger, io.StringIO], brk: str
) -> None:
    """U+0085, U+2028 and U+2029 end a line for ``str.splitlines()``; JSON lets a string carry
    them raw and both encoders wrote them so. A client's value holding one, on the access line
    (orjson's way) or in a list (the standard library's), stays on its line, and reads back."""
    top, stream = parent
    logger = logging.getLogger("test.fields.access")
    sent = f'ร้าน{brk}forged"}}'

    def log_all() -> None:
        begin_call("req-1", "soap")
        FieldsLogger(logger, "request").info(FIELDS | {"partner": sent})
        logger.info("request", extra={"partner": [sent]})
        top.info(sent)

    contextvars.copy_context().run(log_all)
    top.handlers[0].flush()
    written = stream.getvalue()
    assert brk not in written
    short, listed, message = _lines(stream)
    assert (short["partner"], listed["partner"], message["message"]) == (sent, [sent], sent)
