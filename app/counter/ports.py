"""What the counter use cases need from the store, as Protocols and plain values."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from app.audit.records import AuditRecord, AuditTransaction
from app.counter.records import EndedMembership
from app.db.read_meta import ReadMeta
from app.domain.months import Month
from app.domain.rates import Rate
from app.domain.standing import STANDING_HISTORY_MONTHS, Earlier
from app.frozen_records import quick_init
from app.principals.records import Principal

# Months of payment history read for a Section 39 standing: a full 12-month window before the
# latest past-due month, and that month. An older ending is dated from the latest month paid
# before them (``MemberSnapshot.earlier``, app.domain.standing).
HISTORY_MONTHS = STANDING_HISTORY_MONTHS


@quick_init
@dataclass(frozen=True, slots=True)
class MemberSnapshot:
    """An insured person with the recent paid months of their section."""

    national_id: str
    title: str
    first_name: str
    last_name: str
    section: int
    status: str
    status_reason: str | None
    ended_month: Month | None
    coverage_start: Month
    option: int | None
    option_changed_on: date | None
    paid: Mapping[Month, date]  # month -> the date it was paid
    previous_option: int | None = None  # S40: the option held before the pending change(s)
    option_effective: Month | None = None  # S40: the first month of the current option
    # The source system's own fields, as its extracts give them (None: the source has none).
    effective_date: date | None = None  # coverage start (S39 effective, S40 registration)
    return_code: str | None = None  # S39
    period_of_payment: str | None = None  # S39: e.g. monthly; S40: the period last paid
    payment_method: str | None = None  # S40
    last_paid_on: date | None = None  # S40
    last_paid_satang: int | None = None  # S40
    rules_from: Month | None = None  # S39: an officer's reinstatement judges the rules from here
    s39_eligibility: str | None = None  # S39: eligible | override, as registered
    previous: tuple[EndedMembership, ...] = ()  # memberships that ended before, newest first
    earlier: Earlier | None = None  # S39, recorded active: the months paid before the window

    def option_for(self, month: Month) -> int | None:
        """The Section 40 option in force for ``month`` (a change applies from the next month)."""
        if (
            self.previous_option is not None
            and self.option_effective is not None
            and month < self.option_effective
        ):
            return self.previous_option
        return self.option

    @property
    def display_name(self) -> str:
        return f"{self.title}{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """A payment as the ledger holds it."""

    id: int
    partner_txn_id: str
    receipt_no: str
    national_id: str
    section: int
    option: int | None
    months: tuple[Month, ...]
    amount_satang: int
    savings_satang: int
    request_hash: bytes
    state: str
    business_date: date
    paid_at: datetime
    posted_at: datetime
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewPayment:
    principal: Principal
    partner_txn_id: str
    receipt_no: str
    national_id: str
    section: int
    option: int | None
    months: tuple[Month, ...]
    month_amounts: tuple[int, ...]  # satang, one per month, as charged
    month_options: tuple[int | None, ...]  # S40: the option each month was priced at
    month_surcharges: tuple[int, ...]  # satang, the late surcharge each month's amount includes
    amount_satang: int
    savings_satang: int
    request_hash: bytes
    business_date: date  # the business day it settles in (the gateway's, after the cut-off)
    paid_at: datetime
    paid_on: date  # the Bangkok date the cash was taken: what its months' due dates are held to
    posted_at: datetime  # the gateway's clock when it decided the payment (and its business day)
    store_id: str | None
    terminal_id: str | None
    shift: str | None
    operator_id: str | None


class TransactionIdTaken(Exception):
    """Another request with the same transaction id committed first (a race); look it up."""


class MemberReader(Protocol):
    """Reads an insured person for an inquiry, through the replica router."""

    async def read_member(
        self, national_id: str, *, since: Month, min_lsn: int | None
    ) -> tuple[MemberSnapshot | None, ReadMeta]: ...


@dataclass(frozen=True, slots=True)
class ConfirmRead:
    """What a confirm reads under its person's lock, in the same round trip as the lock."""

    member: MemberSnapshot | None  # None: no such person (or none to lock)
    payment: PaymentRow | None  # the payment the transaction id already names (a replay)
    receipt_sequence: int | None  # taken for a new payment: a person and no payment yet
    rate_digest: str  # the primary's rate table, as read (``lines_digest``)


@dataclass(frozen=True, slots=True)
class LaterPayment:
    """A later payment that stands in the way of a cancel: its receipt number when the caller
    (``principal``) took it, else None (another partner's or client's)."""

    own_receipt_no: str | None


class LedgerTransaction(AuditTransaction, Protocol):
    """One primary transaction of the ledger; committed when its context exits cleanly. It
    carries the call's audit record too, so the record commits with the payment or neither."""

    async def lock_person(self, national_id: str) -> bool:
        """Lock the person's row; False when there is no such person."""

    async def lock_and_read(
        self, national_id: str, principal: Principal, partner_txn_id: str, *, since: Month
    ) -> ConfirmRead:
        """Lock the person's row, then read what a confirm is judged on, in a snapshot taken
        after the lock was granted; a person the lock did not find is read as none."""

    async def find_payment(
        self, principal: Principal, partner_txn_id: str, *, for_update: bool = False
    ) -> PaymentRow | None: ...

    async def insert_payment(self, new: NewPayment, record: AuditRecord) -> PaymentRow: ...

    async def load_rates(self) -> list[Rate]:
        """Every rate line, as this transaction sees them (``RateSource.load_rates``)."""
        ...

    async def later_payment(self, payment: PaymentRow, principal: Principal) -> LaterPayment | None:
        """A confirmed payment of the same person and section that covers a month after
        ``payment``'s last one, the newest (None: there is none)."""
        ...

    async def cancel_payment(self, payment_id: int, *, reason: str, at: datetime) -> PaymentRow: ...

    @property
    def committed_lsn(self) -> int | None:
        """Once committed: the primary's WAL position after a transaction that wrote a payment
        or a cancel (None before, or when it wrote none)."""
        ...


class Ledger(Protocol):
    """The payments ledger on the primary."""

    def transaction(self) -> AbstractAsyncContextManager[LedgerTransaction]: ...

    async def find_payment(
        self, principal: Principal, partner_txn_id: str
    ) -> PaymentRow | None: ...
