"""The counter use cases as both adapters see them."""

from __future__ import annotations

from typing import NoReturn, Protocol

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.counter.records import (
    CancelRequest,
    CancelResult,
    ConfirmRequest,
    ConfirmResult,
    InquiryRequest,
    InquiryResult,
    Operation,
    StatusResult,
)
from app.errors import ServiceError


class CounterOperations(Protocol):
    """Inquiry, confirm, cancel and status: admission, rules and audit included.

    Every method admits the caller (address, credential, operation, rate) before it judges
    anything of the request, runs the use case, writes the audit record and only then returns;
    every failure is a ``ServiceError``.
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

    async def refuse(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        operation: Operation,
        error: ServiceError,
        national_id: str | None = None,
    ) -> NoReturn:
        """Refuse a request the adapter could not read with ``error``, once its caller is
        admitted (a caller that is not learns only that); audited like the others, naming
        ``national_id`` (as sent) when it is a valid one."""
