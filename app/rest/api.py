"""The REST API under ``/api/v1``: one router over the service layer, errors as problem+json.

Every route parses its request, makes one service call and renders the answer; the services
admit the caller (bearer token and scope), apply the rules and write the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from app.audit.access import AuditAccess
from app.audit.routes import add_audit_routes
from app.counter.operations import CounterOperations
from app.counter.routes import add_counter_routes
from app.errors import MethodNotAllowed, NotFound
from app.insured.routes import add_insured_routes
from app.insured.service import InsuredAdmin
from app.principals.routes import add_principal_routes
from app.principals.service import PrincipalAdmin
from app.rates.routes import add_rates_routes
from app.rates.service import RatesAdmin
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


def api_router(services: ApiServices) -> APIRouter:
    """Every ``/api/v1`` route; unknown paths and methods are answered as problem+json too."""
    router = APIRouter(prefix=PREFIX, route_class=ProblemRoute)
    add_counter_routes(router, services.counter)
    add_insured_routes(router, services.insured)
    add_rates_routes(router, services.rates)
    add_principal_routes(router, services.principals)
    add_audit_routes(router, services.audit)
    add_stats_routes(router, services.stats)
    known = [route for route in router.routes if isinstance(route, APIRoute)]

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

    return router
