"""Insured persons as the administration use cases see them, and the store those need."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from app.audit.records import AuditTransaction
from app.db.read_meta import ReadMeta
from app.domain.months import Month
from app.domain.standing import Earlier, Standing
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
    # Section 39 eligibility as registered (None: not recorded, e.g. loaded from an extract).
    s33_months: int | None = None
    s33_employment_ended_on: date | None = None
    s39_applied_on: date | None = None
    s39_eligibility: str | None = None  # eligible | override
    rules_from: Month | None = None  # an officer's reinstatement: S39 rules judged from here

    @property
    def display_name(self) -> str:
        return f"{self.title}{self.first_name} {self.last_name}"

    @property
    def recorded(self) -> Standing:
        """The status the latest event recorded (the status it is in is derived from it)."""
        return Standing(self.status, self.status_reason, self.ended_month)


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
    s33_months: int | None = None
    s33_employment_ended_on: date | None = None
    s39_applied_on: date | None = None
    s39_eligibility: str | None = None


@dataclass(frozen=True, slots=True)
class ClosedMembership:
    """A membership that ended before the person's latest one, as it was when it ended."""

    national_id: str
    section: int
    option: int | None
    coverage_start: date
    ended_month: Month
    end_reason: str | None
    s33_months: int | None
    s33_employment_ended_on: date | None
    s39_applied_on: date | None
    s39_eligibility: str | None
    closed_on: date  # the business date the next membership was registered
    closed_by: str | None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """An event that changed a membership's status: what, why, who and when."""

    national_id: str
    section: int
    kind: str  # terminated | suspended | reinstated | section33_employment | eligibility_override
    status: str  # the status recorded after it
    ended_month: Month | None
    rules_from: Month | None
    reason: str
    recorded_on: date
    recorded_by: str
    operator: str | None
    created_at: datetime | None = None  # None until stored


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
    previous: list[ClosedMembership] = field(default_factory=list)  # newest first
    events: list[StatusEvent] = field(default_factory=list)  # newest first
    earlier: Earlier | None = None  # S39, recorded active: the months paid before the window


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

    async def changes_since(self, national_id: str, first_day: date) -> int: ...

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


class MembershipTransaction(AuditTransaction, Protocol):
    """One primary transaction around a registration or a change of status; the person's row
    is locked first. It carries the call's audit record too: they commit together or neither."""

    async def lock_person(self, national_id: str) -> InsuredPerson | None: ...

    async def paid_months(
        self, national_id: str, section: int, *, since: Month
    ) -> dict[Month, date]: ...

    async def earlier_payments(self, national_id: str, *, before: Month) -> Earlier:
        """The latest Section 39 months paid before ``before`` (at all, and on time)."""
        ...

    async def last_s39_end(self, national_id: str) -> Month | None: ...

    async def insert_person(self, new: NewInsured) -> InsuredPerson: ...

    async def close_and_replace(
        self, closing: ClosedMembership, new: NewInsured
    ) -> InsuredPerson: ...

    async def record_status(
        self, national_id: str, *, standing: Standing, rules_from: Month | None
    ) -> InsuredPerson: ...

    async def add_event(self, event: StatusEvent) -> None: ...


class InsuredStore(Protocol):
    """Insured persons: listings and records through the read router, changes on the primary."""

    async def list_persons(
        self,
        *,
        section: int | None,
        status: str | None,
        after: str | None,
        limit: int,
        since: Month,
    ) -> tuple[list[InsuredPerson], dict[str, dict[Month, date]], dict[str, Earlier], ReadMeta]:
        """A page of persons, and (in the same read) the Section 39 months the active ones
        among them paid since ``since`` and the latest ones before it, by national ID (what
        their status is derived from)."""
        ...

    async def read_person(
        self, national_id: str, *, min_lsn: int | None, history_limit: int, since: Month
    ) -> InsuredDetail | None:
        """The person's record; for a Section 39 member recorded active, also the latest
        months paid before ``since`` (``InsuredDetail.earlier``)."""
        ...

    def membership_transaction(self) -> AbstractAsyncContextManager[MembershipTransaction]: ...

    def option_transaction(self) -> AbstractAsyncContextManager[OptionChangeTransaction]: ...

    async def current_lsn(self) -> int: ...


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    """What the upsert did, and the lines it refused: repeats of an earlier line, and moves to
    the other section."""

    inserted: int
    updated: int
    unchanged: int
    refused: tuple[Rejection, ...]
