"""The 13-digit Thai national ID: format, check digit and the prefixes each section accepts."""

from __future__ import annotations

import operator
import random
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from app.errors import InvalidInput, InvalidNationalId

LENGTH: Final = 13

#: First digits accepted per section (a setting, see DOMAIN.md): 1-8 are Thai or resident
#: categories; 0 is issued to non-Thais and is accepted for Section 40 only.
DEFAULT_PREFIXES: Final[Mapping[int, frozenset[str]]] = MappingProxyType(
    {
        39: frozenset("12345678"),
        40: frozenset("012345678"),
    }
)

# Never valid whatever the setting says: 9 is no card category, 00 no issued number.
_NEVER_PREFIXES: Final = ("9", "00")
_WEIGHTS: Final = tuple(range(LENGTH, 1, -1))  # 13..2, for the first 12 digits
_ZEROS: Final = ord("0") * sum(_WEIGHTS)  # the weighted sum of twelve b"0" bytes


def _is_ascii_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # isdigit alone takes Thai and other digits


def check_digit(first12: str) -> str:
    """The check digit that completes the first 12 digits of a national ID."""
    if len(first12) != LENGTH - 1 or not _is_ascii_digits(first12):
        raise ValueError("check_digit() needs exactly 12 ASCII digits")
    # The official weights are 13..2. Weight 11 (third digit) is 0 modulo 11, and sums of 0
    # and 10 modulo 11 both give 1, so the scheme misses some single-digit typos by design.
    # The digits' bytes less the bytes of "0": the digits' values, without an int() each.
    total = sum(map(operator.mul, first12.encode("ascii"), _WEIGHTS)) - _ZEROS
    return str((11 - total % 11) % 10)


def _any_section(table: Mapping[int, frozenset[str]]) -> frozenset[str]:
    return frozenset(digit for digits in table.values() for digit in digits)


def _refuse(reason: str, message: str, **details: object) -> InvalidNationalId:
    return InvalidNationalId(message, reason=reason, **details)


def validate_national_id(
    raw: str,
    *,
    section: int | None = None,
    prefixes: Mapping[int, frozenset[str]] | None = None,
) -> str:
    """Return ``raw`` if it is a valid national ID for ``section`` (any section when None)."""
    table = DEFAULT_PREFIXES if prefixes is None else prefixes
    if section is not None and section not in table:
        raise InvalidInput(
            f"Section {section} is not a section the gateway serves.",
            field="section",
            section=section,
        )
    if len(raw) != LENGTH:
        raise _refuse(
            "length",
            f"The national ID must be exactly {LENGTH} digits (got {len(raw)} characters).",
            length=len(raw),
        )
    if not _is_ascii_digits(raw):
        raise _refuse("digits", "The national ID must contain only the digits 0-9.")
    if check_digit(raw[:-1]) != raw[-1]:
        raise _refuse("checksum", "The national ID's check digit (the 13th digit) is wrong.")
    if raw.startswith(_NEVER_PREFIXES):
        never = "9" if raw[0] == "9" else "00"
        raise _refuse("prefix", f"A national ID never starts with {never!r}.")
    if section is not None:
        accepted = raw[0] in table[section]
    else:
        accepted = any(raw[0] in digits for digits in table.values())
    if not accepted:
        allowed = table[section] if section is not None else _any_section(table)
        where = f"Section {section}" if section is not None else "any section"
        raise _refuse(
            "prefix",
            f"A national ID starting with {raw[0]!r} is not accepted for {where}.",
            section=section,
            allowed=sorted(allowed),
        )
    return raw


def well_formed_national_id(
    raw: str | None, *, prefixes: Mapping[int, frozenset[str]] | None = None
) -> str | None:
    """``raw`` if it is a valid national ID of any section, else None: what a record may name
    before the request that carried it is judged."""
    if raw is None:
        return None
    try:
        return validate_national_id(raw, prefixes=prefixes)
    except InvalidInput:
        return None


def generate_national_id(rng: random.Random, *, first_digit: str | None = None) -> str:
    """A random national ID that passes ``validate_national_id`` (for tests and demo data)."""
    if first_digit is None:
        first_digit = rng.choice("12345678")
    if first_digit not in DEFAULT_PREFIXES[40]:
        raise ValueError(f"no valid national ID starts with {first_digit!r}")
    second = rng.choice("123456789" if first_digit == "0" else "0123456789")
    body = first_digit + second + "".join(rng.choice("0123456789") for _ in range(10))
    return body + check_digit(body)


def mask_national_id(national_id: str) -> str:
    """A national ID as people write it, middle digits hidden: ``1-1234-xxxxx-xx-1`` (for
    documents that may be shown to others)."""
    if len(national_id) != LENGTH:
        return "x-xxxx-xxxxx-xx-x"
    return f"{national_id[0]}-{national_id[1:5]}-xxxxx-xx-{national_id[12]}"
