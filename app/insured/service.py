"""Administering insured persons: list, read, register, change status, change the S40 option.

Every use case here touches national IDs, so each runs in the admin gate: scope ``admin``, one
audit record per call (and, for a listing, one per person shown), refusals included. Listings
and records are read through the replica router; a read after this instance's own write waits
for a replica that has replayed it (or uses the primary).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import date, datetime
from typing import Final

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate, Admitted
from app.db.recent_writes import RecentWrites
from app.domain.calendar import bangkok_date
from app.domain.months import Month
from app.domain.national_id import LENGTH
from app.domain.rates import SECTIONS
from app.domain.section40 import S40Policy, check_option_change
from app.errors import (
    InvalidInput,
    OptionChangeRefused,
    PersonNotFound,
    SectionMismatch,
)
from app.insured.records import (
    InsuredDetail,
    InsuredPage,
    InsuredPerson,
    InsuredStore,
    OptionChangeResult,
)
from app.insured.registration import Registration, checked_registration, optional_text

STATUSES: Final = ("active", "terminated", "inactive")
MAX_PAGE: Final = 500
HISTORY_LIMIT: Final = 120  # payments and paid months shown on a record, newest first
MAX_REASON: Final = 200


def encode_cursor(national_id: str) -> str:
    """The opaque cursor of the page after ``national_id``."""
    return base64.urlsafe_b64encode(f"n:{national_id}".encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str:
    """The national ID a cursor continues after; InvalidInput when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    prefix, _, nid = text.partition(":")
    if prefix != "n" or len(nid) != LENGTH or not nid.isascii() or not nid.isdigit():
        raise InvalidInput("The cursor is not valid.", field="cursor")
    return nid


class InsuredAdmin:
    """The insured-person use cases of SSO's internal applications."""

    def __init__(
        self,
        *,
        gate: AdminGate,
        store: InsuredStore,
        recent: RecentWrites,
        s40: S40Policy,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._gate = gate
        self._store = store
        self._recent = recent
        self._s40 = s40
        self._clock = clock

    def _today(self) -> date:
        return bangkok_date(self._clock())

    async def _noted(self, national_id: str) -> None:
        self._recent.note(national_id, await self._store.current_lsn())

    # --- reads -----------------------------------------------------------------------------------
    async def list_persons(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        section: int | None = None,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> InsuredPage:
        """One page of persons in national-ID order, filtered by section and status."""
        operation = "ListInsured"

        async def body(call: Admitted) -> InsuredPage:
            if section is not None and section not in SECTIONS:
                raise InvalidInput("section must be 39 or 40.", field="section")
            if status is not None and status not in STATUSES:
                raise InvalidInput(f"status must be one of {', '.join(STATUSES)}.", field="status")
            if not 1 <= limit <= MAX_PAGE:
                raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.", field="limit")
            after = decode_cursor(cursor) if cursor else None
            rows, meta = await self._store.list_persons(
                section=section, status=status, after=after, limit=limit + 1
            )
            persons = rows[:limit]
            more = len(rows) > limit
            await self._gate.people_seen(
                call,
                operation=operation,
                people=((p.national_id, p.display_name) for p in persons),
            )
            await call.audit.ok(listed=len(persons), section=section, status=status)
            next_cursor = encode_cursor(persons[-1].national_id) if more and persons else None
            return InsuredPage(persons, next_cursor, meta)

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation=operation,
            scope=ADMIN_SCOPE,
            body=body,
        )

    async def read(
        self, *, caller: Caller, credentials: Credentials, national_id: str
    ) -> InsuredDetail:
        """A person's full record with their recent payments, paid months and option changes."""

        async def body(call: Admitted) -> InsuredDetail:
            assert call.national_id is not None
            detail = await self._store.read_person(
                call.national_id,
                min_lsn=self._recent.min_lsn(call.national_id),
                history_limit=HISTORY_LIMIT,
            )
            if detail is None:
                raise PersonNotFound()
            await call.audit.ok(name_returned=detail.person.display_name, servedBy=detail.meta.path)
            return detail

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="GetInsured",
            scope=ADMIN_SCOPE,
            body=body,
            national_id=national_id,
        )

    # --- changes ---------------------------------------------------------------------------------
    async def register(
        self, *, caller: Caller, credentials: Credentials, registration: Registration
    ) -> InsuredPerson:
        """Register a new insured person (Section 39 or 40, with the section's rules)."""
        reg = registration

        async def body(call: Admitted) -> InsuredPerson:
            assert call.national_id is not None
            new = checked_registration(reg, national_id=call.national_id, today=self._today())
            person = await self._store.insert_person(new)
            await self._noted(person.national_id)
            await call.audit.ok(name_returned=person.display_name, section=person.section)
            return person

        # The gate checks the ID against the section's accepted first digits (and the section).
        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="CreateInsured",
            scope=ADMIN_SCOPE,
            body=body,
            national_id=reg.national_id,
            section=reg.section,
        )

    async def set_status(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        national_id: str,
        status: str,
        reason: str | None = None,
        ended_month: str | None = None,
    ) -> InsuredPerson:
        """Set a person's status; a termination names the first month no longer covered."""

        async def body(call: Admitted) -> InsuredPerson:
            assert call.national_id is not None
            if status not in STATUSES:
                raise InvalidInput(f"status must be one of {', '.join(STATUSES)}.", field="status")
            if status != "terminated" and ended_month is not None:
                raise InvalidInput("endedMonth is only for a termination.", field="endedMonth")
            ended = None
            if status == "terminated":
                ended = Month.parse(ended_month) if ended_month else Month.of(self._today())
            why = optional_text(reason, field="reason", limit=MAX_REASON)
            person = await self._store.set_status(
                call.national_id, status=status, reason=why, ended_month=ended
            )
            if person is None:
                raise PersonNotFound()
            await self._noted(person.national_id)
            await call.audit.ok(name_returned=person.display_name, status=status)
            return person

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="SetInsuredStatus",
            scope=ADMIN_SCOPE,
            body=body,
            national_id=national_id,
        )

    async def change_option(
        self, *, caller: Caller, credentials: Credentials, national_id: str, option: int
    ) -> OptionChangeResult:
        """Change a Section 40 member's option from next month (limited per calendar year)."""

        async def body(call: Admitted) -> OptionChangeResult:
            assert call.national_id is not None
            today = self._today()
            async with self._store.option_transaction() as tx:
                person = await tx.lock_person(call.national_id)
                if person is None:
                    raise PersonNotFound()
                if person.section != 40 or person.option is None:
                    raise SectionMismatch(
                        "Only a Section 40 member has an option to change.", section=person.section
                    )
                if person.status != "active":
                    raise OptionChangeRefused(
                        f"The membership is {person.status}.", reason="not_active"
                    )
                changes = await tx.changes_in_year(call.national_id, today.year)
                last = person.option_changed_on
                if changes == 0 and last is not None and last.year == today.year:
                    changes = 1  # a change recorded by the source system before this history
                effective = check_option_change(
                    current=person.option,
                    new=option,
                    last_change=last,
                    today=today,
                    policy=self._s40,
                    changes_this_year=changes,
                )
                updated = await tx.record_option_change(
                    call.national_id,
                    previous=person.option,
                    option=option,
                    changed_on=today,
                    effective_month=effective,
                    changed_by=call.principal.name,
                )
                # In the change's transaction: the record and the change commit together.
                await call.audit.ok_within(
                    tx,
                    name_returned=updated.display_name,
                    previousOption=person.option,
                    option=option,
                    effectiveMonth=str(effective),
                )
            call.audit.committed()
            await self._noted(updated.national_id)
            return OptionChangeResult(updated, person.option, option, effective, today)

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="ChangeInsuredOption",
            scope=ADMIN_SCOPE,
            body=body,
            national_id=national_id,
        )
