"""Request elements of the contract read into the service's request models.

Each reader checks what the XSD says about structure and types: every element known and in
the contribution namespace, required ones present, none repeated unless the schema says so,
values of the right XSD type and length. Element order is not enforced (being lenient costs
nothing here). What needs the business rules — the national ID's check digit, whether a
month is payable — is left to the service, which names the rule broken.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Final, TypeVar

from app.counter.records import CancelRequest, ConfirmRequest, CounterInfo, InquiryRequest
from app.errors import InvalidAmount, InvalidInput
from app.soap.envelope import Shape, child_elements, repeated, simple_text
from app.soap.namespaces import display_name, sso
from app.soap.xsd_values import parse_baht, parse_date, parse_datetime, parse_int

T = TypeVar("T")

# Lengths and values the XSD allows (contribution.xsd; tests/contract checks they agree).
PARTNER_TXN_ID_LENGTH: Final = (1, 64)
COUNTER_CODE_LENGTH: Final = (1, 64)
CANCEL_REASON_LENGTH: Final = (1, 500)
SECTIONS: Final = frozenset({39, 40})

INQUIRE_ELEMENTS: Final = ("nationalId", "section", "storeId", "terminalId", "operatorId")
CONFIRM_ELEMENTS: Final = (
    "partnerTxnId",
    "nationalId",
    "section",
    "months",
    "amount",
    "additionalSavings",
    "storeId",
    "terminalId",
    "shift",
    "operatorId",
    "businessDate",
    "paidAt",
)
CANCEL_ELEMENTS: Final = ("partnerTxnId", "reason", "storeId", "terminalId", "operatorId")
STATUS_ELEMENTS: Final = ("partnerTxnId", "storeId", "terminalId", "operatorId")


def _invalid(element: str, problem: str, message: str) -> InvalidInput:
    return InvalidInput(message, element=element, problem=problem)


class _Fields:
    """The child elements of one request element, read against its XSD type."""

    def __init__(self, payload: object, *, element: str, names: tuple[str, ...]) -> None:
        self._element = element
        try:
            children = child_elements(payload)
        except Shape as shape:
            raise _invalid(element, shape.problem, f"{element} {shape.message}.") from None
        allowed = {sso(name) for name in names}
        for key in children:
            if key not in allowed:
                name = display_name(key)
                raise _invalid(name, "unexpected", f"Element {name} is not expected in {element}.")
        self._children = children

    def _text(self, name: str, *, required: bool) -> str | None:
        """The text of a simple element; None when absent or xsi:nil (and not required)."""
        text: str | None = None
        if sso(name) in self._children:
            try:
                text = simple_text(self._children[sso(name)])
            except Shape as shape:
                raise _invalid(name, shape.problem, f"Element {name} {shape.message}.") from None
        if text is None and required:
            raise _invalid(name, "missing", f"Element {name} is missing from {self._element}.")
        return text

    def _typed(self, name: str, parse: Callable[[str], T], *, required: bool) -> T | None:
        text = self._text(name, required=required)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as error:
            raise _invalid(name, "invalid", f"Element {name} {error}: {text[:40]!r}.") from None

    def string(self, name: str, length: tuple[int, int] | None = None) -> str:
        text = self._text(name, required=True)
        assert text is not None  # required
        self._check_length(name, text, length)
        return text

    def optional_string(self, name: str, length: tuple[int, int]) -> str | None:
        text = self._text(name, required=False)
        if text is not None:
            self._check_length(name, text, length)
        return text

    def _check_length(self, name: str, text: str, length: tuple[int, int] | None) -> None:
        if length is not None and not length[0] <= len(text) <= length[1]:
            low, high = length
            raise _invalid(
                name, "length", f"Element {name} must be {low} to {high} characters long."
            )

    def section(self, *, required: bool) -> int | None:
        value = self._typed("section", parse_int, required=required)
        if value is not None and value not in SECTIONS:
            raise _invalid("section", "invalid", "Element section must be 39 or 40.")
        return value

    def satang(self, name: str, *, required: bool) -> int | None:
        text = self._text(name, required=required)
        if text is None:
            return None
        try:
            return parse_baht(text)
        except InvalidAmount as error:
            raise InvalidAmount(error.message, element=name, **error.details) from None

    def optional_date(self, name: str) -> date | None:
        return self._typed(name, parse_date, required=False)

    def datetime(self, name: str) -> datetime:
        value = self._typed(name, parse_datetime, required=True)
        assert value is not None  # required
        return value

    def months(self, name: str) -> tuple[str, ...]:
        """A MonthList element: the texts of its month elements, in order."""
        if sso(name) not in self._children:
            raise _invalid(name, "missing", f"Element {name} is missing from {self._element}.")
        return _Fields(self._children[sso(name)], element=name, names=("month",)).each("month")

    def each(self, name: str) -> tuple[str, ...]:
        """The texts of a simple element that may repeat."""
        texts: list[str] = []
        for value in repeated(self._children.get(sso(name), [])):
            try:
                text = simple_text(value)
            except Shape as shape:
                raise _invalid(name, shape.problem, f"Element {name} {shape.message}.") from None
            if not text:
                raise _invalid(name, "invalid", f"Element {name} must not be empty or nil.")
            texts.append(text)
        return tuple(texts)

    def counter(self) -> CounterInfo:
        """Whichever of storeId, terminalId, shift and operatorId the element may carry."""

        def code(name: str) -> str | None:
            return self.optional_string(name, COUNTER_CODE_LENGTH)

        return CounterInfo(
            store_id=code("storeId"),
            terminal_id=code("terminalId"),
            shift=code("shift"),
            operator_id=code("operatorId"),
        )


def read_inquiry(payload: object) -> tuple[InquiryRequest, CounterInfo]:
    """An InquireContribution element."""
    fields = _Fields(payload, element="InquireContribution", names=INQUIRE_ELEMENTS)
    request = InquiryRequest(
        national_id=fields.string("nationalId"), section=fields.section(required=False)
    )
    return request, fields.counter()


def read_confirm(payload: object) -> ConfirmRequest:
    """A ConfirmPayment element."""
    fields = _Fields(payload, element="ConfirmPayment", names=CONFIRM_ELEMENTS)
    # Read in document order, so the first error reported is the first in the element.
    partner_txn_id = fields.string("partnerTxnId", PARTNER_TXN_ID_LENGTH)
    national_id = fields.string("nationalId")
    section = fields.section(required=True)
    months = fields.months("months")
    amount = fields.satang("amount", required=True)
    savings = fields.satang("additionalSavings", required=False)
    counter = fields.counter()
    assert section is not None and amount is not None  # required
    return ConfirmRequest(
        partner_txn_id=partner_txn_id,
        national_id=national_id,
        section=section,
        months=months,
        amount_satang=amount,
        savings_satang=savings or 0,
        business_date=fields.optional_date("businessDate"),
        paid_at=fields.datetime("paidAt"),
        counter=counter,
    )


def read_cancel(payload: object) -> tuple[CancelRequest, CounterInfo]:
    """A CancelPayment element."""
    fields = _Fields(payload, element="CancelPayment", names=CANCEL_ELEMENTS)
    request = CancelRequest(
        partner_txn_id=fields.string("partnerTxnId", PARTNER_TXN_ID_LENGTH),
        reason=fields.string("reason", CANCEL_REASON_LENGTH),
    )
    return request, fields.counter()


def read_status(payload: object) -> tuple[str, CounterInfo]:
    """A GetPaymentStatus element: the partner transaction id asked about."""
    fields = _Fields(payload, element="GetPaymentStatus", names=STATUS_ELEMENTS)
    return fields.string("partnerTxnId", PARTNER_TXN_ID_LENGTH), fields.counter()


def national_id_as_sent(payload: object) -> str | None:
    """The text of a request element's nationalId, when it has one to read: what the audit
    record of a request refused as unreadable may name (once it proves a valid ID)."""
    try:
        value = child_elements(payload).get(sso("nationalId"))
        return simple_text(value) if value is not None else None
    except Shape:
        return None
