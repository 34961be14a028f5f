"""A person's life cycle across sections: registration (Section 39 eligibility, moves between
sections), an officer's change of status, and a return to employment under Section 33.

Each runs in the admin gate (scope ``admin``, one audit record per call, refusals included) and
decides on the primary, in one transaction that locks the person first and also holds the
call's audit record: the record and the change commit together or neither (as an option change
does). The status each answer shows is the derived one (``app.domain.standing``): what was
recorded, judged by the rules today.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate, Admitted
from app.db.recent_writes import RecentWrites
from app.domain.calendar import bangkok_date
from app.domain.months import Month
from app.domain.section39 import S39Policy, ensure_s39_eligible, s39_eligibility
from app.domain.standing import (
    ACTIVE,
    OVERRIDE_EVENT,
    SECTION33_EVENT,
    Earlier,
    MembershipFacts,
    Standing,
    StatusChange,
    decide_section33_return,
    decide_status_change,
    derive_standing,
    standing_history_start,
)
from app.errors import InvalidInput, NotEligibleForSection39, PersonNotFound
from app.insured.records import (
    InsuredPerson,
    InsuredStore,
    MembershipTransaction,
    NewInsured,
    StatusEvent,
)
from app.insured.registration import (
    MAX_REASON,
    Registration,
    backdated,
    checked_registration,
    closing_of,
    ensure_may_register_again,
    optional_text,
    override_reason,
)


def shown(person: InsuredPerson, standing: Standing) -> InsuredPerson:
    """``person`` with the status it is in (derived) in place of the one recorded."""
    return replace(
        person,
        status=standing.status,
        status_reason=standing.reason,
        ended_month=standing.ended_month,
    )


def facts(
    person: InsuredPerson, paid: dict[Month, date], earlier: Earlier | None = None
) -> MembershipFacts:
    """What ``person``'s status is derived from: the months paid under their section in the
    window, and (Section 39, recorded active) the latest ones before it."""
    return MembershipFacts(
        section=person.section,
        recorded=person.recorded,
        coverage_start=Month.of(person.effective_date),
        rules_from=person.rules_from,
        paid=paid,
        earlier=earlier,
    )


def _eligibility_refusal(new: NewInsured) -> NotEligibleForSection39:
    return NotEligibleForSection39(
        "Section 39 registration needs the person's Section 33 history (months contributed,"
        " the last day of employment), or an SSO officer's override with a reason.",
        reason="section33_history_missing",
        reasons=["section33_history_missing"],
        applied_on=None if new.s39_applied_on is None else new.s39_applied_on.isoformat(),
    )


class MembershipChanges:
    """Registrations and changes of status, on the primary, audited."""

    def __init__(
        self,
        *,
        gate: AdminGate,
        store: InsuredStore,
        recent: RecentWrites,
        s39: S39Policy,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._gate = gate
        self._store = store
        self._recent = recent
        self._s39 = s39
        self._clock = clock

    def _today(self) -> date:
        return bangkok_date(self._clock())

    async def _current(
        self, tx: MembershipTransaction, person: InsuredPerson, today: date
    ) -> tuple[MembershipFacts, Standing]:
        since = standing_history_start(today)
        paid = await tx.paid_months(person.national_id, person.section, since=since)
        earlier = None
        if person.section == 39 and person.status == ACTIVE:
            earlier = await tx.earlier_payments(person.national_id, before=since)
        known = facts(person, paid, earlier)
        return known, derive_standing(known, today=today, policy=self._s39)

    async def _eligibility(
        self,
        tx: MembershipTransaction,
        new: NewInsured,
        reg: Registration,
        latest: tuple[InsuredPerson, Standing] | None,
        today: date,
    ) -> tuple[str, str | None]:
        """``eligible``, or ``override`` with the officer's reason; NotEligibleForSection39."""
        why = override_reason(reg)
        assert new.s39_applied_on is not None
        if backdated(new.s39_applied_on, today=today, policy=self._s39):
            assert why is not None  # checked_registration refused it otherwise
            return "override", why  # the override admits the application date
        previous = await tx.last_s39_end(new.national_id)
        if latest is not None and latest[0].section == 39:
            previous = latest[1].ended_month or previous  # the latest membership ended last
        if reg.section33 is None:
            if why is None:
                raise _eligibility_refusal(new)
            return "override", why
        if why is None:  # refused, naming every rule broken, unless it is met
            ensure_s39_eligible(
                reg.section33, applied_on=new.s39_applied_on, previous_s39_end=previous
            )
            return "eligible", None
        verdict = s39_eligibility(
            reg.section33, applied_on=new.s39_applied_on, previous_s39_end=previous
        )
        # An override is recorded only where it overrides something.
        return ("eligible", None) if verdict.eligible else ("override", why)

    # --- registration ---------------------------------------------------------------------------
    async def register(
        self, *, caller: Caller, credentials: Credentials, registration: Registration
    ) -> InsuredPerson:
        """Register a person, or a new membership of a person whose latest one has ended."""
        reg = registration

        async def body(call: Admitted) -> InsuredPerson:
            assert call.national_id is not None
            today = self._today()
            new = checked_registration(
                reg, national_id=call.national_id, today=today, s39=self._s39
            )
            async with self._store.membership_transaction() as tx:
                person = await tx.lock_person(call.national_id)
                latest, ended = None, None
                if person is not None:  # a new membership once the latest one has ended
                    latest = (person, (await self._current(tx, person, today))[1])
                    ended = ensure_may_register_again(person, latest[1], new)
                why = None
                if new.section == 39:
                    eligibility, why = await self._eligibility(tx, new, reg, latest, today)
                    new = replace(new, s39_eligibility=eligibility)
                if latest is None or ended is None:
                    created = await tx.insert_person(new)
                else:
                    closing = closing_of(
                        latest[0], latest[1], ended, today=today, by=call.principal.name
                    )
                    created = await tx.close_and_replace(closing, new)
                if why is not None:
                    await tx.add_event(self._event(call, created, OVERRIDE_EVENT, why, today))
                detail = {
                    "eligibility": created.s39_eligibility,
                    "overrideReason": why,
                    "previousSection": None if latest is None else latest[0].section,
                }
                await call.audit.ok_within(
                    tx,
                    name_returned=created.display_name,
                    section=created.section,
                    **{key: value for key, value in detail.items() if value is not None},
                )
            call.audit.committed()
            await self._noted(created.national_id)
            return created

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

    # --- status ---------------------------------------------------------------------------------
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
        """Record an officer's change of status as an event the derived status honours;
        StatusContradictsRules when the derived status would not be the one asked for."""

        async def body(call: Admitted) -> InsuredPerson:
            assert call.national_id is not None
            today = self._today()
            change = StatusChange(
                status=status,
                reason=optional_text(reason, field="reason", limit=MAX_REASON) or "",
                ended_month=Month.parse(ended_month) if ended_month else None,
                rules_from=Month.parse(rules_from) if rules_from else None,
            )
            async with self._store.membership_transaction() as tx:
                person = await tx.lock_person(call.national_id)
                if person is None:
                    raise PersonNotFound()
                known, _ = await self._current(tx, person, today)
                decision = decide_status_change(known, change, today=today, policy=self._s39)
                if decision.event is not None:
                    person = await tx.record_status(
                        person.national_id,
                        standing=decision.recorded,
                        rules_from=decision.rules_from,
                    )
                    await tx.add_event(
                        self._event(call, person, decision.event, change.reason, today)
                    )
                await call.audit.ok_within(
                    tx,
                    name_returned=person.display_name,
                    status=decision.derived.status,
                    event=decision.event,
                    reason=change.reason,
                    rulesFrom=None if decision.rules_from is None else str(decision.rules_from),
                )
            call.audit.committed()
            await self._noted(person.national_id)
            return shown(person, decision.derived)

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="SetInsuredStatus",
            scope=ADMIN_SCOPE,
            body=body,
            national_id=national_id,
        )

    async def return_to_section33(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        national_id: str,
        employed_from: date,
        reason: str | None = None,
    ) -> InsuredPerson:
        """End the person's open Section 39 or 40 membership: they are employed under
        Section 33 from ``employed_from`` (cover ends from that month)."""

        async def body(call: Admitted) -> InsuredPerson:
            assert call.national_id is not None
            today = self._today()
            why = optional_text(reason, field="reason", limit=MAX_REASON)
            why = why or f"employed under Section 33 from {employed_from.isoformat()}"
            async with self._store.membership_transaction() as tx:
                person = await tx.lock_person(call.national_id)
                if person is None:
                    raise PersonNotFound()
                known, _ = await self._current(tx, person, today)
                ended = decide_section33_return(
                    known, employed_from=employed_from, today=today, policy=self._s39
                )
                person = await tx.record_status(
                    person.national_id, standing=ended, rules_from=person.rules_from
                )
                await tx.add_event(self._event(call, person, SECTION33_EVENT, why, today))
                await call.audit.ok_within(
                    tx,
                    name_returned=person.display_name,
                    endedMonth=str(ended.ended_month),
                    section=person.section,
                )
            call.audit.committed()
            await self._noted(person.national_id)
            return person

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation="EndBySection33",
            scope=ADMIN_SCOPE,
            body=body,
            national_id=national_id,
        )

    # --- helpers --------------------------------------------------------------------------------
    def _event(
        self, call: Admitted, person: InsuredPerson, kind: str, reason: str, today: date
    ) -> StatusEvent:
        if not reason:
            raise InvalidInput("A change of status needs a reason.", field="reason")
        return StatusEvent(
            national_id=person.national_id,
            section=person.section,
            kind=kind,
            status=person.status,
            ended_month=person.ended_month,
            rules_from=person.rules_from,
            reason=reason,
            recorded_on=today,
            recorded_by=call.principal.name,
            operator=call.audit.operator,
        )

    async def _noted(self, national_id: str) -> None:
        self._recent.note(national_id, await self._store.current_lsn())
