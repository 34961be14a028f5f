"""The counter operations over REST: inquiry, confirm, status and cancel (scope ``counter``).

The same service methods as the SOAP operations, so both protocols behave the same.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request, Response
from starlette.types import Receive, Scope, Send

from app.counter.inquiry_schemas import InquiryOut, inquiry_json
from app.counter.operations import CounterOperations
from app.counter.payment_schemas import CancelIn, CancelOut, ConfirmIn, ConfirmOut, StatusOut
from app.counter.records import InquiryRequest
from app.rest.caller import CallerDep, TokenDep, bearer_of, caller_of
from app.rest.problem import (
    failure_response,
    problem_responses,
    refuse_declared_body,
    request_id,
)
from app.rest.wire import SectionQuery

TAG = "counter"
NationalIdPath = Annotated[
    str,
    Path(
        alias="nationalId",
        max_length=64,
        description="The 13-digit national ID.",
        examples=["3100600445635"],
    ),
]


TxnIdPath = Annotated[
    str,
    Path(
        alias="partnerTxnId",
        max_length=200,
        description="Your id of the payment.",
        examples=["POS-20240612-000123"],
    ),
]


class PlainInquiry:
    """The REST inquiry without the framework: what the ``inquireContribution`` route answers,
    for a request already known to be plain (its national ID at most 64 characters, a section
    of 39 or 40 or none), with the answer written without the models (``inquiry_json``).

    ``app.main.hot_routes`` sends the partners' inquiries here; any other request goes to the
    route, whose validation and refusals stay the only ones.
    """

    __slots__ = ("_counter",)

    def __init__(self, counter: CounterOperations) -> None:
        self._counter = counter

    async def __call__(
        self, request: Request, national_id: str, section: int | None
    ) -> JsonAnswer | Response:
        try:
            refuse_declared_body(request)  # as the route's ProblemRoute does, before all else
            result = await self._counter.inquire(
                caller=caller_of(request),
                credentials=bearer_of(request),
                request=InquiryRequest(national_id, section),
            )
            return JsonAnswer(inquiry_json(result))
        except Exception as exc:
            return failure_response(exc, request, request_id(request))


class JsonAnswer:
    """A 200 with a JSON body, sent as ``Response(body, media_type="application/json")`` sends
    it (the same two headers in the same order), without building the Response."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._body
        headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def add_counter_routes(router: APIRouter, counter: CounterOperations) -> None:
    """Register the four counter operations on ``router``."""

    @router.get(
        "/insured/{nationalId}/contributions",
        tags=[TAG],
        operation_id="inquireContribution",
        summary="Inquiry: who the person is and what they may pay today",
        response_model=InquiryOut,
        responses=problem_responses(401, 403, 404, 422, 429, 500, 503),
    )
    async def inquire(
        national_id: NationalIdPath,
        caller: CallerDep,
        token: TokenDep,
        section: SectionQuery = None,
    ) -> InquiryOut:
        """Read-only and safe to retry; served from the enquiry store (see `asOf`)."""
        result = await counter.inquire(
            caller=caller, credentials=token, request=InquiryRequest(national_id, section)
        )
        return InquiryOut.of(result)

    @router.post(
        "/payments",
        tags=[TAG],
        operation_id="confirmPayment",
        summary="Confirm: record a payment taken at the counter",
        status_code=201,
        response_model=ConfirmOut,
        responses={
            200: {"model": ConfirmOut, "description": "A repeat of an earlier request."},
            **problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 500, 503),
        },
    )
    async def confirm(
        body: ConfirmIn, caller: CallerDep, token: TokenDep, response: Response
    ) -> ConfirmOut:
        """Idempotent by `partnerTxnId`: the same request again answers the original result
        (200, `replayed`); the same id with a different body is refused (409)."""
        result = await counter.confirm(caller=caller, credentials=token, request=body.to_request())
        response.status_code = 200 if result.replayed else 201
        # One path segment: every "/" encoded (an id of dots alone is refused at confirm).
        response.headers["Location"] = (
            f"{router.prefix}/payments/{quote(result.partner_txn_id, safe='')}"
        )
        return ConfirmOut.of(result)

    @router.get(
        # ":path": an id may hold "/" (POS/0612/000123), sent as %2F, which the server
        # decodes before the routes are matched.
        "/payments/{partnerTxnId:path}",
        tags=[TAG],
        operation_id="getPaymentStatus",
        summary="Status: what became of a payment (after a timeout, ask; never post again)",
        response_model=StatusOut,
        responses=problem_responses(401, 403, 404, 422, 429, 500, 503),
    )
    async def status(partner_txn_id: TxnIdPath, caller: CallerDep, token: TokenDep) -> StatusOut:
        """`unknown` means the payment was never recorded."""
        result = await counter.status(
            caller=caller, credentials=token, partner_txn_id=partner_txn_id
        )
        return StatusOut.of(result)

    @router.post(
        "/payments/{partnerTxnId:path}/cancel",
        tags=[TAG],
        operation_id="cancelPayment",
        summary="Cancel a payment on its business day, before the settlement cut-off",
        response_model=CancelOut,
        responses=problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 500, 503),
    )
    async def cancel(
        partner_txn_id: TxnIdPath, body: CancelIn, caller: CallerDep, token: TokenDep
    ) -> CancelOut:
        """Cancelling a cancelled payment answers it again; after the cut-off, only a refund
        through SSO remains (422 client.cancel_not_allowed). A Section 39 payment is also
        refused (422 client.cancel_not_allowed, reason later_payment) while a later payment of
        the same member stands: cancel that later receipt first (named when it is yours)."""
        result = await counter.cancel(
            caller=caller, credentials=token, request=body.to_request(partner_txn_id)
        )
        return CancelOut.of(result)
