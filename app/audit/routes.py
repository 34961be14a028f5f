"""The audit trail over REST (scope ``audit``): lookups by ID as JSON or CSV, and verify."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Header, Query, Request, Response

from app.audit.access import AuditAccess
from app.audit.schemas import LookupPageOut, VerifyOut, lookup_csv
from app.audit.service import MAX_PAGE
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import problem_responses
from app.rest.wire import Digits, InstantIn

TAG = "audit"
CSV: Final = "text/csv"
JSON: Final = "application/json"
_TIME = (
    "An RFC 3339 date and time, seconds and offset included, e.g. 2024-06-01T00:00:00%2B07:00"
    " (a `+` in a query must be written %2B)."
)


def prefers_csv(accept: str | None) -> bool:
    """Whether the Accept header ranks text/csv above JSON (JSON when it does not say)."""
    best: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        for offered in (CSV, JSON):
            if media.lower() in (offered, offered.split("/")[0] + "/*", "*/*"):
                specific = 0.001 if media.lower() == offered else 0.0
                best[offered] = max(best.get(offered, -1.0), quality + specific)
    return best.get(CSV, -1.0) > best.get(JSON, -1.0) and best.get(CSV, -1.0) > 0


def add_audit_routes(router: APIRouter, audit: AuditAccess) -> None:
    """Register the audit routes on ``router``."""

    @router.get(
        "/audit/lookups",
        tags=[TAG],
        operation_id="auditLookups",
        summary="Who touched this national ID, and when (JSON or CSV)",
        response_model=LookupPageOut,
        responses={
            200: {
                "description": "Records newest first; as CSV, the next page is in the `Link`"
                " and `X-Next-Cursor` headers.",
                "content": {CSV: {"schema": {"type": "string"}}},
            },
            **problem_responses(401, 403, 422, 429, 500, 503),
        },
    )
    async def lookups(
        request: Request,
        response: Response,
        caller: CallerDep,
        token: TokenDep,
        national_id: Annotated[
            str, Query(alias="nationalId", max_length=64, examples=["3100600445635"])
        ],
        from_: Annotated[InstantIn | None, Query(alias="from", description=_TIME)] = None,
        to: Annotated[InstantIn | None, Query(description=_TIME + " Exclusive.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE), Digits] = 100,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
        accept: Annotated[
            str | None, Header(description="`text/csv` for CSV; JSON otherwise.")
        ] = None,
    ) -> LookupPageOut | Response:
        """Every call that touched the ID in `[from, to)`, refused ones included. This lookup is
        itself recorded."""
        page = await audit.lookups(
            caller=caller,
            credentials=token,
            national_id=national_id,
            from_=from_,
            to=to,
            limit=limit,
            cursor=cursor,
        )
        if not prefers_csv(accept):
            response.headers["Vary"] = "Accept"
            return LookupPageOut.of(page)
        headers = {"Vary": "Accept"}
        if page.next_cursor is not None:
            headers["X-Next-Cursor"] = page.next_cursor
            headers["Link"] = f"<{request.url.include_query_params(cursor=page.next_cursor)}>;"
            headers["Link"] += ' rel="next"'
        return Response(lookup_csv(page), media_type=f"{CSV}; charset=utf-8", headers=headers)

    @router.get(
        "/audit/verify",
        tags=[TAG],
        operation_id="auditVerify",
        summary="Verify the audit trail's hash chain",
        response_model=VerifyOut,
        responses=problem_responses(401, 403, 422, 429, 500, 503),
    )
    async def verify(
        caller: CallerDep,
        token: TokenDep,
        from_: Annotated[InstantIn | None, Query(alias="from", description=_TIME)] = None,
        to: Annotated[InstantIn | None, Query(description=_TIME + " Exclusive.")] = None,
    ) -> VerifyOut:
        """Recomputes every hash and link in `[from, to)` (the whole chain when unbounded) and
        holds the chain to the signed checkpoints kept outside the database: an edited, removed
        or reordered record, a range rewritten with recomputed hashes, a tail cut off and a
        missing or forged checkpoint are found."""
        result = await audit.verify(caller=caller, credentials=token, from_=from_, to=to)
        return VerifyOut.of(result)
