"""How values look on the wire: camelCase fields, baht as exact decimals, months as YYYY-MM.

Amounts travel in baht with two decimal places (``"432.00"``). Answers write them as strings;
requests may send a string or a JSON number, both read exactly as ``Decimal`` (never float) and
turned into integer satang by the domain's ``to_satang``, whose rules a string's text meets too.

Everything else a request sends is read as written, never coerced: a date is a ``YYYY-MM-DD``
string (not a number of seconds, not a date and time), an instant an RFC 3339 string with its
offset, a whole number a JSON integer (not ``39.0``, ``"39"`` or ``true``) and in a query or a
path ASCII digits (not ``+40``, ``4_0`` or ``40.0``), a flag ``true`` or ``false``. pydantic's
lax mode would take all of those, and a counter's clock sent as a bare number would be read as
UTC seconds without a word.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from fastapi import Query, Request
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from app.domain.money import to_baht, to_satang
from app.errors import InvalidAmount

_DATE_TEXT: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_INSTANT_TEXT: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


def _date_text(value: Any) -> Any:
    """A date as written: ``YYYY-MM-DD`` text (or a date, from Python callers)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        return value
    raise PydanticCustomError("date_text", "Input should be a date written YYYY-MM-DD, as text")


def _instant_text(value: Any) -> Any:
    """An instant as written: RFC 3339 text with its offset (or a datetime, from Python)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _INSTANT_TEXT.fullmatch(value):
        return value
    raise PydanticCustomError(
        "instant_text",
        "Input should be a date and time with its offset, as text"
        " (RFC 3339, such as 2024-06-12T09:31:05+07:00)",
    )


def whole_number(value: Any) -> Any:
    """A whole number as written: a JSON integer (JSON's true and false are not numbers)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise PydanticCustomError("whole_number", "Input should be a whole number (a JSON integer)")


_DIGITS: Final = re.compile(r"[0-9]{1,19}", re.ASCII)


def digits(value: Any) -> Any:
    """A whole number in a query or a path as written: ASCII digits, nothing else (not
    ``+40``, ``" 40"``, ``4_0`` nor ``40.0``, which pydantic's lax mode reads as 40)."""
    if isinstance(value, int) and not isinstance(value, bool):  # a default, from Python
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise PydanticCustomError("digits", "Input should be a whole number written in digits 0-9")


#: A whole number of a query or a path, read as written (``digits``).
Digits = BeforeValidator(digits)

#: Request fields: read as written (the module's docstring).
DateIn = Annotated[date, BeforeValidator(_date_text)]
InstantIn = Annotated[AwareDatetime, BeforeValidator(_instant_text)]
WholeIn = Annotated[int, BeforeValidator(whole_number)]
FlagIn = Annotated[bool, Strict()]
SectionNo = Annotated[Literal[39, 40], BeforeValidator(whole_number)]
SectionQuery = Annotated[
    int | None, Query(ge=39, le=40, description="Section 39 or 40.", examples=[40]), Digits
]
SectionOut = Annotated[int, Field(json_schema_extra={"enum": [39, 40]}, examples=[40])]
ReadPathName = Annotated[
    str,
    Field(
        json_schema_extra={"enum": ["replica", "primary"]},
        description="The store that served the read.",
        examples=["replica"],
    ),
]
MemberStatus = Annotated[
    str,
    Field(json_schema_extra={"enum": ["active", "terminated", "inactive"]}, examples=["active"]),
]

Baht = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+\.[0-9]{2}$",
        description="Baht with exactly two decimal places, as a string.",
        examples=["432.00"],
    ),
]

#: The type of the validation error of an amount the domain refuses (``_read_baht``).
AMOUNT_ERROR = "invalid_amount"


def _read_baht(value: Any) -> Any:
    """An amount as the domain reads it, text included: pydantic's Decimal would also take
    Thai or full-width digits, ``4_32``, exponents and a trailing no-break space. What the
    domain refuses is a validation error of type ``invalid_amount`` naming the field, so it is
    answered after the caller's admission like every other unreadable request
    (``app.rest.caller``). Anything else is left to pydantic's Decimal to refuse."""
    if isinstance(value, str | Decimal | int) and not isinstance(value, bool):
        try:
            return to_baht(to_satang(value))
        except InvalidAmount as refused:
            reason = refused.details["reason"]
            raise PydanticCustomError(AMOUNT_ERROR, refused.message, {"reason": reason}) from None
    return value


BahtIn = Annotated[
    Decimal,
    BeforeValidator(_read_baht),
    Field(
        description='Baht with at most two decimal places: a string such as "432.00" or a'
        " JSON number, read exactly.",
        examples=["432.00"],
    ),
]
MonthText = Annotated[
    str,
    Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="A month, YYYY-MM.", examples=["2024-06"]),
]
MonthIn = Annotated[
    str, Field(max_length=20, description="A month, YYYY-MM.", examples=["2024-06"])
]
NationalIdText = Annotated[
    str,
    Field(description="The 13-digit national ID.", examples=["3100600445635"]),
]
NationalIdIn = Annotated[
    str,
    Field(
        max_length=64,
        description="The 13-digit national ID (checked: length, digits, check digit, prefix).",
        examples=["3100600445635"],
    ),
]


# Control characters (tab, line feeds aside) are refused: PostgreSQL text cannot hold NUL, and
# nothing here needs the others.
PLAIN_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


def plain_text(max_length: int, description: str | None = None) -> Any:
    """A Field for free text of at most ``max_length`` characters, without control characters."""
    return Field(pattern=PLAIN_TEXT_PATTERN, max_length=max_length, description=description)


def header(request: Request, name: bytes) -> str | None:
    """The value of the request's first ``name`` header (lower case, as the server gives the
    names), as ``request.headers.get`` reads it: without a Headers, and without the KeyError
    it raises and catches for a header the request lacks."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def baht(satang: int) -> str:
    """Integer satang written as baht with two decimal places (``str(to_baht(satang))``)."""
    # The text of to_baht's Decimal, without building the Decimal (twenty-odd per answer).
    whole, rest = divmod(abs(satang), 100)
    return f"{'-' if satang < 0 else ''}{whole}.{rest:02d}"


def satang(value: Decimal) -> int:
    """Baht as sent, exactly in satang (InvalidAmount when it is not a valid amount)."""
    return to_satang(value)


class InModel(BaseModel):
    """A request body: camelCase fields only, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class OutModel(BaseModel):
    """An answer: built from service values by field name, written in camelCase."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)
