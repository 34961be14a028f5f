"""The REST API under ``/api/v1``: one router over the service layer, errors as problem+json.

Every route parses its request, makes one service call and renders the answer; the services
admit the caller (bearer token and scope), apply the rules and write the audit trail. A request
that does not validate goes to the service's ``refuse`` (the counter's, or the admin gate's with
the routes' scope), which admits its caller before it is told what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, NoReturn

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.access import AuditAccess
from app.audit.admin_gate import ADMIN_SCOPE, AUDIT_SCOPE, AdminGate
from app.audit.routes import add_audit_routes
from app.counter.operations import CounterOperations
from app.counter.records import Operation
from app.counter.routes import add_counter_routes
from app.errors import MethodNotAllowed, NotFound, ServiceError
from app.insured.routes import add_insured_routes
from app.insured.service import InsuredAdmin
from app.principals.routes import add_principal_routes
from app.principals.service import PrincipalAdmin
from app.rates.routes import add_rates_routes
from app.rates.service import RatesAdmin
from app.rest.caller import admitting_first
from app.rest.problem import ProblemRoute, problem_response, request_id
from app.stats.routes import add_stats_routes
from app.stats.service import PaymentStats

PREFIX: Final = "/api/v1"
_METHODS: Final = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True, slots=True)
class ApiServices:
    """The use cases the REST API exposes."""

    counter: CounterOperations
    insured: InsuredAdmin
    rates: RatesAdmin
    principals: PrincipalAdmin
    audit: AuditAccess
    stats: PaymentStats
    gate: AdminGate  # admits the callers of the use cases above but the counter's


def counter_routes(counter: CounterOperations) -> type[ProblemRoute]:
    """The route class of the counter's routes: what does not validate, the counter refuses."""

    async def refuse(
        *,
        caller: Caller,
        credentials: Credentials,
        operation: str,
        error: ServiceError,
        national_id: str | None,
    ) -> NoReturn:
        await counter.refuse(
            caller=caller,
            credentials=credentials,
            operation=Operation(operation),
            error=error,
            national_id=national_id,
        )

    return admitting_first(refuse)


def gated_routes(gate: AdminGate, scope: str) -> type[ProblemRoute]:
    """The route class of routes needing ``scope``: what does not validate, the gate refuses."""
    return admitting_first(partial(gate.refuse, scope=scope))


def api_router(services: ApiServices) -> APIRouter:
    """Every ``/api/v1`` route; unknown paths and methods are answered as problem+json too."""
    admin = gated_routes(services.gate, ADMIN_SCOPE)
    parts: list[tuple[type[ProblemRoute], Callable[[APIRouter], None]]] = [
        (counter_routes(services.counter), lambda r: add_counter_routes(r, services.counter)),
        (admin, lambda r: add_insured_routes(r, services.insured)),
        (admin, lambda r: add_rates_routes(r, services.rates)),
        (admin, lambda r: add_principal_routes(r, services.principals)),
        (gated_routes(services.gate, AUDIT_SCOPE), lambda r: add_audit_routes(r, services.audit)),
        (admin, lambda r: add_stats_routes(r, services.stats)),
    ]
    api = APIRouter()
    known: list[APIRoute] = []
    for route_class, add_routes in parts:
        part = APIRouter(prefix=PREFIX, route_class=route_class)
        add_routes(part)
        known += [route for route in part.routes if isinstance(route, APIRoute)]
        api.include_router(part)
    router = APIRouter(prefix=PREFIX, route_class=ProblemRoute)

    @router.api_route("/{path:path}", methods=_METHODS, include_in_schema=False)
    async def unknown(request: Request, path: str) -> Response:
        rid = request_id(request)
        allowed = sorted(
            {
                method
                for route in known
                if route.path_regex.fullmatch(request.scope["path"])
                for method in route.methods or ()
            }
        )
        if not allowed:
            return problem_response(NotFound("No such resource.", path=f"{PREFIX}/{path}"), rid)
        error = MethodNotAllowed(
            f"{request.method} is not allowed here; use {', '.join(allowed)}.", allowed=allowed
        )
        return problem_response(error, rid, headers={"Allow": ", ".join(allowed)})

    api.include_router(router)
    return api
