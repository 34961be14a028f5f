"""Money as integer satang (1 baht = 100 satang); Decimal only when reading or writing baht."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Final

from app.errors import InvalidAmount

SATANG_PER_BAHT: Final = 100

#: Per-transaction ceiling at a partner counter: 30,000 baht (a setting, see DOMAIN.md).
COUNTER_CEILING_SATANG: Final = 3_000_000

# Far above any real payment; refusing larger numbers keeps "1e999999999" from costing memory.
_MAX_BAHT_DIGITS: Final = 15

_PLAIN_DECIMAL: Final = re.compile(r"\s*\+?(\d+(\.\d*)?|\.\d+)\s*", re.ASCII)


def _refuse(reason: str, message: str) -> InvalidAmount:
    return InvalidAmount(message, reason=reason)


def _from_text(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise _refuse("syntax", "The amount is not a number.") from None
    # NaN, infinities and negatives get their own reasons below; anything else must be plain.
    if value.is_finite() and value >= 0 and _PLAIN_DECIMAL.fullmatch(text) is None:
        raise _refuse("syntax", "The amount must be written as plain baht, such as 1234.50.")
    return value


def to_satang(value: Decimal | str | int) -> int:
    """Baht (at most 2 decimal places, not negative) as integer satang."""
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise _refuse("type", f"The amount must be a number of baht, not {type(value).__name__}.")
    if isinstance(value, str):
        value = _from_text(value)
    elif isinstance(value, int):
        value = Decimal(value)
    if value.is_nan() or value.is_infinite():
        raise _refuse("not_a_number", "The amount is not a finite number.")
    if value < 0:
        raise _refuse("negative", "The amount cannot be negative.")
    if value and value.adjusted() >= _MAX_BAHT_DIGITS:
        raise _refuse("too_large", "The amount is too large.")
    # Exact integer arithmetic on the digits: no Decimal context, so no silent rounding.
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite, checked above
    # Trailing zeros say nothing of the amount ("432.000…" is 432) and are dropped, and the
    # exponent is checked before any power of ten is made: what is left is at most 17 digits
    # times at most 10**16 (Python turns no more than 4,300 digits of text into an int).
    written = "".join(map(str, digits))
    significant = written.rstrip("0")
    if not significant:
        return 0  # zero, whatever its exponent ("0E+99999999" must not cost a power of ten)
    exponent += len(written) - len(significant)
    # The last digit is not 0 now: below the satang place it is a fraction of one. The
    # ceiling checked above bounds the exponent from above.
    if exponent < -2:
        raise _refuse("decimals", "The amount has more than 2 decimal places (below one satang).")
    satang: int = int(significant) * 10 ** (exponent + 2)
    return satang


def to_baht(satang: int) -> Decimal:
    """Integer satang as baht with exactly 2 decimal places."""
    sign = "-" if satang < 0 else ""
    baht, rest = divmod(abs(satang), SATANG_PER_BAHT)
    return Decimal(f"{sign}{baht}.{rest:02d}")


def format_baht(satang: int, *, with_unit: bool = False) -> str:
    """Satang written for people: "1,234.50", or "฿1,234.50" with the unit."""
    sign = "-" if satang < 0 else ""
    baht, rest = divmod(abs(satang), SATANG_PER_BAHT)
    unit = "฿" if with_unit else ""
    return f"{sign}{unit}{baht:,}.{rest:02d}"
