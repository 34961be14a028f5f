"""The roots of the vocabulary: ServiceError, and who can fix it (ClientError, ServerError)."""

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
