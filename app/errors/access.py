"""Refusals at the door: credentials, scope, operation, rate and size limits."""

from __future__ import annotations

from typing import Any, ClassVar

from app.errors.base import ClientError


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
