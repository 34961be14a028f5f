"""What the counter use cases take and return: protocol-free values both adapters render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from app.db.read_meta import ReadPath
from app.frozen_records import quick_init


class Operation(StrEnum):
    """Operations a partner or client may be allowed; names are the SOAP operation names."""

    INQUIRE = "InquireContribution"
    CONFIRM = "ConfirmPayment"
    CANCEL = "CancelPayment"
    STATUS = "GetPaymentStatus"


class TxnState(StrEnum):
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


@quick_init
@dataclass(frozen=True, slots=True)
class PayableMonth:
    month: str  # YYYY-MM
    amount_satang: int
    due_date: date | None  # S39: the 15th of the next month; S40: None (no arrears)
    overdue: bool
    government_satang: int | None  # information only; None where not known (Section 39)


@dataclass(frozen=True, slots=True)
class EndedMembership:
    """A membership of the person that ended before the latest one."""

    section: int
    coverage_start: date
    ended_month: str  # YYYY-MM: the first month no longer covered
    end_reason: str | None
    option: int | None  # Section 40: the option held when it ended


@dataclass(frozen=True, slots=True)
class InquiryRequest:
    national_id: str
    section: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class InquiryResult:
    """The inquiry answer. The source system's own fields come last: each is None when the
    source has none or when it belongs to the other section."""

    national_id: str
    title: str
    first_name: str
    family_name: str
    section: int
    status: str  # active | terminated | inactive
    status_reason: str | None
    ended_month: str | None
    option: int | None  # Section 40 option 1-3
    months: tuple[PayableMonth, ...]
    default_months: tuple[str, ...]
    default_total_satang: int
    savings_allowed: bool
    max_savings_per_month_satang: int
    as_of: datetime
    served_by: ReadPath
    effective_date: date | None = None  # S39: coverage start
    return_code: str | None = None  # S39: the source system's return code
    payment_period: str | None = None  # S39: period of payment; S40: the period last paid
    payment_method: str | None = None  # S40: method of payment (counter, bank, ...)
    last_payment_date: date | None = None  # S40: date of the last payment
    last_payment_satang: int | None = None  # S40: amount of the last payment
    amount_due_satang: int | None = None  # S40: the current month's rate at the option in force
    eligibility: str | None = None  # S39: eligible | override (None: not recorded)
    previous_memberships: tuple[EndedMembership, ...] = ()  # newest first


@dataclass(frozen=True, slots=True)
class CounterInfo:
    store_id: str | None = None
    terminal_id: str | None = None
    shift: str | None = None
    operator_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    partner_txn_id: str
    national_id: str
    section: int
    months: tuple[str, ...]
    amount_satang: int  # the whole cash amount taken, additional savings included
    savings_satang: int
    business_date: date | None  # the partner's idea of the business day: checked, never trusted
    paid_at: datetime  # when the cash was taken; judged at this moment (within a drift)
    counter: CounterInfo = field(default_factory=CounterInfo)


@dataclass(frozen=True, slots=True)
class ConfirmResult:
    partner_txn_id: str
    receipt_no: str
    national_id: str
    section: int
    months: tuple[str, ...]
    amount_satang: int
    savings_satang: int
    posted_at: datetime
    business_date: date
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CancelRequest:
    partner_txn_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CancelResult:
    partner_txn_id: str
    receipt_no: str
    state: TxnState
    cancelled_at: datetime
    amount_satang: int
    months: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatusResult:
    partner_txn_id: str
    state: TxnState
    receipt_no: str | None = None
    national_id: str | None = None
    section: int | None = None
    months: tuple[str, ...] = ()
    amount_satang: int | None = None
    savings_satang: int | None = None
    posted_at: datetime | None = None
    cancelled_at: datetime | None = None
    business_date: date | None = None
