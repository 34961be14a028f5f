"""The rate table over REST (scope ``admin``): list, add a future rate, add a retroactive rate.

Adding a rate answers with the overpayments it creates, streamed as they are computed: the
JSON document is written in pieces, so a cut over millions of paid months is never held whole.
The first chunk (its persons recorded) is read before the status line, so a record that cannot
be written is a 503 that says the rate was added, not a 201 cut short; most cuts are one chunk.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from typing import Final

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.domain.overpayment import Overpayment
from app.errors import AuditUnavailable, RateAddedUnlisted, ServiceError
from app.observability.logs import mask
from app.rates.schemas import (
    OverpaymentOut,
    RateChangeOut,
    RateChangeTail,
    RateIn,
    RateListOut,
    RateOut,
)
from app.rates.service import RateChange, RatesAdmin
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import problem_responses
from app.rest.wire import SectionQuery

log = logging.getLogger(__name__)
TAG = "rates"
FLUSH_BYTES: Final = 64 * 1024
_ADD_ERRORS = problem_responses(400, 401, 403, 413, 422, 429, 500, 503)


async def first_overpayment(change: RateChange) -> Overpayment | None:
    """The first overpayment, read before the answer starts: its chunk's persons are recorded
    then. If they cannot be, the answer is ``server.rate_added_unlisted`` naming the rate,
    which was added (not retryable: a retry would add the line again)."""
    try:
        return await anext(change.overpayments, None)
    except Exception as exc:  # the rate is added: whatever failed, a retry would add it again
        await change.overpayments.aclose()
        rate_id = change.record.id
        reason = exc.reason if isinstance(exc, AuditUnavailable) else None
        if not isinstance(exc, ServiceError):  # a defect: said in the log, as any other
            trace = mask("".join(traceback.format_exception(exc)))
            log.error("rate %s added, its overpayments failed\n%s", rate_id, trace)
        raise RateAddedUnlisted(
            f"The rate was added (id {rate_id}), but the persons it overpaid could not be"
            " read or recorded, so they are not listed: `ssogw refunds list` lists them. Do"
            " not add the rate again.",
            rateId=rate_id,
            reason=reason or getattr(exc, "code", None) or "internal",
        ) from exc
    except BaseException:
        await change.overpayments.aclose()
        raise


async def stream_change(change: RateChange, first: Overpayment | None) -> AsyncIterator[bytes]:
    """``change`` as one RateChangeOut JSON document, written piece by piece, from ``first``
    (``first_overpayment``) on."""
    rate = RateOut.of(change.record).model_dump_json(by_alias=True)
    retro = "true" if change.retroactive else "false"
    buffer = [f'{{"rate":{rate},"retroactive":{retro},"overpayments":['.encode()]
    size, separator = 0, b""

    async def overpayments() -> AsyncIterator[Overpayment]:
        if first is None:
            return
        yield first
        async for overpayment in change.overpayments:
            yield overpayment

    try:
        async for overpayment in overpayments():
            piece = (
                separator + OverpaymentOut.of(overpayment).model_dump_json(by_alias=True).encode()
            )
            buffer.append(piece)
            size, separator = size + len(piece), b","
            if size >= FLUSH_BYTES:
                yield b"".join(buffer)
                buffer, size = [], 0
    except Exception as exc:
        # The status line has gone: cut the document short (a client sees it is not whole
        # JSON) and say why in the log.
        log.error("overpayment stream failed\n%s", mask("".join(traceback.format_exception(exc))))
        yield b"".join(buffer)
        return
    finally:
        await change.overpayments.aclose()
    tail = RateChangeTail.of(change.tally).model_dump_json(by_alias=True)
    buffer.append(b"]," + tail[1:].encode())
    yield b"".join(buffer)


def add_rates_routes(router: APIRouter, rates: RatesAdmin) -> None:
    """Register the rate-table routes on ``router``."""

    @router.get(
        "/rates",
        tags=[TAG],
        operation_id="listRates",
        summary="The rate table",
        response_model=RateListOut,
        responses=problem_responses(401, 403, 422, 429, 500, 503),
    )
    async def list_rates(
        caller: CallerDep, token: TokenDep, section: SectionQuery = None
    ) -> RateListOut:
        """Every rate line in the order added; for a month, the covering rate that starts latest
        applies (ties: the later line)."""
        records = await rates.list_rates(caller=caller, credentials=token, section=section)
        return RateListOut(rates=[RateOut.of(r) for r in records])

    @router.post(
        "/rates",
        tags=[TAG],
        operation_id="addRate",
        summary="Add a rate that starts after the current month",
        status_code=201,
        response_model=None,
        responses={201: {"model": RateChangeOut, "description": "The rate added."}, **_ADD_ERRORS},
    )
    async def add_rate(body: RateIn, caller: CallerDep, token: TokenDep) -> StreamingResponse:
        """A future cut can still create overpayments: Section 40 months already paid ahead."""
        change = await rates.add_rate(
            caller=caller, credentials=token, request=body.to_request(), retroactive=False
        )
        first = await first_overpayment(change)
        return StreamingResponse(stream_change(change, first), 201, media_type="application/json")

    @router.post(
        "/rates/retroactive",
        tags=[TAG],
        operation_id="addRetroactiveRate",
        summary="Add a rate that starts this month or earlier, and list the refunds it creates",
        status_code=201,
        response_model=None,
        responses={
            201: {"model": RateChangeOut, "description": "The rate and its overpayments."},
            **_ADD_ERRORS,
        },
    )
    async def add_retroactive_rate(
        body: RateIn, caller: CallerDep, token: TokenDep
    ) -> StreamingResponse:
        """Every month already paid above the amount now due is an overpayment to refund."""
        change = await rates.add_rate(
            caller=caller, credentials=token, request=body.to_request(), retroactive=True
        )
        first = await first_overpayment(change)
        return StreamingResponse(stream_change(change, first), 201, media_type="application/json")
