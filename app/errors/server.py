"""What the gateway or its stores failed to do (retryable where a retry can help)."""

from __future__ import annotations

from app.errors.base import ServerError


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


class RateAddedUnlisted(ServerError):
    """A rate line was added, but the persons its overpayments concern could not be recorded,
    so they were not listed. The call was carried out: sending it again adds the line again."""

    code = "server.rate_added_unlisted"
    http_status = 500
    default_message = (
        "The rate was added, but the persons it overpaid could not be recorded, so they are not"
        " listed (`ssogw refunds list` lists them); do not add the rate again."
    )


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
