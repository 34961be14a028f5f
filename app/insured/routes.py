"""Insured-person administration over REST (scope ``admin``; every call is audited)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from app.insured.history_schemas import PersonDetailOut
from app.insured.schemas import (
    OptionChangeResultOut,
    OptionIn,
    PersonIn,
    PersonOut,
    PersonPageOut,
    Section33EmploymentIn,
    StatusIn,
)
from app.insured.service import MAX_PAGE, InsuredAdmin
from app.insured.statement import membership_statement_html
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import problem_responses
from app.rest.wire import Digits, SectionQuery

TAG = "insured persons"
NationalIdPath = Annotated[
    str,
    Path(
        alias="nationalId",
        max_length=64,
        description="The 13-digit national ID.",
        examples=["3100600445635"],
    ),
]
_CHANGE_ERRORS = problem_responses(400, 401, 403, 404, 413, 422, 429, 500, 503)
_STATUS_ERRORS = problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 500, 503)
_PRIVATE: Final = {"Cache-Control": "no-store"}


def add_insured_routes(router: APIRouter, insured: InsuredAdmin) -> None:
    """Register the insured-person routes on ``router``."""

    @router.get(
        "/insured",
        tags=[TAG],
        operation_id="listInsured",
        summary="List insured persons, filtered, a page at a time",
        response_model=PersonPageOut,
        responses=problem_responses(401, 403, 422, 429, 500, 503),
    )
    async def list_insured(
        caller: CallerDep,
        token: TokenDep,
        section: SectionQuery = None,
        status: Annotated[Literal["active", "terminated", "inactive"] | None, Query()] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_PAGE, description="Persons per page."), Digits
        ] = 50,
        cursor: Annotated[
            str | None, Query(max_length=200, description="`nextCursor` of the previous page.")
        ] = None,
    ) -> PersonPageOut:
        """In national-ID order, read from the enquiry store. Each person shown is audited."""
        page = await insured.list_persons(
            caller=caller,
            credentials=token,
            section=section,
            status=status,
            limit=limit,
            cursor=cursor,
        )
        return PersonPageOut.of(page)

    @router.get(
        "/insured/{nationalId}",
        tags=[TAG],
        operation_id="getInsured",
        summary="One person's full record with their payment history",
        response_model=PersonDetailOut,
        responses=problem_responses(401, 403, 404, 422, 429, 500, 503),
    )
    async def get_insured(
        national_id: NationalIdPath, caller: CallerDep, token: TokenDep
    ) -> PersonDetailOut:
        """Latest payments, paid months and option changes, newest first."""
        detail = await insured.read(caller=caller, credentials=token, national_id=national_id)
        return PersonDetailOut.of(detail)

    @router.get(
        "/insured/{nationalId}/statement",
        tags=[TAG],
        operation_id="insuredStatement",
        summary="The person's membership statement, a printable page (Thai dates in B.E.)",
        response_class=HTMLResponse,
        responses={
            200: {"description": "An A4 page in Thai with English below (text/html)."},
            **problem_responses(401, 403, 404, 422, 429, 500, 503),
        },
    )
    async def statement(
        national_id: NationalIdPath, caller: CallerDep, token: TokenDep
    ) -> HTMLResponse:
        """The current membership with its status, Section 39 eligibility, the memberships that
        ended before, changes of status and the latest payments. Dates are written in the
        Buddhist Era (พ.ศ.) with the ISO date below; receipt numbers as issued. Audited as
        operation PrintInsuredStatement."""
        detail = await insured.read(
            caller=caller, credentials=token, national_id=national_id,
            operation="PrintInsuredStatement",
        )  # fmt: skip
        return HTMLResponse(membership_statement_html(detail), headers=_PRIVATE)

    @router.post(
        "/insured",
        tags=[TAG],
        operation_id="createInsured",
        summary="Register an insured person",
        status_code=201,
        response_model=PersonOut,
        responses=problem_responses(400, 401, 403, 409, 413, 422, 429, 500, 503),
    )
    async def create_insured(body: PersonIn, caller: CallerDep, token: TokenDep) -> PersonOut:
        """The ID is checked against the section's accepted first digits; a Section 40 member
        needs an option and, when a birth date is given, an age of 15 to 65. A Section 39
        member needs the Section 33 history: at least 12 months contributed, applied within 6
        months of leaving work (else 422 client.s39_not_eligible), unless an SSO officer sends
        `eligibilityOverride` with a reason (recorded and audited). `appliedOn` (default today)
        may lie before today by at most SSOGW_S39_APPLICATION_BACKDATE_DAYS days (default 0),
        else 422 client.application_backdated, unless the override is sent. A person already
        on record registers again once their latest membership has ended (it is kept as a
        previous membership); while it is open: 409 client.already_exists."""
        person = await insured.register(
            caller=caller, credentials=token, registration=body.to_registration()
        )
        return PersonOut.of(person)

    @router.put(
        "/insured/{nationalId}/status",
        tags=[TAG],
        operation_id="setInsuredStatus",
        summary="Record an officer's change of status (active, terminated, inactive)",
        response_model=PersonOut,
        responses=_STATUS_ERRORS,
    )
    async def set_status(
        national_id: NationalIdPath, body: StatusIn, caller: CallerDep, token: TokenDep
    ) -> PersonOut:
        """The change is an event with its reason, which the status the person is in (derived
        from what was recorded and the rules) must then show; a change it would contradict is
        refused with 409 client.status_contradicts_rules (such as `active` for a Section 39
        member the rules have ended: a reinstatement names `rulesFrom`, the month to judge the
        rules again from). A termination records the first month no longer covered (default:
        this month)."""
        person = await insured.set_status(
            caller=caller,
            credentials=token,
            national_id=national_id,
            status=body.status,
            reason=body.reason,
            ended_month=body.ended_month,
            rules_from=body.rules_from,
        )
        return PersonOut.of(person)

    @router.post(
        "/insured/{nationalId}/section33-employment",
        tags=[TAG],
        operation_id="recordSection33Employment",
        summary="The person is employed under Section 33 again: their membership ends",
        response_model=PersonOut,
        responses=_STATUS_ERRORS,
    )
    async def section33_employment(
        national_id: NationalIdPath,
        body: Section33EmploymentIn,
        caller: CallerDep,
        token: TokenDep,
    ) -> PersonOut:
        """Employment under Section 33 ends a Section 39 or 40 membership from the month it
        began (reason `section33_employment`). After it, the person registers again (Section 39
        with the new Section 33 history, or Section 40). 409 client.conflict when no
        membership is open."""
        person = await insured.return_to_section33(
            caller=caller, credentials=token, national_id=national_id,
            employed_from=body.employed_from, reason=body.reason,
        )  # fmt: skip
        return PersonOut.of(person)

    @router.post(
        "/insured/{nationalId}/option-change",
        tags=[TAG],
        operation_id="changeInsuredOption",
        summary="Change a Section 40 member's option, effective next month",
        response_model=OptionChangeResultOut,
        responses=_CHANGE_ERRORS,
    )
    async def change_option(
        national_id: NationalIdPath, body: OptionIn, caller: CallerDep, token: TokenDep
    ) -> OptionChangeResultOut:
        """At most once a year (`SSOGW_S40_OPTION_CHANGE_PERIOD`: per calendar year, the
        default, or twelve months apart); otherwise 422 client.option_change_refused."""
        result = await insured.change_option(
            caller=caller, credentials=token, national_id=national_id, option=body.option
        )
        return OptionChangeResultOut.of(result)
