"""Insured-person administration over REST (scope ``admin``; every call is audited)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from app.insured.history_schemas import PersonDetailOut
from app.insured.schemas import (
    OptionChangeResultOut,
    OptionIn,
    PersonIn,
    PersonOut,
    PersonPageOut,
    StatusIn,
)
from app.insured.service import MAX_PAGE, InsuredAdmin
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import problem_responses
from app.rest.wire import SectionQuery

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
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Persons per page.")] = 50,
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
        needs an option and, when a birth date is given, an age of 15 to 65."""
        person = await insured.register(
            caller=caller, credentials=token, registration=body.to_registration()
        )
        return PersonOut.of(person)

    @router.put(
        "/insured/{nationalId}/status",
        tags=[TAG],
        operation_id="setInsuredStatus",
        summary="Set a person's status (active, terminated, inactive)",
        response_model=PersonOut,
        responses=_CHANGE_ERRORS,
    )
    async def set_status(
        national_id: NationalIdPath, body: StatusIn, caller: CallerDep, token: TokenDep
    ) -> PersonOut:
        """A termination records the first month no longer covered (default: this month)."""
        person = await insured.set_status(
            caller=caller,
            credentials=token,
            national_id=national_id,
            status=body.status,
            reason=body.reason,
            ended_month=body.ended_month,
        )
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
        """At most once a calendar year (a setting); otherwise 422 client.option_change_refused."""
        result = await insured.change_option(
            caller=caller, credentials=token, national_id=national_id, option=body.option
        )
        return OptionChangeResultOut.of(result)
