"""The insured person's access report over REST (scope ``audit``): JSON, CSV or a printable
HTML page (``format=`` or the Accept header). Producing it is audited by the service; the route
parses, calls and renders. The router carries its own ``/api/v1`` prefix: include it before the
API's catch-all route.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import HTMLResponse

from app.access_report.html import access_report_html
from app.access_report.schemas import AccessReportOut, access_report_csv
from app.access_report.service import AccessReportAccess
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import ProblemRoute, problem_responses

JSON: Final = "application/json"
CSV: Final = "text/csv"
HTML: Final = "text/html"
_MEDIA: Final = {"json": JSON, "csv": CSV, "html": HTML}
_BOUND: Final = (
    "A date (YYYY-MM-DD, a Bangkok day) or an ISO 8601 date-time; without a zone it is Bangkok"
    " time (a `+` in a query must be written %2B)."
)
NationalIdPath = Annotated[str, Path(alias="nationalId", max_length=64, examples=["3100600445635"])]
_PRIVATE: Final = {"Vary": "Accept", "Cache-Control": "no-store"}


def negotiate(accept: str | None) -> str:
    """json, csv or html: the Accept header's best-ranked of the three (JSON when it does not
    say)."""
    best, best_quality = "json", 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        for name, offered in _MEDIA.items():
            if media == offered and quality > best_quality:
                best, best_quality = name, quality
    return best


def add_access_report_route(router: APIRouter, reports: AccessReportAccess) -> None:
    """Register the access report on ``router``."""

    @router.get(
        "/insured/{nationalId}/access-report",
        tags=["audit"],
        operation_id="accessReport",
        summary="Who accessed this person's record: the report for the insured person",
        response_model=AccessReportOut,
        responses={
            200: {
                "description": "Every access in the period, oldest first, refused ones included.",
                "content": {CSV: {"schema": {"type": "string"}},
                            HTML: {"schema": {"type": "string"}}},
            },
            **problem_responses(401, 403, 422, 429, 500, 503),
        },
    )  # fmt: skip
    async def access_report(
        national_id: NationalIdPath,
        response: Response,
        caller: CallerDep,
        token: TokenDep,
        from_: Annotated[str | None, Query(alias="from", max_length=40, description=_BOUND)] = None,
        to: Annotated[
            str | None, Query(max_length=40, description=_BOUND + " A date includes that day.")
        ] = None,
        fmt: Annotated[
            Literal["json", "csv", "html"] | None,
            Query(alias="format", description="Wins over the Accept header."),
        ] = None,
        accept: Annotated[str | None, Header(description="text/html, text/csv or JSON.")] = None,
    ) -> AccessReportOut | Response:
        """Date and time (Bangkok), who (the partner's display name), the operation in plain
        words, the purpose, the data disclosed and the outcome of every access. Producing the
        report is itself recorded (operation AccessReport)."""
        chosen = fmt or negotiate(accept)
        report = await reports.report(
            caller=caller, credentials=token, national_id=national_id, from_=from_, to=to,
            rendered_as=chosen,
        )  # fmt: skip
        if chosen == "html":
            return HTMLResponse(access_report_html(report), headers=_PRIVATE)
        if chosen == "csv":
            headers = {
                **_PRIVATE,
                "Content-Disposition": 'attachment; filename="access-report.csv"',
            }
            return Response(access_report_csv(report), media_type=f"{CSV}; charset=utf-8",
                            headers=headers)  # fmt: skip
        response.headers.update(_PRIVATE)
        return AccessReportOut.of(report)


def access_report_router(
    *, reports: AccessReportAccess, route_class: type[ProblemRoute] = ProblemRoute
) -> APIRouter:
    """The access-report route under ``/api/v1`` (before the catch-all); ``route_class`` says
    who refuses a request that does not validate (``app.rest.api``)."""
    router = APIRouter(prefix="/api/v1", route_class=route_class)
    add_access_report_route(router, reports)
    return router
