"""SSO receipt numbers: readable, dated, and self-checking.

Format ``RYYMMDD-NNNNNNNN-C``: ``R``, the business date (two-digit year of the 2000s, month,
day), a hyphen, the receipt sequence zero-padded to at least 8 digits (wider, without leading
zeros, once it passes 99,999,999), a hyphen, and a check character from ``0-9A-Z``. The check
character is ISO/IEC 7064 MOD 37,36 over the date and sequence digits, so any one mistyped digit
is caught. Example: ``R240601-00000123-W``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from app.errors import InvalidInput

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD: Final = len(_ALPHABET)  # 36, the check character's range
_SEQUENCE_WIDTH: Final = 8
_PATTERN: Final = re.compile(r"R(\d{2})(\d{2})(\d{2})-(\d{8,})-([0-9A-Z])", re.ASCII)


def check_character(digits: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character of a string of digits."""
    product = _MOD
    for ch in digits:
        step = (product + _ALPHABET.index(ch)) % _MOD or _MOD
        product = step * 2 % (_MOD + 1)
    return _ALPHABET[(_MOD + 1 - product) % _MOD]


def receipt_number(sequence: int, *, business_date: date) -> str:
    """The receipt number for a ledger sequence number issued on ``business_date``."""
    if sequence < 0:
        raise ValueError("a receipt sequence cannot be negative")
    if not 2000 <= business_date.year <= 2099:
        raise ValueError("receipt numbers carry a two-digit year of the 2000s")
    stamp = business_date.strftime("%y%m%d")
    number = f"{sequence:0{_SEQUENCE_WIDTH}d}"
    return f"R{stamp}-{number}-{check_character(stamp + number)}"


def parse_receipt_number(text: str) -> tuple[date, int]:
    """The business date and sequence a receipt number carries; InvalidInput if malformed."""
    match = _PATTERN.fullmatch(text.strip().upper())
    if match is None:
        raise InvalidInput(
            "A receipt number looks like R240601-00000123-W.", field="receipt_no", reason="format"
        )
    yy, mm, dd, number, check = match.groups()
    if len(number) > _SEQUENCE_WIDTH and number.startswith("0"):
        raise InvalidInput(
            "The receipt sequence has extra leading zeros.", field="receipt_no", reason="format"
        )
    try:
        issued = date(2000 + int(yy), int(mm), int(dd))
    except ValueError:
        raise InvalidInput(
            "The receipt number's date is not a calendar date.", field="receipt_no", reason="date"
        ) from None
    if check_character(yy + mm + dd + number) != check:
        raise InvalidInput(
            "The receipt number's check character does not match; it was mistyped.",
            field="receipt_no",
            reason="check",
        )
    return issued, int(number)


def validate_receipt_number(text: str) -> bool:
    """Whether ``text`` is a well-formed receipt number with a matching check character."""
    try:
        parse_receipt_number(text)
    except InvalidInput:
        return False
    return True
