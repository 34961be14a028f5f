"""The partner feed over REST (scope ``admin``).

``GET /api/v1/partners/{name}/feed`` streams the feed file as it is exported; its manifest
(rows, bytes, SHA-256), known only at the end, is then
``GET /api/v1/partners/{name}/feed-exports/latest``. Every export is audited by the service.
The router carries its own ``/api/v1`` prefix: include it before the API's catch-all route.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from app.feed.access import FeedAccess
from app.feed.schemas import FEED_MEDIA, FeedExportOut, FeedFormat, feed_headers
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import ProblemRoute, problem_responses
from app.rest.wire import SectionQuery

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


def feed_router(*, feeds: FeedAccess, route_class: type[ProblemRoute] = ProblemRoute) -> APIRouter:
    """The partner feed routes under ``/api/v1`` (before the catch-all); ``route_class`` says
    who refuses a request that does not validate (``app.rest.api``)."""
    router = APIRouter(prefix="/api/v1", route_class=route_class)
    add_feed_routes(router, feeds)
    return router
