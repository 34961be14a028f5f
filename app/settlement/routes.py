"""Partner settlement over REST (scope ``admin``): import a day's file, show a stored result.

``POST /api/v1/settlements?partner=&businessDate=&format=`` takes the file as the raw body
(``application/octet-stream`` or ``text/csv``) or as the ``file`` part of a multipart form;
the body is read only once the caller is admitted. ``GET /api/v1/settlements/{id}`` shows the
stored result, mismatches first, a page at a time.
"""

from __future__ import annotations

import importlib.util
import tempfile
from datetime import date, datetime
from typing import IO, Annotated, Any, BinaryIO, Final, Literal, cast

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import ConfigDict, Field
from starlette.datastructures import UploadFile

from app.errors import InvalidInput
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import ProblemRoute, problem_responses
from app.rest.wire import Baht, DateIn, Digits, MonthText, OutModel
from app.settlement.access import SettlementAccess
from app.settlement.service import DEFAULT_LINES, MAX_LINES

TAG = "settlement"
MAX_UPLOAD: Final = 512 * 1024 * 1024  # a million bank lines is about 258 MB
_SPOOL: Final = 8 * 1024 * 1024  # larger uploads go to a temporary file
OutcomeName = Literal[
    "matched", "only_in_file", "only_in_gateway", "amount_differs", "months_differ",
    "person_differs",
]  # fmt: skip


_LINE: dict[str, Any] = {
    "outcome": "amount_differs", "lineNo": 4, "partnerTxnId": "POS-20240603-000123",
    "nationalId": "3100600445635", "section": 40, "fileMonths": ["2024-06", "2024-07"],
    "fileAmount": "150.00", "gatewayMonths": ["2024-06", "2024-07"], "gatewayAmount": "140.00",
    "paymentId": 81234, "note": "differs: amount",
}  # fmt: skip
_TOTALS: dict[str, Any] = {
    "section": 40, "fileLines": 4, "fileAmount": "360.00", "gatewayLines": 4,
    "gatewayAmount": "350.00", "matchedLines": 1, "matchedAmount": "70.00",
    "differenceAmount": "10.00",
}  # fmt: skip
_COUNTS: dict[str, Any] = {
    "onlyInFile": 2, "onlyInGateway": 1, "personDiffers": 0, "monthsDiffer": 1,
    "amountDiffers": 1, "matched": 2,
}  # fmt: skip
_REPORT: dict[str, Any] = {
    "id": 17, "partner": "cvs-th", "businessDate": "2024-06-03", "format": "bank",
    "fileName": "cvs-20240603.txt", "fileSha256": "9f86d081884c7d65" * 4, "fileBytes": 2064,
    "header": {"partnerCode": "cvs-th", "bankCode": "014", "companyAccount": "0000000000",
               "companyName": "สำนักงานประกันสังคม"},
    "importedBy": "client:backoffice", "importedAt": "2024-06-04T01:10:00+00:00",
    "replayed": False, "mismatches": 5, "counts": _COUNTS, "totals": [_TOTALS],
    "lines": [_LINE], "nextCursor": "3.5",
}  # fmt: skip


class SettlementLineOut(OutModel):
    """One result line: a file line, a ledger row, or the two of them paired."""

    model_config = ConfigDict(json_schema_extra={"examples": [_LINE]})

    outcome: OutcomeName
    line_no: int | None = Field(description="The file's line; null when only in the gateway.")
    partner_txn_id: str
    national_id: str
    section: int
    file_months: list[MonthText] | None
    file_amount: Baht | None
    gateway_months: list[MonthText] | None
    gateway_amount: Baht | None
    payment_id: int | None
    note: str | None


class SectionTotalsOut(OutModel):
    """Lines and baht of one section: in the file, in the gateway, matched; file − gateway."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TOTALS]})

    section: int
    file_lines: int
    file_amount: Baht
    gateway_lines: int
    gateway_amount: Baht
    matched_lines: int
    matched_amount: Baht
    difference_amount: Baht


class OutcomeCountsOut(OutModel):
    """How many result lines have each outcome."""

    model_config = ConfigDict(json_schema_extra={"examples": [_COUNTS]})

    only_in_file: int
    only_in_gateway: int
    person_differs: int
    months_differ: int
    amount_differs: int
    matched: int


class SettlementOut(OutModel):
    """A stored settlement import: summary, totals per section and a page of result lines,
    mismatches first; pass ``nextCursor`` as ``cursor`` for the next page."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REPORT]})

    id: int
    partner: str
    business_date: date
    format: Literal["bank", "csv"]
    file_name: str | None
    file_sha256: str
    file_bytes: int
    header: dict[str, str] = Field(description="What the bank file's header said.")
    imported_by: str | None
    imported_at: datetime
    replayed: bool = Field(description="True when this file had been imported before.")
    mismatches: int
    counts: OutcomeCountsOut
    totals: list[SectionTotalsOut]
    lines: list[SettlementLineOut]
    next_cursor: str | None


class _Upload:
    """The request body as a seekable file, read when the service asks for it."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._files: list[IO[bytes]] = []

    async def receive(self) -> tuple[BinaryIO, str | None]:
        """The uploaded file, rewound, and its name when the form gave one."""
        kind = self._request.headers.get("content-type", "")
        if kind.startswith("multipart/form-data"):
            if importlib.util.find_spec("python_multipart") is None:
                raise InvalidInput(
                    "Multipart uploads are not available here; send the file as the body.",
                    field="file",
                    reason="multipart_unavailable",
                )
            form = await self._request.form(max_files=1, max_fields=10)
            part = form.get("file")
            if not isinstance(part, UploadFile):
                raise InvalidInput("The form has no 'file' part.", field="file")
            self._files.append(part.file)
            return part.file, part.filename
        spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 (closed below)
        self._files.append(spool)
        async for chunk in self._request.stream():
            spool.write(chunk)
        spool.seek(0)
        return cast(BinaryIO, spool), None

    def close(self) -> None:
        """Release the temporary files."""
        for file in self._files:
            file.close()


def settlements_router(
    settlements: SettlementAccess,
    *,
    max_upload: int = MAX_UPLOAD,
    route_class: type[ProblemRoute] = ProblemRoute,
) -> APIRouter:
    """The ``/api/v1/settlements`` routes (include it before the API's catch-all route);
    ``route_class`` says who refuses a request that does not validate (``app.rest.api``)."""
    router = APIRouter(prefix="/api/v1", route_class=route_class, max_body_size=max_upload)

    @router.post(
        "/settlements",
        tags=[TAG],
        operation_id="importSettlement",
        summary="Import a partner's settlement file and match it against the ledger",
        status_code=201,
        response_model=SettlementOut,
        responses={
            200: {"model": SettlementOut, "description": "This file was imported before."},
            **problem_responses(400, 401, 403, 404, 413, 422, 429, 500, 503),
        },
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary"}}}},
        }}},
    )  # fmt: skip
    async def import_settlement(
        request: Request,
        response: Response,
        caller: CallerDep,
        token: TokenDep,
        partner: Annotated[str, Query(max_length=64, description="The partner's name.")],
        business_date: Annotated[DateIn, Query(alias="businessDate", description="YYYY-MM-DD.")],
        file_format: Annotated[
            Literal["bank", "csv"] | None,
            Query(alias="format", description="The layout; detected from the file when absent."),
        ] = None,
    ) -> Any:
        """Bank 256-character TIS-620 or UTF-8 CSV (docs/formats.md). The same file again
        answers the stored result with status 200 and changes nothing."""
        upload = _Upload(request)
        try:
            report = await settlements.import_file(
                caller=caller, credentials=token, receive=upload.receive, partner=partner,
                business_date=business_date, file_format=file_format,
            )  # fmt: skip
        finally:
            upload.close()
        response.status_code = 200 if report.replayed else 201
        return SettlementOut.model_validate(report.document())

    @router.get(
        "/settlements/{id}",
        tags=[TAG],
        operation_id="getSettlement",
        summary="A stored settlement result, mismatches first",
        response_model=SettlementOut,
        responses=problem_responses(401, 403, 404, 422, 429, 500, 503),
    )
    async def get_settlement(
        caller: CallerDep,
        token: TokenDep,
        import_id: Annotated[int, Path(alias="id", ge=1, le=2**63 - 1), Digits],
        limit: Annotated[int, Query(ge=1, le=MAX_LINES, description="Lines per page."), Digits] = (
            DEFAULT_LINES
        ),
        cursor: Annotated[
            str | None, Query(max_length=40, description="`nextCursor` of the previous page.")
        ] = None,
    ) -> Any:
        """The summary, totals per section and a page of lines: mismatches first."""
        report = await settlements.report(
            caller=caller, credentials=token, import_id=import_id, limit=limit, cursor=cursor
        )
        return SettlementOut.model_validate(report.document())

    return router
