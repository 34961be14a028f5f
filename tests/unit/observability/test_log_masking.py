"""National IDs in what the code does not choose to log: a traceback, an error's message (a
database error quotes the failing row). The formatter masks them in every exception and in
every message of a warning or worse; an info line is written as it is."""

from __future__ import annotations

import json
import logging
import sys

from app.observability.logs import JsonFormatter, mask

NID = "1234567890121"
ROW = f'new row violates check constraint "x". Failing row contains (7, {NID}, 40).'


def _record(level: int, message: str, *, failing: bool = False) -> logging.LogRecord:
    exc_info = None
    if failing:
        try:
            raise RuntimeError(ROW)
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord("test.mask", level, __file__, 1, message, None, exc_info)


def test_an_exception_is_written_with_its_national_ids_masked() -> None:
    line = json.loads(JsonFormatter().format(_record(logging.ERROR, "call failed", failing=True)))
    assert "Failing row contains (7, *************, 40)" in line["exception"]
    assert NID not in json.dumps(line)


def test_a_warning_or_worse_is_written_with_its_national_ids_masked() -> None:
    for level in (logging.WARNING, logging.ERROR, logging.CRITICAL):
        line = json.loads(JsonFormatter().format(_record(level, f"refused: {ROW}")))
        assert NID not in line["message"], level


def test_an_info_line_is_written_as_it_is() -> None:
    line = json.loads(JsonFormatter().format(_record(logging.INFO, "receipt 12345678901234")))
    assert line["message"] == "receipt 12345678901234"


def test_mask_takes_thirteen_digits_alone_and_nothing_longer() -> None:
    assert mask(f"id {NID}.") == "id *************."
    assert mask("12345678901234 and 123456789012") == "12345678901234 and 123456789012"


def test_an_id_next_to_a_digit_of_another_script_is_masked() -> None:
    # ``\d`` is every script's digit: a Thai digit before or after an ID made a run of 14, and
    # the ID was written out whole.
    for text in (f"๑{NID}", f"{NID}๙", f"٣{NID}"):
        assert NID not in mask(text), text
    assert mask(f"x{NID}1") == f"x{NID}1"  # 14 ASCII digits: not an ID
    assert mask("๓๑๐๐๖๐๐๔๔๕๖๓๕") == "*************"  # an ID in Thai digits
