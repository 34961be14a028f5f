"""The counter use cases as both adapters see them."""

from __future__ import annotations

from typing import Protocol

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.counter.records import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    ConfirmResult,
    InquiryRequest,
    InquiryResult,
    StatusResult,
)


class CounterOperations(Protocol):
    """Inquiry, confirm, cancel and status: admission, rules and audit included.

    Every method admits the caller (address, credential, operation, rate), runs the use case,
    writes the audit record and only then returns; every failure is a ``ServiceError``.
    """

    async def inquire(
        self, *, caller: Caller, credentials: Credentials, request: InquiryRequest
    ) -> InquiryResult: ...

    async def confirm(
        self, *, caller: Caller, credentials: Credentials, request: ConfirmRequest
    ) -> ConfirmResult: ...

    async def cancel(
        self, *, caller: Caller, credentials: Credentials, request: CancelRequest
    ) -> CancelResult: ...

    async def status(
        self, *, caller: Caller, credentials: Credentials, partner_txn_id: str
    ) -> StatusResult: ...
