"""The counter transaction: inquiry, confirm, cancel and status, admitted and audited.

Both adapters call exactly these methods, so SOAP and REST cannot drift. Every call runs as an
audited call (``app.audit.audited_call``): admitted first (address, credential, operation,
rate), then its use case, then its audit record committed, and only then its answer. A confirm
or a cancel is decided on the primary in one transaction that also holds its audit record
(``app.counter.posting``): the record and the payment commit together or not at all.

Nothing of the request is judged before admission: a caller that is not admitted learns only
that, whatever its request holds. A request an adapter could not read goes to ``refuse``, which
admits its caller before it answers the reading error.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import NoReturn, Protocol

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.admission.service import Admission
from app.audit.audited_call import AuditedCalls
from app.audit.call_audit import AdmissionEvents, CallAudit
from app.audit.records import AuditSink
from app.counter.entitlement import amount_due, entitlement, history_start
from app.counter.ports import (
    Ledger,
    LedgerTransaction,
    MemberReader,
    PaymentRow,
    TransactionIdTaken,
)
from app.counter.posting import PaymentPosting, confirm_result
from app.counter.records import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    ConfirmResult,
    InquiryRequest,
    InquiryResult,
    Operation,
    PayableMonth,
    StatusResult,
    TxnState,
)
from app.counter.request_checks import MAX_REASON, check_counter, check_text, check_txn_id
from app.counter.request_hash import confirm_request_hash
from app.counter.rules import CounterRules
from app.db.read_meta import ReadPath
from app.db.recent_writes import RecentWrites
from app.domain.calendar import bangkok_date, ensure_cancellable, ensure_representable
from app.domain.months import Month
from app.domain.national_id import validate_national_id, well_formed_national_id
from app.domain.payable import MonthDue, default_selection, total_satang
from app.errors import (
    CancelNotAllowed,
    InvalidInput,
    PersonNotFound,
    SectionMismatch,
    ServiceError,
    TransactionNotFound,
)
from app.principals.records import Principal
from app.rates.book import RateBook

COUNTER_SCOPE = "counter"
#: An inquiry's offer: its payable months, the default selection's months and their total.
_Offer = tuple[tuple[PayableMonth, ...], tuple[str, ...], int]


class CounterEvents(AdmissionEvents, Protocol):
    def payment_confirmed(self, *, section: int, partner: str, amount_satang: int) -> None: ...

    def payment_cancelled(self, *, section: int, partner: str) -> None: ...


@lru_cache(maxsize=4096)  # every inquiry offers the same dozen months at the same amounts
def _payable(due: MonthDue) -> PayableMonth:
    return PayableMonth(
        str(due.month), due.amount_satang, due.due_date, due.overdue, due.government_satang
    )


@lru_cache(maxsize=4096)  # and most offer the same dozen: written out once per offer
def _offer(section: int, months: tuple[MonthDue, ...]) -> _Offer:
    """What an inquiry offers of ``months``: each month, the default selection's months and
    its total (the same tuples, the same objects, for every inquiry of the same offer)."""
    default = default_selection(section, months)
    return (
        tuple(_payable(m) for m in months),
        tuple(str(m.month) for m in default),
        total_satang(default),
    )


class CounterService:
    """Implements CounterOperations for both protocols."""

    def __init__(
        self,
        *,
        admission: Admission,
        audit: AuditSink,
        reader: MemberReader,
        ledger: Ledger,
        rates: RateBook,
        recent: RecentWrites,
        rules: CounterRules,
        events: CounterEvents | None = None,
        clock: Callable[[], datetime],  # the business clock (app.main)
    ) -> None:
        self._reader = reader
        self._ledger = ledger
        self._rates = rates
        self._recent = recent
        self._rules = rules
        self._events = events
        self._clock = clock
        self._calls = AuditedCalls(admission=admission, sink=audit, events=events, clock=clock)
        self._posting = PaymentPosting(
            ledger=ledger, rates=rates, recent=recent, rules=rules, clock=clock
        )

    def _national_id(self, raw: str, section: int | None, *, well_formed: str | None = None) -> str:
        if well_formed is not None and section is None:
            return well_formed  # ``_well_formed`` found it valid for any section: the same check
        return validate_national_id(raw, section=section, prefixes=self._rules.prefixes)

    def _well_formed(self, raw: str | None) -> str | None:
        # Named in the record before admission, so a refused probe of a real ID is on the
        # trail; what is wrong with the request is told only to an admitted caller.
        return well_formed_national_id(raw, prefixes=self._rules.prefixes)

    # --- inquiry ---------------------------------------------------------------------------------
    async def inquire(
        self, *, caller: Caller, credentials: Credentials, request: InquiryRequest
    ) -> InquiryResult:
        async def body(audit: CallAudit) -> InquiryResult:
            audit.national_id = self._well_formed(request.national_id)
            await audit.admit(credentials, scope=COUNTER_SCOPE)
            nid = self._national_id(
                request.national_id, request.section, well_formed=audit.national_id
            )
            today = bangkok_date(self._clock())
            member, meta = await self._reader.read_member(
                nid, since=history_start(today), min_lsn=self._recent.min_lsn(nid)
            )
            # Before any refusal: the read may be the one of the second that brought the store's
            # rate fingerprint (member_reads.DIGEST_EVERY_S), which the book must be shown.
            rates = await self._rates.table(digest=meta.rate_digest)
            if member is None:
                raise PersonNotFound()
            if request.section is not None and member.section != request.section:
                raise SectionMismatch(
                    f"The person is insured under Section {member.section}, not {request.section}.",
                    section=member.section,
                )
            ent = entitlement(
                member, today=today, rates=rates, s39=self._rules.s39, s40=self._rules.s40
            )
            months, default_months, default_total = _offer(member.section, tuple(ent.months))
            s40 = self._rules.s40
            # Savings go with the months priced at an option that allows them (a month before
            # a pending option change keeps the option held then).
            savings = member.section == 40 and any(
                (m.option or member.option) in s40.savings_options for m in ent.months
            )
            is_s39 = member.section == 39  # each section's own source fields, only for it
            result = InquiryResult(
                national_id=nid,
                title=member.title,
                first_name=member.first_name,
                family_name=member.last_name,
                section=member.section,
                status=ent.status,
                status_reason=ent.reason,
                ended_month=str(ent.ended_month) if ent.ended_month else None,
                option=member.option,
                months=months,
                default_months=default_months,
                default_total_satang=default_total,
                savings_allowed=savings,
                max_savings_per_month_satang=s40.max_savings_per_month_satang if savings else 0,
                as_of=meta.as_of,
                served_by=ReadPath(meta.path),
                effective_date=member.effective_date if is_s39 else None,
                return_code=member.return_code if is_s39 else None,
                payment_period=member.period_of_payment,
                payment_method=None if is_s39 else member.payment_method,
                last_payment_date=None if is_s39 else member.last_paid_on,
                last_payment_satang=None if is_s39 else member.last_paid_satang,
                amount_due_satang=amount_due(member, today=today, rates=rates),
                eligibility=member.s39_eligibility if is_s39 else None,
                previous_memberships=member.previous,
            )
            await audit.ok(name_returned=member.display_name, servedBy=meta.path)
            return result

        return await self._calls.run(caller, Operation.INQUIRE.value, body)

    # --- confirm ---------------------------------------------------------------------------------
    async def confirm(
        self, *, caller: Caller, credentials: Credentials, request: ConfirmRequest
    ) -> ConfirmResult:
        async def body(audit: CallAudit) -> ConfirmResult:
            audit.national_id = self._well_formed(request.national_id)
            with suppress(InvalidInput):  # the record names the counter when it is well-formed
                counter = check_counter(request.counter)
                audit.operator = counter.operator_id or caller.operator
                audit.terminal = counter.terminal_id or caller.terminal
            principal = await audit.admit(credentials, scope=COUNTER_SCOPE)
            nid = self._national_id(request.national_id, request.section)
            req = replace(request, counter=check_counter(request.counter))
            txn_id = check_txn_id(req.partner_txn_id)
            months = tuple(sorted({Month.parse(m) for m in req.months}))
            if len(months) != len(req.months):
                raise InvalidInput("Each month may be named once.", field="months")
            if req.paid_at.tzinfo is None:
                raise InvalidInput("paidAt needs a time zone.", field="paidAt")
            ensure_representable(req.paid_at)
            digest = confirm_request_hash(req, national_id=nid, txn_id=txn_id)
            try:
                row, replayed = await self._posting.post(
                    principal, req, nid, txn_id, months, digest, audit
                )
            except TransactionIdTaken:
                # A concurrent request with this id committed first: answer as a replay.
                row, replayed = await self._posting.replay(principal, txn_id, digest), True
                await audit.ok(receiptNo=row.receipt_no, replayed=True)
            if not replayed and self._events is not None:
                self._events.payment_confirmed(
                    section=row.section, partner=principal.name, amount_satang=row.amount_satang
                )
            return confirm_result(row, replayed=replayed)

        return await self._calls.run(caller, Operation.CONFIRM.value, body)

    # --- cancel ----------------------------------------------------------------------------------
    async def cancel(
        self, *, caller: Caller, credentials: Credentials, request: CancelRequest
    ) -> CancelResult:
        async def body(audit: CallAudit) -> CancelResult:
            principal = await audit.admit(credentials, scope=COUNTER_SCOPE)
            txn_id = check_txn_id(request.partner_txn_id)
            reason = check_text(request.reason, field="reason", limit=MAX_REASON)
            if not reason:
                raise InvalidInput("A cancel needs a reason.", field="reason")
            async with self._ledger.transaction() as tx:
                row = await tx.find_payment(principal, txn_id, for_update=True)
                if row is None:
                    raise TransactionNotFound()
                audit.national_id = row.national_id
                changed = row.state != TxnState.CANCELLED.value
                # Section 39 months stay paid oldest first, without gaps: a gap can end the
                # cover and leave the later months paid for none, so a later payment goes first.
                # Judged under the person's lock, which a confirm of later months holds too.
                if changed and row.section == 39:
                    await tx.lock_person(row.national_id)
                # Judged once the payment (and its person) are ours, not before a wait for them:
                # a cancel that queued past the cut-off must not void a payment whose day may be
                # settled.
                now = self._clock()
                if changed:
                    ensure_cancellable(
                        business_date=row.business_date,
                        instant=now,
                        cutoff=self._rules.cutoff,
                    )
                    if row.section == 39:
                        await self._no_later_payment(tx, row, principal)
                    row = await tx.cancel_payment(row.id, reason=reason, at=now)
                # In the cancel's transaction: the record and the cancel commit together.
                await audit.ok_within(tx, receiptNo=row.receipt_no, alreadyCancelled=not changed)
            audit.committed()
            if changed:
                if tx.committed_lsn is not None:
                    self._recent.note(row.national_id, tx.committed_lsn)
                if self._events is not None:
                    self._events.payment_cancelled(section=row.section, partner=principal.name)
            assert row.cancelled_at is not None
            return CancelResult(
                partner_txn_id=row.partner_txn_id,
                receipt_no=row.receipt_no,
                state=TxnState.CANCELLED,
                cancelled_at=row.cancelled_at,
                amount_satang=row.amount_satang,
                months=tuple(str(m) for m in row.months),
            )

        return await self._calls.run(caller, Operation.CANCEL.value, body)

    @staticmethod
    async def _no_later_payment(
        tx: LedgerTransaction, row: PaymentRow, principal: Principal
    ) -> None:
        """CancelNotAllowed when a confirmed payment of the person pays months after
        ``row``'s (the caller holds the person's lock). Its receipt is named only to the
        partner or client that took it: another network's is not this caller's to see."""
        later = await tx.later_payment(row, principal)
        if later is None:
            return
        if later.own_receipt_no is None:
            raise CancelNotAllowed(
                "A later payment of this person's months was taken by another counter network;"
                " only it, or SSO, can cancel it, and until then this payment stands.",
                reason="later_payment",
            )
        raise CancelNotAllowed(
            f"Receipt {later.own_receipt_no} pays later months of this person; cancel it"
            " first, so that no month stays paid after an unpaid one.",
            reason="later_payment",
            later_receipt_no=later.own_receipt_no,
        )

    # --- status ----------------------------------------------------------------------------------
    async def status(
        self, *, caller: Caller, credentials: Credentials, partner_txn_id: str
    ) -> StatusResult:
        async def body(audit: CallAudit) -> StatusResult:
            principal = await audit.admit(credentials, scope=COUNTER_SCOPE)
            txn_id = check_txn_id(partner_txn_id)
            # Read on the primary: a counter resolving a timeout must see the latest truth.
            row = await self._ledger.find_payment(principal, txn_id)
            if row is None:
                await audit.ok(state=TxnState.UNKNOWN.value)
                return StatusResult(partner_txn_id=txn_id, state=TxnState.UNKNOWN)
            audit.national_id = row.national_id
            await audit.ok(state=row.state, receiptNo=row.receipt_no)
            return StatusResult(
                partner_txn_id=txn_id,
                state=TxnState(row.state),
                receipt_no=row.receipt_no,
                national_id=row.national_id,
                section=row.section,
                months=tuple(str(m) for m in row.months),
                amount_satang=row.amount_satang,
                savings_satang=row.savings_satang,
                posted_at=row.posted_at,
                cancelled_at=row.cancelled_at,
                business_date=row.business_date,
            )

        return await self._calls.run(caller, Operation.STATUS.value, body)

    # --- a request an adapter could not read -----------------------------------------------------
    async def refuse(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        operation: Operation,
        error: ServiceError,
        national_id: str | None = None,
    ) -> NoReturn:
        async def body(audit: CallAudit) -> NoReturn:
            audit.national_id = self._well_formed(national_id)
            await audit.admit(credentials, scope=COUNTER_SCOPE)
            raise error

        await self._calls.run(caller, operation.value, body)
