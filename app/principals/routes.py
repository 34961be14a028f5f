"""Partners and internal clients over REST (scope ``admin``): create, list, disable, rotate.

Secrets (a partner's password, a client's token) are in the answers of create and rotate only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from app.principals.schemas import (
    ClientIn,
    ClientIssuedOut,
    ClientListOut,
    ClientOut,
    PartnerIn,
    PartnerIssuedOut,
    PartnerListOut,
    PartnerOut,
)
from app.principals.service import PrincipalAdmin
from app.rest.caller import CallerDep, TokenDep
from app.rest.problem import problem_responses

PARTNERS = "partners"
CLIENTS = "internal clients"
NamePath = Annotated[str, Path(max_length=200, description="The name.", examples=["cvs-demo"])]
NO_STORE = {"Cache-Control": "no-store"}  # answers that carry a secret are never cached
_READ = problem_responses(401, 403, 422, 429, 500, 503)
_CREATE = problem_responses(400, 401, 403, 409, 413, 422, 429, 500, 503)
_CHANGE = problem_responses(401, 403, 404, 422, 429, 500, 503)


def add_principal_routes(router: APIRouter, admin: PrincipalAdmin) -> None:
    """Register the partner and client routes on ``router``."""

    # --- partners --------------------------------------------------------------------------------
    @router.get(
        "/partners",
        tags=[PARTNERS],
        operation_id="listPartners",
        summary="List partners",
        response_model=PartnerListOut,
        responses=_READ,
    )
    async def list_partners(caller: CallerDep, token: TokenDep) -> PartnerListOut:
        return PartnerListOut.of(await admin.list_partners(caller=caller, credentials=token))

    @router.post(
        "/partners",
        tags=[PARTNERS],
        operation_id="addPartner",
        summary="Register a partner (its password is shown once)",
        status_code=201,
        response_model=PartnerIssuedOut,
        responses=_CREATE,
    )
    async def add_partner(
        body: PartnerIn, caller: CallerDep, token: TokenDep, response: Response
    ) -> PartnerIssuedOut:
        response.headers.update(NO_STORE)
        issued = await admin.add_partner(
            caller=caller,
            credentials=token,
            name=body.name,
            cidrs=body.cidrs,
            operations=body.operations,
            rate_limit=body.rate_limit,
            display_name=body.display_name,
            password_text_ok=body.password_text_allowed,
        )
        return PartnerIssuedOut.of(issued)

    @router.post(
        "/partners/{name}/disable",
        tags=[PARTNERS],
        operation_id="disablePartner",
        summary="Disable a partner",
        response_model=PartnerOut,
        responses=_CHANGE,
    )
    async def disable_partner(name: NamePath, caller: CallerDep, token: TokenDep) -> PartnerOut:
        view = await admin.set_partner_status(
            caller=caller, credentials=token, name=name, active=False
        )
        return PartnerOut.model_validate(view)

    @router.post(
        "/partners/{name}/enable",
        tags=[PARTNERS],
        operation_id="enablePartner",
        summary="Enable a partner again",
        response_model=PartnerOut,
        responses=_CHANGE,
    )
    async def enable_partner(name: NamePath, caller: CallerDep, token: TokenDep) -> PartnerOut:
        view = await admin.set_partner_status(
            caller=caller, credentials=token, name=name, active=True
        )
        return PartnerOut.model_validate(view)

    @router.post(
        "/partners/{name}/rotate",
        tags=[PARTNERS],
        operation_id="rotatePartner",
        summary="Issue a new partner password (shown once); the old one stops working",
        response_model=PartnerIssuedOut,
        responses=_CHANGE,
    )
    async def rotate_partner(
        name: NamePath, caller: CallerDep, token: TokenDep, response: Response
    ) -> PartnerIssuedOut:
        response.headers.update(NO_STORE)
        return PartnerIssuedOut.of(
            await admin.rotate_partner(caller=caller, credentials=token, name=name)
        )

    # --- internal clients ------------------------------------------------------------------------
    @router.get(
        "/clients",
        tags=[CLIENTS],
        operation_id="listClients",
        summary="List internal clients",
        response_model=ClientListOut,
        responses=_READ,
    )
    async def list_clients(caller: CallerDep, token: TokenDep) -> ClientListOut:
        return ClientListOut.of(await admin.list_clients(caller=caller, credentials=token))

    @router.post(
        "/clients",
        tags=[CLIENTS],
        operation_id="addClient",
        summary="Register an internal client (its token is shown once)",
        status_code=201,
        response_model=ClientIssuedOut,
        responses=_CREATE,
    )
    async def add_client(
        body: ClientIn, caller: CallerDep, token: TokenDep, response: Response
    ) -> ClientIssuedOut:
        response.headers.update(NO_STORE)
        issued = await admin.add_client(
            caller=caller,
            credentials=token,
            name=body.name,
            scopes=body.scopes,
            cidrs=body.cidrs,
            rate_limit=body.rate_limit,
        )
        return ClientIssuedOut.of(issued)

    @router.post(
        "/clients/{name}/disable",
        tags=[CLIENTS],
        operation_id="disableClient",
        summary="Disable an internal client",
        response_model=ClientOut,
        responses=_CHANGE,
    )
    async def disable_client(name: NamePath, caller: CallerDep, token: TokenDep) -> ClientOut:
        view = await admin.set_client_status(
            caller=caller, credentials=token, name=name, active=False
        )
        return ClientOut.model_validate(view)

    @router.post(
        "/clients/{name}/enable",
        tags=[CLIENTS],
        operation_id="enableClient",
        summary="Enable an internal client again",
        response_model=ClientOut,
        responses=_CHANGE,
    )
    async def enable_client(name: NamePath, caller: CallerDep, token: TokenDep) -> ClientOut:
        view = await admin.set_client_status(
            caller=caller, credentials=token, name=name, active=True
        )
        return ClientOut.model_validate(view)

    @router.post(
        "/clients/{name}/rotate",
        tags=[CLIENTS],
        operation_id="rotateClient",
        summary="Issue a new client token (shown once); the old one stops working",
        response_model=ClientIssuedOut,
        responses=_CHANGE,
    )
    async def rotate_client(
        name: NamePath, caller: CallerDep, token: TokenDep, response: Response
    ) -> ClientIssuedOut:
        response.headers.update(NO_STORE)
        return ClientIssuedOut.of(
            await admin.rotate_client(caller=caller, credentials=token, name=name)
        )
