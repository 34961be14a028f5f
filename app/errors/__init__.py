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
    │   │   ├── ApplicationBackdated  client.application_backdated       422
    │   │   └── InvalidExtract        client.invalid_extract             422
    │   ├── NotFound                  client.not_found                   404
    │   │   ├── PersonNotFound        client.person_not_found            404
    │   │   ├── TransactionNotFound   client.transaction_not_found       404
    │   │   └── UnknownOperation      client.unknown_operation           404
    │   ├── MethodNotAllowed          client.method_not_allowed          405
    │   ├── Conflict                  client.conflict                    409
    │   │   ├── AlreadyPaid           client.already_paid                409
    │   │   ├── DuplicateTransaction  client.duplicate_transaction       409
    │   │   ├── AlreadyExists         client.already_exists              409
    │   │   └── StatusContradictsRules client.status_contradicts_rules   409
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
    │   │   ├── NotEligibleForSection39 client.s39_not_eligible          422
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
        ├── RateAddedUnlisted         server.rate_added_unlisted         500
        ├── Overloaded                server.overloaded                  503 (retryable)
        └── ShuttingDown              server.shutting_down               503 (retryable)
"""

from __future__ import annotations

from app.errors.access import (
    AccessRefused,
    ClockSkew,
    HeadersTooLarge,
    OperationNotAllowed,
    PartnerDisabled,
    PayloadTooLarge,
    RateLimited,
    ScopeNotAllowed,
    Unauthenticated,
)
from app.errors.base import (
    ClientError,
    ServerError,
    ServiceError,
)
from app.errors.client import (
    AlreadyExists,
    AlreadyPaid,
    AmountMismatch,
    ApplicationBackdated,
    BusinessDateMismatch,
    BusinessRefusal,
    CancelNotAllowed,
    Conflict,
    DuplicateTransaction,
    InvalidAmount,
    InvalidExtract,
    InvalidInput,
    InvalidMonth,
    InvalidNationalId,
    InvalidSettlementFile,
    InvalidSoapEnvelope,
    MemberInactive,
    MemberTerminated,
    MethodNotAllowed,
    MonthNotPayable,
    MonthsNotContiguous,
    NoRate,
    NotEligibleForSection39,
    NotFound,
    OptionChangeRefused,
    OverCeiling,
    PaidAtOutOfWindow,
    PersonNotFound,
    SavingsNotAllowed,
    SectionMismatch,
    StatusContradictsRules,
    TransactionCancelled,
    TransactionNotFound,
    UnknownOperation,
)
from app.errors.server import (
    AuditUnavailable,
    Overloaded,
    RateAddedUnlisted,
    ReadOnlyStore,
    ShuttingDown,
    StoreUnavailable,
)


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


__all__ = [
    "AccessRefused",
    "AlreadyExists",
    "AlreadyPaid",
    "AmountMismatch",
    "ApplicationBackdated",
    "AuditUnavailable",
    "BusinessDateMismatch",
    "BusinessRefusal",
    "CancelNotAllowed",
    "ClientError",
    "ClockSkew",
    "Conflict",
    "DuplicateTransaction",
    "HeadersTooLarge",
    "InvalidAmount",
    "InvalidExtract",
    "InvalidInput",
    "InvalidMonth",
    "InvalidNationalId",
    "InvalidSettlementFile",
    "InvalidSoapEnvelope",
    "MemberInactive",
    "MemberTerminated",
    "MethodNotAllowed",
    "MonthNotPayable",
    "MonthsNotContiguous",
    "NoRate",
    "NotEligibleForSection39",
    "NotFound",
    "OperationNotAllowed",
    "OptionChangeRefused",
    "OverCeiling",
    "Overloaded",
    "PaidAtOutOfWindow",
    "PartnerDisabled",
    "PayloadTooLarge",
    "PersonNotFound",
    "RateAddedUnlisted",
    "RateLimited",
    "ReadOnlyStore",
    "SavingsNotAllowed",
    "ScopeNotAllowed",
    "SectionMismatch",
    "ServerError",
    "ServiceError",
    "ShuttingDown",
    "StatusContradictsRules",
    "StoreUnavailable",
    "TransactionCancelled",
    "TransactionNotFound",
    "Unauthenticated",
    "UnknownOperation",
    "all_error_classes",
]
