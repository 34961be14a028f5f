"""XSD simple values on the wire, to and from the service's Python values.

Money is baht on the wire (xs:decimal, ``432.00``) and integer satang in the service; the
conversion is exact (``app.domain.money``), never through float. dateTimes go out with an
explicit +07:00 offset; they come in with ``Z``, an offset or none (read as Asia/Bangkok), and
any number of fractional digits (beyond 6, as .NET's 7, they are cut to microseconds).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Final

from app.domain.calendar import BANGKOK
from app.domain.money import to_satang

_INT: Final = re.compile(r"[+-]?[0-9]{1,10}", re.ASCII)
_DATE: Final = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?", re.ASCII
)
_DATETIME: Final = re.compile(
    r"(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})"
    r"T(?P<H>[0-9]{2}):(?P<M>[0-9]{2}):(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?"
    r"(?P<tz>Z|[+-][0-9]{2}:[0-9]{2})?",
    re.ASCII,
)
_BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}


def parse_int(text: str) -> int:
    """An xs:int."""
    if _INT.fullmatch(text) is None:
        raise ValueError("is not an integer")
    value = int(text)
    if not -(2**31) <= value < 2**31:
        raise ValueError("is out of the range of xs:int")
    return value


def parse_boolean(text: str) -> bool:
    """An xs:boolean: true, false, 1 or 0."""
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise ValueError("is not a boolean (true or false)") from None


def _offset(text: str) -> tzinfo:
    if text == "Z":
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59 or (hours == 14 and minutes):
        raise ValueError("has a time zone offset out of range")
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_date(text: str) -> date:
    """An xs:date (YYYY-MM-DD); a time zone, if written, is accepted and ignored."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError("is not a date (YYYY-MM-DD)")
    if match["tz"]:
        _offset(match["tz"])
    try:
        return date(int(match["y"]), int(match["m"]), int(match["d"]))
    except ValueError:
        raise ValueError("is not a calendar date") from None


def parse_datetime(text: str) -> datetime:
    """An xs:dateTime as an aware datetime; without an offset it is Asia/Bangkok time."""
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise ValueError("is not a dateTime (YYYY-MM-DDThh:mm:ss with an optional offset)")
    zone = _offset(match["tz"]) if match["tz"] else BANGKOK
    micro = int((match["f"] or "0")[:6].ljust(6, "0"))
    try:
        return datetime(
            int(match["y"]),
            int(match["m"]),
            int(match["d"]),
            int(match["H"]),
            int(match["M"]),
            int(match["S"]),
            micro,
            tzinfo=zone,
        )
    except ValueError:
        raise ValueError("is not a valid date and time") from None


def parse_baht(text: str) -> int:
    """An amount in baht (at most 2 decimal places) as integer satang; InvalidAmount if not."""
    return to_satang(text)


def format_baht(satang: int) -> str:
    """Integer satang as baht with exactly 2 decimal places (``str(to_baht(satang))``)."""
    # The text of to_baht's Decimal, without building the Decimal (twenty-odd per answer).
    baht, rest = divmod(abs(satang), 100)
    return f"{'-' if satang < 0 else ''}{baht}.{rest:02d}"


def format_boolean(value: bool) -> str:
    return "true" if value else "false"


def format_date(value: date) -> str:
    return value.isoformat()


def format_datetime(value: datetime) -> str:
    """An instant in Asia/Bangkok with its offset; a naive one is read as Bangkok time."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=BANGKOK)
    return value.astimezone(BANGKOK).isoformat()
