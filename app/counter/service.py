"""The counter transaction: inquiry, confirm, cancel and status, admitted and audited.

Both adapters call exactly these methods, so SOAP and REST cannot drift. Every call is admitted
first (address, credential, operation, rate), then runs its use case, then commits its audit
record, and only then returns. A confirm is decided on the primary in one transaction that
also waits for its audit record: if the record cannot be committed, the payment is rolled back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from functools import lru_cache
from ipaddress import ip_address
from typing import Protocol, TypeVar

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.admission.service import Admission
from app.audit.call_audit import AdmissionEvents, CallAudit
from app.audit.records import AuditSink
from app.counter.entitlement import entitlement, history_start
from app.counter.ports import Ledger, MemberReader, NewPayment, PaymentRow, TransactionIdTaken
from app.counter.records import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    ConfirmResult,
    CounterInfo,
    InquiryRequest,
    InquiryResult,
    Operation,
    PayableMonth,
    StatusResult,
    TxnState,
)
from app.counter.request_hash import confirm_request_hash
from app.db.read_meta import ReadPath
from app.db.recent_writes import RecentWrites
from app.domain.calendar import business_date, ensure_cancellable
from app.domain.months import Month
from app.domain.national_id import validate_national_id
from app.domain.payable import MonthDue, default_selection, total_satang
from app.domain.payment_rules import validate_payment
from app.domain.receipt import receipt_number
from app.domain.section39 import S39Policy
from app.domain.section40 import S40Policy
from app.errors import (
    DuplicateTransaction,
    InvalidInput,
    PersonNotFound,
    SectionMismatch,
    ServerError,
    ServiceError,
    TransactionNotFound,
)
from app.observability.call_context import note_call
from app.principals.records import Principal
from app.rates.book import RateBook

T = TypeVar("T")
COUNTER_SCOPE = "counter"
MAX_TXN_ID = 64
MAX_REASON = 500


class CounterEvents(AdmissionEvents, Protocol):
    def payment_confirmed(self, *, section: int, partner: str, amount_satang: int) -> None: ...

    def payment_cancelled(self, *, section: int, partner: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CounterRules:
    """The settings the counter use cases apply."""

    s39: S39Policy
    s40: S40Policy
    ceiling_satang: int
    cutoff: time
    prefixes: dict[int, frozenset[str]]


def _payable(due: MonthDue) -> PayableMonth:
    return PayableMonth(
        str(due.month), due.amount_satang, due.due_date, due.overdue, due.government_satang
    )


def _check_txn_id(value: str) -> str:
    text = value.strip()
    if not 1 <= len(text) <= MAX_TXN_ID or not text.isprintable():
        raise InvalidInput(
            f"partnerTxnId must be 1 to {MAX_TXN_ID} printable characters.", field="partnerTxnId"
        )
    return text


def _check_text(value: str | None, *, field: str, limit: int) -> str | None:
    """Optional free text: trimmed, printable (no control characters), at most ``limit``."""
    if value is None:
        return None
    text = value.strip()
    if len(text) > limit or not text.isprintable():
        raise InvalidInput(f"{field} must be at most {limit} printable characters.", field=field)
    return text or None


def _check_counter(counter: CounterInfo) -> CounterInfo:
    return CounterInfo(
        store_id=_check_text(counter.store_id, field="storeId", limit=MAX_TXN_ID),
        terminal_id=_check_text(counter.terminal_id, field="terminalId", limit=MAX_TXN_ID),
        shift=_check_text(counter.shift, field="shift", limit=MAX_TXN_ID),
        operator_id=_check_text(counter.operator_id, field="operatorId", limit=MAX_TXN_ID),
    )


@lru_cache(maxsize=4096)  # a few addresses make every call: parse each once
def _valid_ip(text: str) -> str | None:
    try:
        return str(ip_address(text))
    except ValueError:
        return None


def _confirm_result(row: PaymentRow, *, replayed: bool) -> ConfirmResult:
    return ConfirmResult(
        partner_txn_id=row.partner_txn_id,
        receipt_no=row.receipt_no,
        national_id=row.national_id,
        section=row.section,
        months=tuple(str(m) for m in row.months),
        amount_satang=row.amount_satang,
        savings_satang=row.savings_satang,
        posted_at=row.posted_at,
        business_date=row.business_date,
        replayed=replayed,
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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._admission = admission
        self._audit = audit
        self._reader = reader
        self._ledger = ledger
        self._rates = rates
        self._recent = recent
        self._rules = rules
        self._events = events
        self._clock = clock

    # --- the audited frame every operation runs in --------------------------------------------
    async def _audited(
        self, caller: Caller, operation: Operation, body: Callable[[CallAudit], Awaitable[T]]
    ) -> T:
        audit = CallAudit(
            sink=self._audit,
            caller=caller,
            operation=operation.value,
            source_ip=_valid_ip(self._admission.source_address(caller)),
            clock=self._clock,
            events=self._events,
        )
        try:
            return await body(audit)
        except ServiceError as error:
            failure = await audit.refused(error)
            # A client refusal that cannot be audited becomes a failure of the gateway; a
            # server failure keeps its own code (the store being down is what the caller
            # needs to know, not that its refusal could not be recorded either).
            if failure is not None and not isinstance(error, ServerError):
                note_call(outcome=failure.code)
                raise failure from error
            note_call(outcome=error.code)
            raise

    async def _admit(
        self, audit: CallAudit, caller: Caller, credentials: Credentials, operation: Operation
    ) -> Principal:
        if credentials is not None and hasattr(credentials, "username"):
            audit.principal_hint = str(credentials.username)[:64]
        principal = await self._admission.admit(
            caller=caller,
            credentials=credentials,
            operation=operation.value,
            scope=COUNTER_SCOPE,
        )
        audit.principal = principal
        return principal

    def _national_id(self, raw: str, section: int | None) -> str:
        return validate_national_id(raw, section=section, prefixes=self._rules.prefixes)

    # --- inquiry ---------------------------------------------------------------------------------
    async def inquire(
        self, *, caller: Caller, credentials: Credentials, request: InquiryRequest
    ) -> InquiryResult:
        async def body(audit: CallAudit) -> InquiryResult:
            nid = self._national_id(request.national_id, request.section)
            audit.national_id = nid
            await self._admit(audit, caller, credentials, Operation.INQUIRE)
            today = business_date(self._clock())
            member, meta = await self._reader.read_member(
                nid, since=history_start(today), min_lsn=self._recent.min_lsn(nid)
            )
            if member is None:
                raise PersonNotFound()
            if request.section is not None and member.section != request.section:
                raise SectionMismatch(
                    f"The person is insured under Section {member.section}, not {request.section}.",
                    section=member.section,
                )
            rates = await self._rates.table()
            ent = entitlement(
                member, today=today, rates=rates, s39=self._rules.s39, s40=self._rules.s40
            )
            default = default_selection(member.section, ent.months)
            s40 = self._rules.s40
            savings = member.section == 40 and member.option in s40.savings_options
            result = InquiryResult(
                national_id=nid,
                title=member.title,
                first_name=member.first_name,
                last_name=member.last_name,
                section=member.section,
                status=ent.status,
                status_reason=ent.reason,
                ended_month=str(ent.ended_month) if ent.ended_month else None,
                option=member.option,
                months=tuple(_payable(m) for m in ent.months),
                default_months=tuple(str(m.month) for m in default),
                default_total_satang=total_satang(default),
                savings_allowed=savings,
                max_savings_per_month_satang=s40.max_savings_per_month_satang if savings else 0,
                as_of=meta.as_of,
                served_by=ReadPath(meta.path),
            )
            await audit.ok(name_returned=member.display_name, servedBy=meta.path)
            return result

        return await self._audited(caller, Operation.INQUIRE, body)

    # --- confirm ---------------------------------------------------------------------------------
    async def confirm(
        self, *, caller: Caller, credentials: Credentials, request: ConfirmRequest
    ) -> ConfirmResult:
        async def body(audit: CallAudit) -> ConfirmResult:
            nid = self._national_id(request.national_id, request.section)
            audit.national_id = nid
            req = replace(request, counter=_check_counter(request.counter))
            audit.operator = req.counter.operator_id or caller.operator
            audit.terminal = req.counter.terminal_id or caller.terminal
            principal = await self._admit(audit, caller, credentials, Operation.CONFIRM)
            txn_id = _check_txn_id(req.partner_txn_id)
            months = tuple(sorted({Month.parse(m) for m in req.months}))
            if len(months) != len(req.months):
                raise InvalidInput("Each month may be named once.", field="months")
            if req.paid_at.tzinfo is None:
                raise InvalidInput("paidAt needs a time zone.", field="paidAt")
            digest = confirm_request_hash(req, national_id=nid, txn_id=txn_id)
            try:
                row, replayed = await self._post(principal, req, nid, txn_id, months, digest, audit)
            except TransactionIdTaken:
                # A concurrent request with this id committed first: answer as a replay.
                row, replayed = await self._replay(principal, txn_id, digest), True
                await audit.ok(receiptNo=row.receipt_no, replayed=True)
            if not replayed and self._events is not None:
                self._events.payment_confirmed(
                    section=row.section, partner=principal.name, amount_satang=row.amount_satang
                )
            return _confirm_result(row, replayed=replayed)

        return await self._audited(caller, Operation.CONFIRM, body)

    async def _replay(self, principal: Principal, txn_id: str, digest: bytes) -> PaymentRow:
        row = await self._ledger.find_payment(principal, txn_id)
        if row is None:
            raise TransactionNotFound()
        if row.request_hash != digest:
            raise DuplicateTransaction(
                "This transaction id was already used with a different request.",
                partnerTxnId=txn_id,
                receiptNo=row.receipt_no,
            )
        return row

    async def _post(
        self,
        principal: Principal,
        request: ConfirmRequest,
        nid: str,
        txn_id: str,
        months: tuple[Month, ...],
        digest: bytes,
        audit: CallAudit,
    ) -> tuple[PaymentRow, bool]:
        now = self._clock()
        today = business_date(now)
        # Before the transaction: loading the rates may need a connection of its own, and a
        # pool full of open confirms waiting for one more would never drain.
        rates = await self._rates.table()
        async with self._ledger.transaction() as tx:
            member = await tx.lock_member(nid, since=history_start(today))
            existing = await tx.find_payment(principal, txn_id)
            if existing is not None:
                if existing.request_hash != digest:
                    raise DuplicateTransaction(
                        "This transaction id was already used with a different request.",
                        partnerTxnId=txn_id,
                        receiptNo=existing.receipt_no,
                    )
                await audit.ok(receiptNo=existing.receipt_no, replayed=True)
                return existing, True
            if member is None:
                raise PersonNotFound()
            if member.section != request.section:
                raise SectionMismatch(
                    f"The person is insured under Section {member.section}, not {request.section}.",
                    section=member.section,
                )
            ent = entitlement(
                member,
                today=today,
                rates=rates,
                s39=self._rules.s39,
                s40=self._rules.s40,
            )
            ent.ensure_may_pay()
            valid = validate_payment(
                section=member.section,
                option=member.option,
                requested=months,
                amount_satang=request.amount_satang,
                savings_satang=request.savings_satang,
                payable=ent.months,
                paid=member.paid.keys(),
                ceiling_satang=self._rules.ceiling_satang,
                s40_policy=self._rules.s40,
            )
            receipt = receipt_number(await tx.next_receipt_sequence(), business_date=today)
            row = await tx.insert_payment(
                NewPayment(
                    principal=principal,
                    partner_txn_id=txn_id,
                    receipt_no=receipt,
                    national_id=nid,
                    section=member.section,
                    option=member.option,
                    months=valid.months,
                    month_amounts=tuple(line.amount_satang for line in valid.lines),
                    amount_satang=valid.total_satang,
                    savings_satang=valid.savings_satang,
                    request_hash=digest,
                    business_date=request.business_date,
                    paid_at=request.paid_at,
                    store_id=request.counter.store_id,
                    terminal_id=request.counter.terminal_id,
                    shift=request.counter.shift,
                    operator_id=request.counter.operator_id,
                )
            )
            # Committed before the payment: if the audit trail cannot take it, no payment.
            await audit.ok(receiptNo=receipt, amountSatang=valid.total_satang)
        self._recent.note(nid, await self._ledger.current_lsn())
        return row, False

    # --- cancel ----------------------------------------------------------------------------------
    async def cancel(
        self, *, caller: Caller, credentials: Credentials, request: CancelRequest
    ) -> CancelResult:
        async def body(audit: CallAudit) -> CancelResult:
            principal = await self._admit(audit, caller, credentials, Operation.CANCEL)
            txn_id = _check_txn_id(request.partner_txn_id)
            reason = _check_text(request.reason, field="reason", limit=MAX_REASON)
            if not reason:
                raise InvalidInput("A cancel needs a reason.", field="reason")
            now = self._clock()
            async with self._ledger.transaction() as tx:
                row = await tx.find_payment(principal, txn_id, for_update=True)
                if row is None:
                    raise TransactionNotFound()
                audit.national_id = row.national_id
                changed = row.state != TxnState.CANCELLED.value
                if changed:
                    ensure_cancellable(
                        business_date=business_date(row.posted_at),
                        instant=now,
                        cutoff=self._rules.cutoff,
                    )
                    row = await tx.cancel_payment(row.id, reason=reason, at=now)
                await audit.ok(receiptNo=row.receipt_no, alreadyCancelled=not changed)
            if changed:
                self._recent.note(row.national_id, await self._ledger.current_lsn())
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

        return await self._audited(caller, Operation.CANCEL, body)

    # --- status ----------------------------------------------------------------------------------
    async def status(
        self, *, caller: Caller, credentials: Credentials, partner_txn_id: str
    ) -> StatusResult:
        async def body(audit: CallAudit) -> StatusResult:
            principal = await self._admit(audit, caller, credentials, Operation.STATUS)
            txn_id = _check_txn_id(partner_txn_id)
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

        return await self._audited(caller, Operation.STATUS, body)
