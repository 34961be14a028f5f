"""Complaint cases: "I paid at the counter but it does not show", from opening to resolution.

Opening a case finds the payment it is about (by receipt number, or by the partner's
transaction id) and links it and the person's audit records around it (by national ID and
time). A ``paid-not-posted`` case whose payment is found confirmed resolves itself with the
receipt. The back office lists cases by state, partner and age, and moves them
``open → investigating → resolved | rejected``. ``ComplaintsAccess`` runs each use case in the
admin gate (scope ``admin``, one audit record a call); ``ComplaintService`` serves the command
line, whose listings it records itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Final

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AdminGate, Admitted
from app.audit.records import AuditSink, Requester
from app.complaints.records import (
    AGE_BUCKETS,
    CATEGORIES,
    STATES,
    SYSTEM,
    Complaint,
    ComplaintEvent,
    ComplaintPage,
    ComplaintRow,
    ComplaintStore,
    NewComplaint,
    audit_window,
    check_transition,
    checked_text,
    decode_cursor,
    encode_cursor,
    opening_note,
    parse_age,
)
from app.domain.calendar import BANGKOK, bangkok_date
from app.domain.national_id import validate_national_id
from app.errors import Conflict, InvalidInput, NotFound, ServiceError

log = logging.getLogger(__name__)
OpenCounts = Mapping[tuple[str, str], int]  # (category, age bucket) -> cases not closed
MAX_PAGE: Final = 500
EARLIEST_PAYMENT: Final = date(1990, 1, 1)
MAX_DESCRIPTION: Final = 2000
MAX_NOTE: Final = 1000
MAX_NAME: Final = 100
LINK_LIMIT: Final = 100  # audit records linked to one case


class ComplaintService:
    """Opens, lists, shows and moves complaint cases; counts the open ones for the metrics."""

    def __init__(
        self,
        *,
        store: ComplaintStore,
        sink: AuditSink | None = None,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._store = store
        self._sink = sink
        self._clock = clock

    async def open(self, new: NewComplaint, *, who: str, via: str | None = None) -> Complaint:
        """Open a case, linked to its payment and the person's audit records around it."""
        nid = validate_national_id(new.national_id)  # as sent: padded, it is no ID
        if new.category not in CATEGORIES:
            raise InvalidInput(f"category must be one of {', '.join(CATEGORIES)}.",
                               field="category")  # fmt: skip
        description = checked_text(
            new.description, field="description", limit=MAX_DESCRIPTION, required=True
        )
        receipt = checked_text(new.receipt_no, field="receiptNo", limit=40)
        txn = checked_text(new.partner_txn_id, field="partnerTxnId", limit=64)
        partner = checked_text(new.partner, field="partner", limit=64)
        if txn and not partner:
            raise InvalidInput("partnerTxnId needs the partner it belongs to.", field="partner")
        if new.category != "other" and not (receipt or txn):
            raise InvalidInput("A payment complaint names the receipt number or the partner's"
                               " transaction id.", field="receiptNo")  # fmt: skip
        now = self._clock()
        if new.paid_on is not None and not EARLIEST_PAYMENT <= new.paid_on <= bangkok_date(now):
            raise InvalidInput("paidOn must be a day from 1990 to today.", field="paidOn")
        partner_id = await self._partner_id(partner)
        payment = await self._store.find_payment(
            receipt_no=receipt, partner_id=partner_id, partner_txn_id=txn
        )
        opened_by = checked_text(new.opened_by, field="openedBy", limit=MAX_NAME) or who
        events = [
            ComplaintEvent(now, None, "open", opened_by, via, opening_note(new, payment, nid))
        ]
        if (new.category == "paid-not-posted" and payment is not None
                and payment.state == "confirmed" and payment.national_id == nid):  # fmt: skip
            posted = payment.posted_at.astimezone(BANGKOK).isoformat(timespec="seconds")
            note = f"Payment found confirmed: receipt {payment.receipt_no}, posted {posted}."
            events.append(ComplaintEvent(now, "open", "resolved", SYSTEM, None, note))
        row = ComplaintRow(
            national_id=nid, category=new.category, description=description or "",
            state=events[-1].to_state,
            receipt_no=payment.receipt_no if payment else receipt,
            partner_id=payment.partner_id if payment else partner_id,
            partner_txn_id=payment.partner_txn_id if payment else txn,
            payment_id=payment.id if payment else None, paid_on=new.paid_on,
            opened_by=opened_by, created_at=now,
        )  # fmt: skip
        complaint_id = await self._store.create(
            row, events, window=audit_window(payment, new, now), link_limit=LINK_LIMIT
        )
        return await self.get(complaint_id)

    async def get(self, complaint_id: int) -> Complaint:
        """The case with its payment, linked audit records and history."""
        complaint = await self._store.get(complaint_id)
        if complaint is None:
            raise NotFound(f"No complaint has id {complaint_id}.", complaint=complaint_id)
        return complaint

    async def list_cases(
        self,
        *,
        state: str | None = None,
        partner: str | None = None,
        older_than: timedelta | str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        requester: Requester | None = None,
    ) -> ComplaintPage:
        """Cases oldest first, by state, partner and age (created more than ``older_than`` ago;
        text as ``parse_age`` reads it)."""
        if isinstance(older_than, str):
            older_than = parse_age(older_than)
        if state is not None and state not in STATES:
            raise InvalidInput(f"state must be one of {', '.join(STATES)}.", field="state")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}.", field="limit")
        partner_id = await self._partner_id(checked_text(partner, field="partner", limit=64))
        rows = await self._store.find(
            state=state,
            partner_id=partner_id,
            created_before=None if older_than is None else self._clock() - older_than,
            after=decode_cursor(cursor) if cursor else None,
            limit=limit + 1,
        )
        page = rows[:limit]
        last = page[-1] if page and len(rows) > limit else None
        await self._record_listing(requester, page)
        return ComplaintPage(page, encode_cursor(last.created_at, last.id) if last else None)

    async def transition(
        self, complaint_id: int, *, to: str, who: str, note: str | None, via: str | None
    ) -> Complaint:
        """Move a case to ``to``; a move its state does not allow is refused (Conflict)."""
        actor = checked_text(who, field="who", limit=MAX_NAME, required=True) or who
        note = checked_text(note, field="note", limit=MAX_NOTE)
        current = await self.get(complaint_id)
        check_transition(current.state, to)
        event = ComplaintEvent(self._clock(), current.state, to, actor, via, note)
        if not await self._store.transition(complaint_id, event):
            raise Conflict("The case changed meanwhile; read it again.", complaint=complaint_id)
        return await self.get(complaint_id)

    async def open_complaints_by_category_and_age(self) -> dict[tuple[str, str], int]:
        """Cases not closed, by (category, age bucket); every pair present (0 when none)."""
        bounds = [bound for _, bound in AGE_BUCKETS if bound is not None]
        counts = {(category, label): 0 for category in CATEGORIES for label, _ in AGE_BUCKETS}
        for category, bucket, count in await self._store.open_counts(
            now=self._clock(), bounds=bounds
        ):
            counts[(category, AGE_BUCKETS[bucket][0])] = count
        return counts

    async def publish_open_counts(
        self, publish: Callable[[OpenCounts], object], *, interval_s: float = 30.0
    ) -> None:
        """Publish the open-case counts now and every ``interval_s`` until cancelled, so that
        a metrics scrape never waits on the database; a failed round keeps the last counts."""
        while True:
            try:
                publish(await self.open_complaints_by_category_and_age())
            except Exception as exc:  # a metrics refresher must outlive any one failure
                reason = exc.code if isinstance(exc, ServiceError) else type(exc).__name__
                log.warning("open complaint counts not refreshed: %s", reason)
            await asyncio.sleep(interval_s)

    async def _partner_id(self, name: str | None) -> int | None:
        if name is None:
            return None
        partner_id = await self._store.partner_id(name)
        if partner_id is None:
            raise InvalidInput(f"No partner is named {name!r}.", field="partner")
        return partner_id

    async def _record_listing(self, requester: Requester | None, page: list[Complaint]) -> None:
        """One record per person a command-line listing showed (REST goes through the gate)."""
        if self._sink is None or requester is None:
            return
        for national_id, name in _people(page):
            await self._sink.record(
                requester.record(
                    at=self._clock(),
                    operation="ListComplaints",
                    outcome="ok",
                    national_id=national_id,
                    name_returned=name,
                    detail={"listed": True},
                )
            )


def _people(page: Iterable[Complaint]) -> list[tuple[str, str]]:
    """Each person of a page once: (national ID, name as shown)."""
    return list({c.national_id: c.name or "" for c in page}.items())


#: The payer's record when a case shows a payment that is not the complainant's: their ID,
#: receipt, months and amount were shown, not their name or a case of theirs.
PAYMENT_SHOWN: Final = "ComplaintPaymentShown"


def _payer_shown(case: Complaint) -> list[tuple[str, str]]:
    """The person whose payment a case shows, when not the complainant (a receipt that is
    another person's): the answer shows their ID, months and amount, so they are recorded too."""
    payment = case.payment
    if payment is None or payment.national_id == case.national_id:
        return []
    return [(payment.national_id, "")]


class ComplaintsAccess:
    """Complaint cases for SSO's internal applications: scope ``admin``, each call audited."""

    def __init__(self, *, gate: AdminGate, service: ComplaintService) -> None:
        self._gate = gate
        self._service = service

    async def open(
        self, *, caller: Caller, credentials: Credentials, complaint: NewComplaint
    ) -> Complaint:
        """Open a case (resolved at once when its payment is found confirmed)."""

        async def body(call: Admitted) -> Complaint:
            via = f"{call.principal.kind}:{call.principal.name}"
            case = await self._service.open(complaint, who=call.principal.name, via=via)
            await self._gate.people_seen(call, operation=PAYMENT_SHOWN, people=_payer_shown(case))
            await call.audit.ok(name_returned=case.name, complaint=case.id, state=case.state)
            return case

        return await self._gate.audited(
            caller=caller, credentials=credentials, operation="OpenComplaint",
            scope=ADMIN_SCOPE, body=body, national_id=complaint.national_id,
        )  # fmt: skip

    async def get(
        self, *, caller: Caller, credentials: Credentials, complaint_id: int
    ) -> Complaint:
        """One case with its payment, audit records and history."""

        async def body(call: Admitted) -> Complaint:
            case = await self._service.get(complaint_id)
            call.audit.national_id = case.national_id
            await self._gate.people_seen(call, operation=PAYMENT_SHOWN, people=_payer_shown(case))
            await call.audit.ok(name_returned=case.name, complaint=case.id)
            return case

        return await self._gate.audited(
            caller=caller, credentials=credentials, operation="GetComplaint",
            scope=ADMIN_SCOPE, body=body,
        )  # fmt: skip

    async def list_cases(
        self, *, caller: Caller, credentials: Credentials, state: str | None = None,
        partner: str | None = None, older_than: timedelta | str | None = None, limit: int = 100,
        cursor: str | None = None,
    ) -> ComplaintPage:  # fmt: skip
        """Cases oldest first; each person shown leaves an audit record."""

        async def body(call: Admitted) -> ComplaintPage:
            page = await self._service.list_cases(
                state=state, partner=partner, older_than=older_than, limit=limit, cursor=cursor
            )
            people = _people(page.complaints)
            await self._gate.people_seen(call, operation="ListComplaints", people=people)
            await call.audit.ok(listed=len(page.complaints), state=state, partner=partner)
            return page

        return await self._gate.audited(
            caller=caller, credentials=credentials, operation="ListComplaints",
            scope=ADMIN_SCOPE, body=body,
        )  # fmt: skip

    async def transition(
        self, *, caller: Caller, credentials: Credentials, complaint_id: int, to: str, who: str,
        note: str | None = None,
    ) -> Complaint:  # fmt: skip
        """Move a case (open → investigating → resolved | rejected)."""

        async def body(call: Admitted) -> Complaint:
            # Read first, so that a refused move is on the person's record too.
            call.audit.national_id = (await self._service.get(complaint_id)).national_id
            via = f"{call.principal.kind}:{call.principal.name}"
            case = await self._service.transition(complaint_id, to=to, who=who, note=note, via=via)
            people = _payer_shown(case)
            await self._gate.people_seen(call, operation=PAYMENT_SHOWN, people=people)
            await call.audit.ok(name_returned=case.name, complaint=case.id, state=case.state)
            return case

        return await self._gate.audited(
            caller=caller, credentials=credentials, operation="TransitionComplaint",
            scope=ADMIN_SCOPE, body=body,
        )  # fmt: skip
