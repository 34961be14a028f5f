"""Accountability over REST: a person's access report (scope ``audit``), complaint cases and
the partner feed (scope ``admin``). Every call is audited by the services; the routes parse,
call and render.

``GET /api/v1/insured/{nationalId}/access-report`` answers JSON, CSV or a printable HTML page
(``format=`` or the Accept header). ``GET /api/v1/partners/{name}/feed`` streams the feed file
as it is exported; its manifest (rows, bytes, SHA-256), known only at the end, is then
``GET /api/v1/partners/{name}/feed-exports/latest``. The routers carry their own ``/api/v1``
prefix: include them before the API's catch-all route.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import HTMLResponse, StreamingResponse

from app.access_report.schemas import (
    FEED_MEDIA,
    AccessReportOut,
    ComplaintIn,
    ComplaintOut,
    ComplaintPageOut,
    FeedExportOut,
    FeedFormat,
    State,
    TransitionIn,
    access_report_csv,
    access_report_html,
    feed_headers,
)
from app.access_report.service import AccessReportAccess
from app.complaints.service import MAX_PAGE, ComplaintsAccess
from app.feed.access import FeedAccess
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import ProblemRoute, problem_responses
from app.rest.wire import SectionQuery

JSON: Final = "application/json"
CSV: Final = "text/csv"
HTML: Final = "text/html"
_MEDIA: Final = {"json": JSON, "csv": CSV, "html": HTML}
_BOUND: Final = (
    "A date (YYYY-MM-DD, a Bangkok day) or an ISO 8601 date-time; without a zone it is Bangkok"
    " time (a `+` in a query must be written %2B)."
)
NationalIdPath = Annotated[str, Path(alias="nationalId", max_length=64, examples=["3100600445635"])]
ComplaintId = Annotated[int, Path(alias="id", ge=1, le=2**63 - 1)]
PartnerName = Annotated[
    str, Path(max_length=64, description="The partner's name.", examples=["cvs-demo"])
]
_FEED_FILE: Final = {
    "description": "The feed file, streamed as it is exported: 256-character TIS-620 records"
    " ending in CRLF (format=fixed) or UTF-8 CSV with a header row (format=csv). A body that"
    " ends early (the connection closes before the last chunk) is an export that failed.",
    "content": {
        "text/plain": {"schema": {"type": "string", "format": "binary"}},
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
    },
    "headers": {
        "Content-Disposition": {
            "description": "attachment; the file's name: partner, section, generation time.",
            "schema": {"type": "string"},
        },
    },
}
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


def add_complaint_routes(router: APIRouter, complaints: ComplaintsAccess) -> None:
    """Register the complaint routes on ``router``."""
    tag = "complaints"

    @router.post(
        "/complaints",
        tags=[tag],
        operation_id="openComplaint",
        summary="Open a complaint case, linked to its payment and audit records",
        status_code=201,
        response_model=ComplaintOut,
        responses=problem_responses(400, 401, 403, 413, 422, 429, 500, 503),
    )
    async def open_complaint(
        body: ComplaintIn, response: Response, caller: CallerDep, token: TokenDep
    ) -> ComplaintOut:
        """A `paid-not-posted` case whose payment is found confirmed is resolved at once, with
        its receipt. A payment complaint names `receiptNo`, or `partnerTxnId` and `partner`."""
        case = await complaints.open(caller=caller, credentials=token, complaint=body.to_new())
        response.headers["Location"] = f"/api/v1/complaints/{case.id}"
        return ComplaintOut.of(case)

    @router.get(
        "/complaints",
        tags=[tag],
        operation_id="listComplaints",
        summary="Complaint cases, oldest first, by state, partner and age",
        response_model=ComplaintPageOut,
        responses=problem_responses(401, 403, 422, 429, 500, 503),
    )
    async def list_complaints(
        caller: CallerDep,
        token: TokenDep,
        state: Annotated[State | None, Query()] = None,
        partner: Annotated[str | None, Query(max_length=64, description="A partner's name.")] = (
            None
        ),
        older_than: Annotated[
            str | None,
            Query(alias="olderThan", max_length=20,
                  description="Opened longer ago than this: P3D, PT12H, 72h, 3d."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        cursor: Annotated[str | None, Query(max_length=200)] = None,
    ) -> ComplaintPageOut:  # fmt: skip
        """Each person shown is recorded in the audit trail."""
        page = await complaints.list_cases(
            caller=caller, credentials=token, state=state, partner=partner,
            older_than=older_than, limit=limit, cursor=cursor,
        )  # fmt: skip
        return ComplaintPageOut.of(page)

    @router.get(
        "/complaints/{id}",
        tags=[tag],
        operation_id="getComplaint",
        summary="A case with its payment, the audit records around it and its history",
        response_model=ComplaintOut,
        responses=problem_responses(401, 403, 404, 422, 429, 500, 503),
    )
    async def get_complaint(
        complaint_id: ComplaintId, caller: CallerDep, token: TokenDep
    ) -> ComplaintOut:
        case = await complaints.get(caller=caller, credentials=token, complaint_id=complaint_id)
        return ComplaintOut.of(case)

    @router.post(
        "/complaints/{id}/transition",
        tags=[tag],
        operation_id="transitionComplaint",
        summary="Move a case: open → investigating → resolved or rejected",
        response_model=ComplaintOut,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 500, 503),
    )
    async def transition_complaint(
        complaint_id: ComplaintId, body: TransitionIn, caller: CallerDep, token: TokenDep
    ) -> ComplaintOut:
        """A move the case's state does not allow is refused with 409 `client.conflict`,
        naming the moves it allows."""
        case = await complaints.transition(
            caller=caller, credentials=token, complaint_id=complaint_id, to=body.to,
            who=body.who, note=body.note,
        )  # fmt: skip
        return ComplaintOut.of(case)


def add_feed_routes(router: APIRouter, feeds: FeedAccess) -> None:
    """Register the partner feed and the manifest of its latest export on ``router``."""
    tag = "partners"

    @router.get(
        "/partners/{name}/feed",
        tags=[tag],
        operation_id="exportPartnerFeed",
        summary="Export the partner feed: the insured persons a counter needs, as a file",
        response_class=StreamingResponse,
        responses={200: _FEED_FILE, **problem_responses(401, 403, 404, 422, 429, 500, 503)},
    )
    async def export_partner_feed(
        name: PartnerName,
        caller: CallerDep,
        token: TokenDep,
        section: SectionQuery = None,
        fmt: Annotated[
            FeedFormat,
            Query(alias="format", description="fixed: 256-character TIS-620 records; csv: UTF-8."),
        ] = "fixed",
    ) -> StreamingResponse:
        """Only the fields the partner's data scope allows. The export is one audit record
        (operation PartnerFeedExport) committed before the last chunk is sent; its manifest is
        then `GET /api/v1/partners/{name}/feed-exports/latest`. A disabled partner is sent
        no feed (403 client.partner_disabled)."""
        download = await feeds.download(
            caller=caller, credentials=token, partner=name, section=section, file_format=fmt
        )
        return StreamingResponse(
            download.chunks, media_type=FEED_MEDIA[fmt], headers=feed_headers(download)
        )

    @router.get(
        "/partners/{name}/feed-exports/latest",
        tags=[tag],
        operation_id="latestPartnerFeedExport",
        summary="The manifest of the partner's newest feed export: rows, bytes, SHA-256",
        response_model=FeedExportOut,
        responses=problem_responses(401, 403, 404, 422, 429, 500, 503),
    )
    async def latest_partner_feed_export(
        name: PartnerName, caller: CallerDep, token: TokenDep
    ) -> FeedExportOut:
        """From the export's audit record, by the API or the command line, in the last 31
        days (404 when there is none). Compare `requestId` with your download's X-Request-ID:
        another export may have finished since."""
        export = await feeds.latest(caller=caller, credentials=token, partner=name)
        return FeedExportOut.of(export)


def feed_router(*, feeds: FeedAccess) -> APIRouter:
    """The partner feed routes under ``/api/v1`` (before the catch-all)."""
    router = APIRouter(prefix="/api/v1", route_class=ProblemRoute)
    add_feed_routes(router, feeds)
    return router


def accountability_router(
    *, reports: AccessReportAccess, complaints: ComplaintsAccess
) -> APIRouter:
    """The access-report and complaint routes under ``/api/v1`` (before the catch-all)."""
    router = APIRouter(prefix="/api/v1", route_class=ProblemRoute)
    add_access_report_route(router, reports)
    add_complaint_routes(router, complaints)
    return router
