"""The gateway's one error vocabulary.

Every failure a caller can meet is a ``ServiceError`` with a stable dotted ``code``, a message
for people and ``details`` (JSON-safe values a counter clerk or a script can use). Adapters render
it: REST as ``application/problem+json`` with ``http_status``, SOAP as a Fault (Client/Sender for
``ClientError``, Server/Receiver for ``ServerError``) carrying the code in its detail. Each code's
message in Thai and its published meaning are in ``app/error_catalogue.py``; the contracts
(contribution.xsd's ErrorCode, the OpenAPI Problem's ``code``) list exactly these codes.

    ServiceError                      server.internal
    ├── ClientError                   the caller can fix it (REST 4xx, SOAP Client/Sender)
    │   ├── InvalidInput              client.invalid_input               422
    │   │   ├── InvalidNationalId     client.invalid_national_id         422
    │   │   ├── InvalidMonth          client.invalid_month               422
    │   │   ├── InvalidAmount         client.invalid_amount              422
    │   │   ├── InvalidSoapEnvelope   client.invalid_envelope            400
    │   │   ├── InvalidSettlementFile client.invalid_settlement_file     422
    │   │   ├── BusinessDateMismatch  client.business_date_mismatch      422
    │   │   ├── PaidAtOutOfWindow     client.paid_at_out_of_window       422
    │   │   └── InvalidExtract        client.invalid_extract             422
    │   ├── NotFound                  client.not_found                   404
    │   │   ├── PersonNotFound        client.person_not_found            404
    │   │   ├── TransactionNotFound   client.transaction_not_found       404
    │   │   └── UnknownOperation      client.unknown_operation           404
    │   ├── MethodNotAllowed          client.method_not_allowed          405
    │   ├── Conflict                  client.conflict                    409
    │   │   ├── AlreadyPaid           client.already_paid                409
    │   │   ├── DuplicateTransaction  client.duplicate_transaction       409
    │   │   └── AlreadyExists         client.already_exists              409
    │   ├── BusinessRefusal           client.refused                     422
    │   │   ├── MonthNotPayable       client.month_not_payable           422
    │   │   ├── MonthsNotContiguous   client.months_not_contiguous       422
    │   │   ├── AmountMismatch        client.amount_mismatch             422
    │   │   ├── OverCeiling           client.over_ceiling                422
    │   │   ├── SavingsNotAllowed     client.savings_not_allowed         422
    │   │   ├── MemberTerminated      client.member_terminated           422
    │   │   ├── MemberInactive        client.member_inactive             422
    │   │   ├── SectionMismatch       client.section_mismatch            422
    │   │   ├── NoRate                client.no_rate                     422
    │   │   ├── OptionChangeRefused   client.option_change_refused       422
    │   │   ├── CancelNotAllowed      client.cancel_not_allowed          422
    │   │   └── TransactionCancelled  client.transaction_cancelled       409
    │   └── AccessRefused             client.access_refused              403
    │       ├── Unauthenticated       client.unauthenticated             401
    │       │   └── ClockSkew         client.clock_skew                  401
    │       ├── OperationNotAllowed   client.operation_not_allowed       403
    │       ├── PartnerDisabled       client.partner_disabled            403
    │       ├── ScopeNotAllowed       client.scope_not_allowed           403
    │       ├── RateLimited           client.rate_limited                429
    │       ├── HeadersTooLarge       client.headers_too_large           431
    │       └── PayloadTooLarge       client.payload_too_large           413
    └── ServerError                   the gateway or its stores failed (REST 5xx, SOAP Server)
        ├── StoreUnavailable          server.store_unavailable           503 (retryable)
        ├── ReadOnlyStore             server.read_only_store             500
        ├── AuditUnavailable          server.audit_unavailable           503 (retryable)
        ├── Overloaded                server.overloaded                  503 (retryable)
        └── ShuttingDown              server.shutting_down               503 (retryable)
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base of every error the gateway reports to a caller."""

    code: ClassVar[str] = "server.internal"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False
    default_message: ClassVar[str] = "The gateway failed to complete the request."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details: dict[str, Any] = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    @property
    def reason(self) -> str | None:
        """A stable word for why, for the audit trail and logs (the ``reason`` detail, if any)."""
        reason = self.details.get("reason")
        return reason if isinstance(reason, str) else None

    @property
    def audit_message(self) -> str:
        """What the audit trail keeps of the error: its message, unless the caller was told less."""
        return self.message


class ClientError(ServiceError):
    """The request cannot succeed as sent; the caller must change it."""

    code = "client.bad_request"
    http_status = 400
    default_message = "The request is not valid."


class ServerError(ServiceError):
    """The gateway or one of its stores failed; the request itself may be fine."""

    code = "server.internal"
    http_status = 500


# --- input -----------------------------------------------------------------------------------
class InvalidInput(ClientError):
    code = "client.invalid_input"
    http_status = 422
    default_message = "A field of the request is not valid."


class InvalidNationalId(InvalidInput):
    code = "client.invalid_national_id"
    default_message = "The national ID is not valid."


class InvalidMonth(InvalidInput):
    code = "client.invalid_month"
    default_message = "The contribution month is not valid (expected YYYY-MM)."


class InvalidAmount(InvalidInput):
    code = "client.invalid_amount"
    default_message = "The amount is not valid."


class InvalidSoapEnvelope(InvalidInput):
    code = "client.invalid_envelope"
    http_status = 400
    default_message = "The SOAP envelope is not valid."


class InvalidSettlementFile(InvalidInput):
    code = "client.invalid_settlement_file"
    default_message = "The settlement file is not valid."


class BusinessDateMismatch(InvalidInput):
    code = "client.business_date_mismatch"
    default_message = "The business date is not the gateway's business day for this payment."


class PaidAtOutOfWindow(InvalidInput):
    code = "client.paid_at_out_of_window"
    default_message = "The time the cash was taken is too far from the gateway's clock."


class InvalidExtract(InvalidInput):
    code = "client.invalid_extract"
    default_message = "The source-system extract is not valid."


# --- not found -------------------------------------------------------------------------------
class NotFound(ClientError):
    code = "client.not_found"
    http_status = 404
    default_message = "The requested resource does not exist."


class PersonNotFound(NotFound):
    code = "client.person_not_found"
    default_message = "No insured person has this national ID."


class TransactionNotFound(NotFound):
    code = "client.transaction_not_found"
    default_message = "No transaction with this id exists for this partner."


class MethodNotAllowed(ClientError):
    code = "client.method_not_allowed"
    http_status = 405
    default_message = "This method is not allowed on this resource."


class UnknownOperation(NotFound):
    code = "client.unknown_operation"
    default_message = "The operation is not known."


# --- conflicts -------------------------------------------------------------------------------
class Conflict(ClientError):
    code = "client.conflict"
    http_status = 409
    default_message = "The request conflicts with the current state."


class AlreadyPaid(Conflict):
    code = "client.already_paid"
    default_message = "One or more of these months are already paid."


class DuplicateTransaction(Conflict):
    code = "client.duplicate_transaction"
    default_message = "This transaction id was already used with a different request."


class AlreadyExists(Conflict):
    code = "client.already_exists"
    default_message = "The resource already exists."


# --- business refusals -----------------------------------------------------------------------
class BusinessRefusal(ClientError):
    code = "client.refused"
    http_status = 422
    default_message = "The request is refused by the contribution rules."


class MonthNotPayable(BusinessRefusal):
    code = "client.month_not_payable"
    default_message = "A requested month cannot be paid today."


class MonthsNotContiguous(BusinessRefusal):
    code = "client.months_not_contiguous"
    default_message = "Months must be paid in order from the earliest unpaid payable month."


class AmountMismatch(BusinessRefusal):
    code = "client.amount_mismatch"
    default_message = "The amount differs from the amount due for these months."


class OverCeiling(BusinessRefusal):
    code = "client.over_ceiling"
    default_message = "The amount is over the per-transaction ceiling."


class SavingsNotAllowed(BusinessRefusal):
    code = "client.savings_not_allowed"
    default_message = "Additional savings are not allowed for this member or amount."


class MemberTerminated(BusinessRefusal):
    code = "client.member_terminated"
    default_message = "The membership has ended; payments are refused."


class MemberInactive(BusinessRefusal):
    code = "client.member_inactive"
    default_message = "The membership is not active; payments are refused."


class SectionMismatch(BusinessRefusal):
    code = "client.section_mismatch"
    default_message = "The person is not insured under the requested section."


class NoRate(BusinessRefusal):
    code = "client.no_rate"
    default_message = "No contribution rate is defined for this month."


class OptionChangeRefused(BusinessRefusal):
    code = "client.option_change_refused"
    default_message = "The Section 40 option cannot be changed now."


class CancelNotAllowed(BusinessRefusal):
    code = "client.cancel_not_allowed"
    default_message = "The payment can no longer be cancelled at the counter."


class TransactionCancelled(BusinessRefusal):
    code = "client.transaction_cancelled"
    http_status = 409
    default_message = "The transaction was cancelled."


# --- access ----------------------------------------------------------------------------------
class AccessRefused(ClientError):
    code = "client.access_refused"
    http_status = 403
    default_message = "Access refused."


class Unauthenticated(AccessRefused):
    """The one answer to a caller not admitted, whatever failed (credential, standing, address),
    in the same words, so no answer tells whether a username exists or which check failed.
    ``reason`` says which and ``audit_message`` how, for the audit trail, logs and metrics only
    (neither is a detail). Only ``ClockSkew`` tells its own message."""

    code = "client.unauthenticated"
    http_status = 401
    default_message = "The caller is not admitted (credentials missing, not valid or not accepted)."
    _tells_message: ClassVar[bool] = False  # the caller is told only default_message

    def __init__(
        self, message: str | None = None, *, reason: str = "invalid_credentials", **details: Any
    ) -> None:
        super().__init__(message if self._tells_message else None, **details)
        self._reason = reason
        self._note = message

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def audit_message(self) -> str:
        return self._note or self.message


class ClockSkew(Unauthenticated):
    """A WS-Security Created time outside the gateway's window: the terminal's clock is wrong.
    Judged before the username is looked up, so it says nothing about the username."""

    code = "client.clock_skew"
    default_message = "The WS-Security Created time is too far from the gateway's clock."
    _tells_message = True

    def __init__(self, message: str | None = None, **details: Any) -> None:
        super().__init__(message, reason="clock_skew", **details)


class OperationNotAllowed(AccessRefused):
    code = "client.operation_not_allowed"
    default_message = "The operation is not allowed for this caller."


class PartnerDisabled(AccessRefused):
    """Work asked about a disabled partner (its feed); a disabled caller gets Unauthenticated."""

    code = "client.partner_disabled"
    default_message = "The partner or client is disabled."


class ScopeNotAllowed(AccessRefused):
    code = "client.scope_not_allowed"
    default_message = "The token does not carry the scope this operation needs."


class RateLimited(AccessRefused):
    code = "client.rate_limited"
    http_status = 429
    retryable = True
    default_message = "Too many requests; slow down and retry later."


class HeadersTooLarge(AccessRefused):
    code = "client.headers_too_large"
    http_status = 431
    default_message = "The request headers are too many or too large."


class PayloadTooLarge(AccessRefused):
    code = "client.payload_too_large"
    http_status = 413
    default_message = "The request body is too large."


# --- server ----------------------------------------------------------------------------------
class StoreUnavailable(ServerError):
    code = "server.store_unavailable"
    http_status = 503
    retryable = True
    default_message = "The database is unavailable; retry the same request later."


class ReadOnlyStore(ServerError):
    code = "server.read_only_store"
    http_status = 500
    default_message = "A write was sent to a read-only store."


class AuditUnavailable(ServerError):
    code = "server.audit_unavailable"
    http_status = 503
    retryable = True
    default_message = "The audit trail could not be written; the call was not carried out."


class Overloaded(ServerError):
    code = "server.overloaded"
    http_status = 503
    retryable = True
    default_message = "The gateway is overloaded; retry later."


class ShuttingDown(ServerError):
    code = "server.shutting_down"
    http_status = 503
    retryable = True
    default_message = "The gateway instance is shutting down; retry on another."


def all_error_classes() -> list[type[ServiceError]]:
    """Every error class of the vocabulary, base first (for documentation and tests)."""
    seen: list[type[ServiceError]] = []
    stack: list[type[ServiceError]] = [ServiceError]
    while stack:
        cls = stack.pop(0)
        if cls not in seen:
            seen.append(cls)
            stack.extend(cls.__subclasses__())
    return seen
