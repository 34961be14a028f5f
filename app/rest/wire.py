"""How values look on the wire: camelCase fields, baht as exact decimals, months as YYYY-MM.

Amounts travel in baht with two decimal places (``"432.00"``). Answers write them as strings;
requests may send a string or a JSON number, both read exactly as ``Decimal`` (never float) and
turned into integer satang by the domain's ``to_satang``, whose rules a string's text meets too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from app.domain.money import to_baht, to_satang
from app.errors import InvalidAmount

SectionNo = Literal[39, 40]
SectionQuery = Annotated[
    int | None, Query(ge=39, le=40, description="Section 39 or 40.", examples=[40])
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
