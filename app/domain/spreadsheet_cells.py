"""Cells a spreadsheet shows as text and never runs: the one rule for every CSV the gateway writes.

A spreadsheet that opens a CSV runs a cell that starts like a formula (``=HYPERLINK(...)``,
``+cmd|...``, ``-2+3``, ``@SUM(...)``, or a tab or carriage return before one), so a partner's
``operatorId`` or a person's name could act on an auditor's machine. Following the OWASP
guidance on CSV injection, such a cell gets a leading apostrophe, which makes the spreadsheet
show the text as it is. A plain number (``-12.50``) is no formula and is left alone, so amounts
stay numbers.

The gateway reads its own CSV files back (settlement files): ``unescape_cell`` removes the one
apostrophe ``escape_cell`` added, so a value survives the round trip exactly. For that, a value
that already reads as escaped (apostrophes, then a formula's start: ``'=1``, ``''-T``) gets one
more apostrophe too, and reading takes one off any such cell. The partner
feed's CSV is written by PostgreSQL; ``FORMULA_SQL_CLASS`` is the same rule as a regular
expression class for that query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
FORMULA_SQL_CLASS: Final = "[=+@\\t\\r-]"  # FORMULA_START, for a PostgreSQL E'' regex
_PLAIN_NUMBER: Final = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
_LOOKS_ESCAPED: Final = re.compile(r"'+[=+@\t\r-]")  # apostrophes, then a FORMULA_START


def escape_cell(value: object) -> str:
    """``value`` as CSV cell text that no spreadsheet runs (None is the empty cell)."""
    text = "" if value is None else str(value)
    if _LOOKS_ESCAPED.match(text):  # already looks escaped: escaped again, so reading is exact
        return "'" + text
    if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def escape_row(values: Iterable[object]) -> list[str]:
    """A row of cells, each through ``escape_cell``."""
    return [escape_cell(value) for value in values]


def unescape_cell(text: str) -> str:
    """A cell as ``escape_cell`` was given it: the apostrophe it added removed."""
    return text[1:] if _LOOKS_ESCAPED.match(text) else text
