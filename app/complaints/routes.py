"""Complaint cases over REST (scope ``admin``): open, list, show and move a case. Every call is
audited by the service; the routes parse, call and render. The router carries its own
``/api/v1`` prefix: include it before the API's catch-all route.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from app.complaints.schemas import (
    ComplaintIn,
    ComplaintOut,
    ComplaintPageOut,
    State,
    TransitionIn,
)
from app.complaints.service import MAX_PAGE, ComplaintsAccess
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import ProblemRoute, problem_responses
from app.rest.wire import Digits

ComplaintId = Annotated[int, Path(alias="id", ge=1, le=2**63 - 1), Digits]


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
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE), Digits] = 100,
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


def complaints_router(
    *, complaints: ComplaintsAccess, route_class: type[ProblemRoute] = ProblemRoute
) -> APIRouter:
    """The complaint routes under ``/api/v1`` (before the catch-all); ``route_class`` says who
    refuses a request that does not validate (``app.rest.api``)."""
    router = APIRouter(prefix="/api/v1", route_class=route_class)
    add_complaint_routes(router, complaints)
    return router
