"""Administering insured persons: list, read, register, change status, change the S40 option.

Every use case here touches national IDs, so each runs in the admin gate: scope ``admin``, one
audit record per call (and, for a listing, one per person shown), refusals included. Listings
and records are read through the replica router; a read after this instance's own write waits
for a replica that has replayed it (or uses the primary). Registration and changes of status
are the life cycle's (``app.insured.lifecycle``). Every person an answer shows carries the
status they are in, derived from what was recorded and the rules (``app.domain.standing``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Final

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate, Admitted
from app.db.recent_writes import RecentWrites
from app.domain.calendar import bangkok_date
from app.domain.national_id import LENGTH
from app.domain.rates import SECTIONS
from app.domain.section39 import S39Policy
from app.domain.section40 import S40Policy, check_option_change, option_change_window
from app.domain.standing import STATUSES, derive_standing, standing_history_start
from app.errors import (
    InvalidInput,
    OptionChangeRefused,
    PersonNotFound,
    SectionMismatch,
)
from app.insured.lifecycle import MembershipChanges, facts, shown
from app.insured.records import (
    InsuredDetail,
    InsuredPage,
    InsuredPerson,
    InsuredStore,
    OptionChangeResult,
)
from app.insured.registration import Registration

MAX_PAGE: Final = 500
HISTORY_LIMIT: Final = 120  # payments and paid months shown on a record, newest first


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
        s39: S39Policy = S39Policy(),
    ) -> None:
        self._gate = gate
        self._store = store
        self._recent = recent
        self._s40 = s40
        self._s39 = s39
        self._clock = clock
        self._changes = MembershipChanges(
            gate=gate, store=store, recent=recent, s39=s39, clock=clock
        )

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
            today = self._today()
            rows, paid, earlier, meta = await self._store.list_persons(
                section=section,
                status=status,
                after=after,
                limit=limit + 1,
                since=standing_history_start(today),
            )
            more = len(rows) > limit
            rows = rows[:limit]
            derived = [
                shown(p, derive_standing(
                    facts(p, paid.get(p.national_id, {}), earlier.get(p.national_id)),
                    today=today, policy=self._s39))
                for p in rows
            ]  # fmt: skip
            # The filter reads the recorded status; a person the rules have ended since is
            # shown as they are (terminated) and left out of a page of active ones.
            persons = [p for p in derived if status is None or p.status == status]
            next_cursor = encode_cursor(rows[-1].national_id) if more and rows else None
            people = [(p.national_id, p.display_name) for p in persons]
            if next_cursor is not None and rows[-1].national_id not in {n for n, _ in people}:
                # The cursor is the last person read, whom the page may have left out: it
                # carries their ID (and that they are on record with this status), no name.
                people.append((rows[-1].national_id, ""))
            await self._gate.people_seen(call, operation=operation, people=people)
            await call.audit.ok(listed=len(persons), section=section, status=status)
            return InsuredPage(persons, next_cursor, meta)

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation=operation,
            scope=ADMIN_SCOPE,
            body=body,
        )

    async def read(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        national_id: str,
        operation: str = "GetInsured",
    ) -> InsuredDetail:
        """A person's full record: recent payments, paid months and option changes, the
        memberships that ended before and the changes of status (``operation``: the audited
        name, PrintInsuredStatement for the printable statement)."""

        async def body(call: Admitted) -> InsuredDetail:
            assert call.national_id is not None
            detail = await self._store.read_person(
                call.national_id,
                min_lsn=self._recent.min_lsn(call.national_id),
                history_limit=HISTORY_LIMIT,
                since=standing_history_start(self._today()),
            )
            if detail is None:
                raise PersonNotFound()
            await call.audit.ok(name_returned=detail.person.display_name, servedBy=detail.meta.path)
            return self._derived(detail)

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation=operation,
            scope=ADMIN_SCOPE,
            body=body,
            national_id=national_id,
        )

    def _derived(self, detail: InsuredDetail) -> InsuredDetail:
        person, today = detail.person, self._today()
        since = standing_history_start(today)
        paid = {m.month: m.paid_on for m in detail.paid_months
                if m.section == person.section and m.month >= since}  # fmt: skip
        known = facts(person, paid, detail.earlier)
        standing = derive_standing(known, today=today, policy=self._s39)
        return replace(detail, person=shown(person, standing))

    # --- changes: the life cycle's ---------------------------------------------------------------
    async def register(
        self, *, caller: Caller, credentials: Credentials, registration: Registration
    ) -> InsuredPerson:
        """Register a person (Section 39 with its eligibility rule, or 40), or a new membership
        of a person whose latest one has ended."""
        return await self._changes.register(
            caller=caller, credentials=credentials, registration=registration
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
        rules_from: str | None = None,
    ) -> InsuredPerson:
        """Record an officer's change of status, which the derived status must then show."""
        return await self._changes.set_status(
            caller=caller, credentials=credentials, national_id=national_id, status=status,
            reason=reason, ended_month=ended_month, rules_from=rules_from,
        )  # fmt: skip

    async def return_to_section33(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        national_id: str,
        employed_from: date,
        reason: str | None = None,
    ) -> InsuredPerson:
        """End the open membership of a person employed under Section 33 again."""
        return await self._changes.return_to_section33(
            caller=caller, credentials=credentials, national_id=national_id,
            employed_from=employed_from, reason=reason,
        )  # fmt: skip

    async def change_option(
        self, *, caller: Caller, credentials: Credentials, national_id: str, option: int
    ) -> OptionChangeResult:
        """Change a Section 40 member's option from next month (limited per year: the calendar
        year or twelve months, as set)."""

        async def body(call: Admitted) -> OptionChangeResult:
            assert call.national_id is not None
            async with self._store.option_transaction() as tx:
                person = await tx.lock_person(call.national_id)
                # The day is read once the person is ours, not before a wait for the lock: a
                # change that queued past midnight is the next day's (and, past a month's
                # end, takes effect the month after).
                today = self._today()
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
                window = option_change_window(today, self._s40.option_change_period)
                changes = await tx.changes_since(call.national_id, window)
                last = person.option_changed_on
                if changes == 0 and last is not None and window <= last <= today:
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
