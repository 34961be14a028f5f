"""FastAPI's request validation failures in the gateway's error vocabulary: ``client.invalid_input``
naming each field, or ``client.invalid_amount`` with the domain's reason for an amount the
domain refused while the body was read (``app.rest.wire.BahtIn``)."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.exceptions import RequestValidationError

from app.errors import InvalidAmount, InvalidInput
from app.rest.wire import AMOUNT_ERROR


def _field(loc: Iterable[int | str]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie") and len(parts) > 1:
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


def _message(err: dict[str, object]) -> str:
    message = str(err.get("msg", "not valid"))
    ctx = err.get("ctx")
    if err.get("type") == "json_invalid" and isinstance(ctx, dict) and ctx.get("error"):
        message = f"{message}: {ctx['error']}"  # what the reader met, and where
    return message


def _json_type(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def validation_error(
    exc: RequestValidationError, *, content_type: str | None = None
) -> InvalidInput:
    """FastAPI's validation failure as ``client.invalid_input`` naming each field; as
    ``client.invalid_amount`` with the domain's reason when the first is an amount's.

    A body sent as anything but JSON is not read as JSON at all (FastAPI), so its failure says
    only that the body is not an object: then it is said what to send instead."""
    errors = exc.errors()
    if not _json_type(content_type) and any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        return InvalidInput(
            "The request's body must be JSON, sent with Content-Type application/json"
            f" (this one was sent as {content_type or 'no Content-Type'!s:.100}).",
            field="body",
            reason="not_json",
            fields=["body"],
        )
    problems = [
        {
            "field": "body" if err.get("type") == "json_invalid" else _field(err.get("loc", ())),
            "message": _message(err),
        }
        for err in errors
    ]
    fields = list(dict.fromkeys(p["field"] for p in problems))
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    field = fields[0] if fields else "body"
    message = f"The request is not valid: {summary}."
    if errors and errors[0].get("type") == AMOUNT_ERROR:
        reason = errors[0].get("ctx", {}).get("reason")
        return InvalidAmount(message, field=field, reason=reason, fields=fields, errors=problems)
    return InvalidInput(message, field=field, fields=fields, errors=problems)
