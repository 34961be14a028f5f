"""An in-memory CounterOperations for the SOAP adapter's own tests (no database).

It keeps the few rules the adapter's tests need to meet every kind of answer: admission by a
UsernameToken whose digest it really checks (so the adapter must pass Nonce and Created on
exactly), payable months, idempotent confirm, cancel and status. The real service is tested
against PostgreSQL elsewhere; nothing here stands for its rules.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import NoReturn

from app.admission.credentials import Credentials, PasswordType, UsernameToken
from app.admission.records import Caller
from app.counter.records import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    ConfirmResult,
    EndedMembership,
    InquiryRequest,
    InquiryResult,
    Operation,
    PayableMonth,
    StatusResult,
    TxnState,
)
from app.db.read_meta import ReadPath
from app.errors import (
    AlreadyPaid,
    AmountMismatch,
    DuplicateTransaction,
    MonthNotPayable,
    PersonNotFound,
    ServiceError,
    TransactionCancelled,
    TransactionNotFound,
    Unauthenticated,
)

USERNAME = "counter-1"
PASSWORD = "demo-secret"
NOW = datetime(2024, 6, 10, 2, 30, tzinfo=UTC)  # 09:30 in Bangkok
AS_OF = datetime(2024, 6, 10, 2, 29, 58, 500_000, tzinfo=UTC)

S39_ID = "3100600445635"
S40_ID = "1112034563562"
ENDED_ID = "1234545678781"
#: Back in Section 39 after Section 33 employment (admitted by an officer's override), with two
#: memberships that ended before: contract 1.1's eligibility and previousMemberships.
RETURNED_ID = "3102700451205"


def person(national_id: str) -> InquiryResult:
    if national_id == S39_ID:
        months = tuple(
            PayableMonth(m, 43_200, date(y, due, 15), overdue, None)
            for m, y, due, overdue in (("2024-04", 2024, 5, True), ("2024-05", 2024, 6, False))
        )
        return InquiryResult(
            S39_ID, "นาย", "สมชาย", "ใจดี", 39, "active", None, None, None,
            months, ("2024-04", "2024-05"), 86_400, False, 0, AS_OF, ReadPath.REPLICA,
            effective_date=date(2019, 3, 1), return_code="00", payment_period="monthly",
        )  # fmt: skip
    if national_id == S40_ID:
        months = tuple(PayableMonth(f"2024-{m:02d}", 10_000, None, False, 5_000) for m in (6, 7))
        return InquiryResult(
            S40_ID, "นางสาว", "มาลี", "ศรีสุข", 40, "active", None, None, 2,
            months, ("2024-06",), 10_000, True, 100_000, AS_OF, ReadPath.PRIMARY,
            payment_period="202405", payment_method="counter",
            last_payment_date=date(2024, 5, 20), last_payment_satang=10_000,
            amount_due_satang=10_000,
        )  # fmt: skip
    if national_id == RETURNED_ID:
        months = (PayableMonth("2024-06", 43_200, date(2024, 7, 15), False, None),)
        return InquiryResult(
            RETURNED_ID, "นาง", "สมใจ", "กลับมา", 39, "active", None, None, None,
            months, ("2024-06",), 43_200, False, 0, AS_OF, ReadPath.REPLICA,
            effective_date=date(2024, 6, 1), eligibility="override",
            previous_memberships=(
                EndedMembership(40, date(2022, 7, 1), "2023-09", "section33_employment", 1),
                EndedMembership(39, date(2019, 3, 1), "2022-05", "three_consecutive_unpaid", None),
            ),
        )  # fmt: skip
    if national_id == ENDED_ID:
        return InquiryResult(
            ENDED_ID, "นาย", "ทดสอบ", "สิ้นสุด", 39, "terminated",
            "three_consecutive_unpaid", "2024-01", None,
            (), (), 0, False, 0, AS_OF, ReadPath.REPLICA,
        )  # fmt: skip
    raise PersonNotFound(nationalId=national_id)


def digest(nonce_b64: str, created: str, password: str) -> str:
    """Base64(SHA-1(nonce + created + password)), as the UsernameToken Profile defines it."""
    raw = base64.b64decode(nonce_b64) + created.encode() + password.encode()
    return base64.b64encode(hashlib.sha1(raw).digest()).decode()


@dataclass
class FakeCounter:
    """Records every call; ``fail_with`` makes the next call raise that exception."""

    calls: list[tuple[str, Caller, Credentials, object]] = field(default_factory=list)
    fail_with: BaseException | None = None
    paid: dict[tuple[str, str], str] = field(default_factory=dict)  # (id, month) -> txn
    txns: dict[str, tuple[ConfirmRequest, ConfirmResult]] = field(default_factory=dict)
    cancelled: dict[str, datetime] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget every call and transaction (a live server keeps one fake for many tests)."""
        self.calls.clear()
        self.paid.clear()
        self.txns.clear()
        self.cancelled.clear()
        self.fail_with = None

    def _admit(self, name: str, caller: Caller, credentials: Credentials, request: object) -> None:
        self.calls.append((name, caller, credentials, request))
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        if not isinstance(credentials, UsernameToken) or credentials.username != USERNAME:
            raise Unauthenticated()
        if credentials.password_type is PasswordType.TEXT:
            expected = PASSWORD
        else:
            expected = digest(credentials.nonce_b64 or "", credentials.created or "", PASSWORD)
        if credentials.password != expected:
            raise Unauthenticated(reason="password")

    async def inquire(
        self, *, caller: Caller, credentials: Credentials, request: InquiryRequest
    ) -> InquiryResult:
        self._admit("inquire", caller, credentials, request)
        return person(request.national_id)

    async def confirm(
        self, *, caller: Caller, credentials: Credentials, request: ConfirmRequest
    ) -> ConfirmResult:
        self._admit("confirm", caller, credentials, request)
        if request.partner_txn_id in self.txns:
            original, result = self.txns[request.partner_txn_id]
            if original != request:
                raise DuplicateTransaction(partnerTxnId=request.partner_txn_id)
            if request.partner_txn_id in self.cancelled:  # as the gateway: its receipt is void
                raise TransactionCancelled(partnerTxnId=request.partner_txn_id)
            return replace(result, replayed=True)
        due = {m.month: m.amount_satang for m in person(request.national_id).months}
        for month in request.months:
            if month not in due:
                raise MonthNotPayable(month=month)
            if (request.national_id, month) in self.paid:
                raise AlreadyPaid(months=list(request.months))
        expected = sum(due[m] for m in request.months) + request.savings_satang
        if request.amount_satang != expected:
            raise AmountMismatch(expected=f"{expected / 100:.2f}")
        for month in request.months:
            self.paid[(request.national_id, month)] = request.partner_txn_id
        result = ConfirmResult(
            request.partner_txn_id, f"R{len(self.txns) + 1:08d}", request.national_id,
            request.section, request.months, request.amount_satang, request.savings_satang,
            NOW, request.business_date,
        )  # fmt: skip
        self.txns[request.partner_txn_id] = (request, result)
        return result

    async def cancel(
        self, *, caller: Caller, credentials: Credentials, request: CancelRequest
    ) -> CancelResult:
        self._admit("cancel", caller, credentials, request)
        if request.partner_txn_id not in self.txns:
            raise TransactionNotFound(partnerTxnId=request.partner_txn_id)
        _, result = self.txns[request.partner_txn_id]
        self.cancelled[request.partner_txn_id] = NOW  # a second cancel answers the same
        for month in result.months:
            self.paid.pop((result.national_id, month), None)
        return CancelResult(
            result.partner_txn_id, result.receipt_no, TxnState.CANCELLED, NOW,
            result.amount_satang, result.months,
        )  # fmt: skip

    async def status(
        self, *, caller: Caller, credentials: Credentials, partner_txn_id: str
    ) -> StatusResult:
        self._admit("status", caller, credentials, partner_txn_id)
        if partner_txn_id not in self.txns:
            return StatusResult(partner_txn_id, TxnState.UNKNOWN)
        _, result = self.txns[partner_txn_id]
        cancelled_at = self.cancelled.get(partner_txn_id)
        return StatusResult(
            partner_txn_id,
            TxnState.CANCELLED if cancelled_at else TxnState.CONFIRMED,
            result.receipt_no, result.national_id, result.section, result.months,
            result.amount_satang, result.savings_satang, result.posted_at, cancelled_at,
            result.business_date,
        )  # fmt: skip

    async def refuse(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        operation: Operation,
        error: ServiceError,
        national_id: str | None = None,
    ) -> NoReturn:
        self._admit(f"refuse {operation.value}", caller, credentials, national_id)
        raise error


def raise_later(error: ServiceError | Exception) -> FakeCounter:
    """A fake whose next call raises ``error``."""
    return FakeCounter(fail_with=error)
