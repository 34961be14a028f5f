"""Insured persons as the administration use cases see them, and the store those need."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from app.audit.records import AuditTransaction
from app.db.read_meta import ReadMeta
from app.domain.months import Month
from app.insured.extract_file import Rejection


@dataclass(frozen=True, slots=True)
class InsuredPerson:
    """The full record of one insured person, every source-system field included."""

    national_id: str
    title: str
    first_name: str
    last_name: str
    section: int
    status: str  # active | terminated | inactive
    status_reason: str | None
    ended_month: Month | None
    effective_date: date  # coverage start
    option: int | None  # Section 40 option 1-3
    option_changed_on: date | None
    payment_method: str | None
    period_of_payment: str | None
    return_code: str | None
    birth_date: date | None
    last_paid_on: date | None
    last_paid_satang: int | None
    created_at: datetime
    updated_at: datetime

    @property
    def display_name(self) -> str:
        return f"{self.title}{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class NewInsured:
    """A person to register, already checked by the use case."""

    national_id: str
    title: str
    first_name: str
    last_name: str
    section: int
    option: int | None
    effective_date: date
    birth_date: date | None
    payment_method: str | None
    period_of_payment: str | None
    return_code: str | None


@dataclass(frozen=True, slots=True)
class PaymentEntry:
    """One payment in a person's history, with the partner or client that took it."""

    receipt_no: str
    partner_txn_id: str
    channel_kind: str  # partner | client
    channel_name: str
    section: int
    option: int | None
    months: tuple[Month, ...]
    amount_satang: int
    savings_satang: int
    state: str  # confirmed | cancelled
    business_date: date
    paid_at: datetime
    posted_at: datetime
    cancelled_at: datetime | None


@dataclass(frozen=True, slots=True)
class PaidMonthEntry:
    """A month recorded as paid; ``receipt_no`` is None when loaded from the source system."""

    month: Month
    section: int
    option: int | None
    amount_satang: int
    paid_on: date
    receipt_no: str | None


@dataclass(frozen=True, slots=True)
class OptionChangeEntry:
    """One Section 40 option change."""

    changed_on: date
    previous_option: int
    new_option: int
    effective_month: Month
    changed_by: str | None


@dataclass(frozen=True, slots=True)
class InsuredDetail:
    """A person with their payment history, newest first, and where it was read."""

    person: InsuredPerson
    payments: list[PaymentEntry]
    paid_months: list[PaidMonthEntry]
    option_changes: list[OptionChangeEntry]
    meta: ReadMeta


@dataclass(frozen=True, slots=True)
class InsuredPage:
    """One page of a listing in national-ID order; ``next_cursor`` is None on the last page."""

    persons: list[InsuredPerson]
    next_cursor: str | None
    meta: ReadMeta


@dataclass(frozen=True, slots=True)
class OptionChangeResult:
    """A Section 40 option change as made: from which month the new option applies."""

    person: InsuredPerson
    previous_option: int
    option: int
    effective_month: Month
    changed_on: date


class OptionChangeTransaction(AuditTransaction, Protocol):
    """One primary transaction around an option change; the person's row is locked first. It
    carries the call's audit record too, so the record commits with the change or neither."""

    async def lock_person(self, national_id: str) -> InsuredPerson | None: ...

    async def changes_in_year(self, national_id: str, year: int) -> int: ...

    async def record_option_change(
        self,
        national_id: str,
        *,
        previous: int,
        option: int,
        changed_on: date,
        effective_month: Month,
        changed_by: str,
    ) -> InsuredPerson: ...


class InsuredStore(Protocol):
    """Insured persons: listings and records through the read router, changes on the primary."""

    async def list_persons(
        self, *, section: int | None, status: str | None, after: str | None, limit: int
    ) -> tuple[list[InsuredPerson], ReadMeta]: ...

    async def read_person(
        self, national_id: str, *, min_lsn: int | None, history_limit: int
    ) -> InsuredDetail | None: ...

    async def insert_person(self, new: NewInsured) -> InsuredPerson: ...

    async def set_status(
        self, national_id: str, *, status: str, reason: str | None, ended_month: Month | None
    ) -> InsuredPerson | None: ...

    def option_transaction(self) -> AbstractAsyncContextManager[OptionChangeTransaction]: ...

    async def current_lsn(self) -> int: ...


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """What the upsert did, and the lines it refused as repeats of an earlier line."""

    inserted: int
    updated: int
    unchanged: int
    duplicates: tuple[Rejection, ...]
