"""Posting a confirm: decided on the primary in one transaction that also holds its record.

The member is locked (the transaction's first statement) and read with the payment the
transaction id already names (a replay answers with that payment, whenever it is repeated) and
the receipt sequence a new payment takes; the payment's business day is decided from the
gateway's clock and the cut-off, its ``paidAt`` checked against the gateway's clock, the
payment checked against the member's entitlement *at the moment the cash was taken* and
inserted with the audit record in one statement, all in one transaction: the record and the
payment commit together or not at all (no record names a receipt that does not exist, no
payment is without its record). The record's place on the hash chain follows the commit
(``app.audit.unlinked``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.audit.call_audit import CallAudit
from app.counter.entitlement import entitlement, history_start
from app.counter.ports import ConfirmRead, Ledger, LedgerTransaction, NewPayment, PaymentRow
from app.counter.records import ConfirmRequest, ConfirmResult, TxnState
from app.counter.rules import CounterRules
from app.db.recent_writes import RecentWrites
from app.domain.calendar import bangkok_date, ensure_same_business_day, settlement_day
from app.domain.months import Month
from app.domain.payment_rules import validate_payment
from app.domain.rates import RateTable
from app.domain.receipt import receipt_number
from app.errors import (
    DuplicateTransaction,
    PersonNotFound,
    SectionMismatch,
    TransactionCancelled,
    TransactionNotFound,
)
from app.principals.records import Principal
from app.rates.book import RateBook


def _taken(paid_at: datetime, now: datetime) -> datetime:
    """When the cash was taken, as the rules judge it: the counter's ``paidAt``, but never
    after the gateway's clock. The window allows a counter's clock to run a little fast; cash is
    not taken in the future, so a fast clock must not make a month payable (or overdue) before
    the gateway's inquiry does."""
    return min(paid_at, now)


def confirm_result(row: PaymentRow, *, replayed: bool) -> ConfirmResult:
    """The answer to a confirm, from the payment it posted or replayed."""
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


def _reused(txn_id: str, row: PaymentRow) -> DuplicateTransaction:
    return DuplicateTransaction(
        "This transaction id was already used with a different request.",
        partnerTxnId=txn_id,
        receiptNo=row.receipt_no,
    )


def _replay_of(txn_id: str, row: PaymentRow, digest: bytes) -> PaymentRow:
    """``row`` as the answer to a repeat of the request that made it: refused if the repeat is
    a different request, or if the payment was cancelled since (its receipt is void)."""
    if row.request_hash != digest:
        raise _reused(txn_id, row)
    if row.state == TxnState.CANCELLED.value:
        raise TransactionCancelled(
            "This payment was cancelled; its receipt is void. A new payment needs a new "
            "transaction id.",
            partnerTxnId=txn_id,
            receiptNo=row.receipt_no,
        )
    return row


class PaymentPosting:
    """Posts a partner's payment on the primary, or finds the one its transaction id names."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        rates: RateBook,
        recent: RecentWrites,
        rules: CounterRules,
        clock: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._rates = rates
        self._recent = recent
        self._rules = rules
        self._clock = clock

    async def replay(self, principal: Principal, txn_id: str, digest: bytes) -> PaymentRow:
        """The payment ``txn_id`` names, if it was made by the same request."""
        row = await self._ledger.find_payment(principal, txn_id)
        if row is None:
            raise TransactionNotFound()
        return _replay_of(txn_id, row, digest)

    async def post(
        self,
        principal: Principal,
        request: ConfirmRequest,
        nid: str,
        txn_id: str,
        months: tuple[Month, ...],
        digest: bytes,
        audit: CallAudit,
    ) -> tuple[PaymentRow, bool]:
        """Post the payment (or find its replay) with its audit record; True if replayed."""
        # Payable months are judged when the cash was taken (within the drift the rules allow),
        # so 23:59:50 on the last day of a month still pays that month when it arrives at 00:00:05;
        # never later than the gateway's clock (``_taken``).
        today = bangkok_date(_taken(request.paid_at, self._clock()))
        # Before the transaction: loading the rates may need a connection of its own, and a
        # pool full of open confirms waiting for one more would never drain.
        rates = await self._rates.table()
        async with self._ledger.transaction() as tx:
            read = await tx.lock_and_read(nid, principal, txn_id, since=history_start(today))
            # The business day is read once the person is ours, not before a wait for the lock:
            # a confirm that queued past the cut-off belongs to the next day, whose settlement
            # cannot have been taken yet (app.settlement.service).
            now = self._clock()
            replayed = read.payment is not None
            if read.payment is not None:
                row = _replay_of(txn_id, read.payment, digest)
                await audit.ok_within(tx, receiptNo=row.receipt_no, replayed=True)
            else:
                if read.rate_digest != rates.digest:
                    # A rate was added since this instance's table was read (by another
                    # instance, say): the payment is priced by the table the primary holds now.
                    rates = await self._rates.reload_with(tx.load_rates)
                row = await self._pay(tx, read, principal, request, nid, txn_id, months,
                                      digest, audit, now=now, rates=rates)  # fmt: skip
        audit.committed()
        if not replayed and tx.committed_lsn is not None:
            self._recent.note(nid, tx.committed_lsn)
        return row, replayed

    async def _pay(
        self,
        tx: LedgerTransaction,
        read: ConfirmRead,
        principal: Principal,
        request: ConfirmRequest,
        nid: str,
        txn_id: str,
        months: tuple[Month, ...],
        digest: bytes,
        audit: CallAudit,
        *,
        now: datetime,
        rates: RateTable,
    ) -> PaymentRow:
        """Check the payment against the member's entitlement and insert it, with the call's
        audit record (in the same statement: the record commits with the payment or neither)."""
        member = read.member
        # The business day is the gateway's: after the cut-off, cash belongs to the next day.
        day = settlement_day(now, self._rules.cutoff)
        paid_at = request.paid_at
        ensure_same_business_day(request.business_date, day)
        self._rules.paid_at_window.check(paid_at, now=now)
        today = bangkok_date(_taken(paid_at, now))
        if member is None:
            raise PersonNotFound()
        if member.section != request.section:
            raise SectionMismatch(
                f"The person is insured under Section {member.section}, not {request.section}.",
                section=member.section,
            )
        ent = entitlement(
            member, today=today, rates=rates, s39=self._rules.s39, s40=self._rules.s40
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
        assert read.receipt_sequence is not None  # drawn for a person without this payment
        receipt = receipt_number(read.receipt_sequence, business_date=day)
        record = audit.ok_record(receiptNo=receipt, amountSatang=valid.total_satang)
        return await tx.insert_payment(
            NewPayment(
                principal=principal,
                partner_txn_id=txn_id,
                receipt_no=receipt,
                national_id=nid,
                section=member.section,
                option=member.option,
                months=valid.months,
                month_amounts=tuple(line.amount_satang for line in valid.lines),
                month_options=tuple(
                    member.option if line.option is None else line.option for line in valid.lines
                ),
                month_surcharges=tuple(line.surcharge_satang for line in valid.lines),
                amount_satang=valid.total_satang,
                savings_satang=valid.savings_satang,
                request_hash=digest,
                business_date=day,
                paid_at=paid_at,
                paid_on=today,
                posted_at=now,
                store_id=request.counter.store_id,
                terminal_id=request.counter.terminal_id,
                shift=request.counter.shift,
                operator_id=request.counter.operator_id,
            ),
            record,
        )
