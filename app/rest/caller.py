"""Who is calling: the Caller and the bearer credentials of a REST request, as dependencies; and
routes that admit them before telling them what is wrong with their request.

Both dependencies are ``async def`` though they never wait: FastAPI runs a plain ``def``
dependency in a worker thread, a thread round trip per dependency per request.

FastAPI validates a request's path, query and body before the route's handler (which calls the
service that admits the caller) runs. So that a caller who is not admitted learns only that,
whatever its request holds, routes made by ``admitting_first(refuse)`` send a request that did
not validate to ``refuse``, a service's refusal that admits the caller first and raises either
the admission's answer or the validation error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, NoReturn, Protocol

from fastapi import Depends, Header, Request, Security
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.admission.credentials import BearerToken, Credentials
from app.admission.records import Caller
from app.admission.records import Protocol as CallProtocol
from app.admission.source_address import forwarded_for
from app.errors import ServiceError
from app.rest.problem import ProblemRoute, request_id
from app.rest.wire import header

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="ssogw_<id>_<secret>",
    description="A token from `ssogw client add NAME --scopes counter,admin,audit`. Each"
    " operation names the scope it needs.",
)


async def rest_caller(
    request: Request,
    x_request_id: Annotated[
        str | None,
        Header(
            alias="X-Request-ID",
            description="Your id for this request (letters, digits, `._:-`, up to 128); echoed"
            " in the answer and kept in the audit trail. A fresh one is made when absent.",
        ),
    ] = None,
) -> Caller:
    """The caller as this adapter sees it, before admission."""
    return caller_of(request)


def caller_of(request: Request) -> Caller:
    """The caller as this adapter sees it, before admission."""
    # Every X-Forwarded-For line, as the SOAP adapter reads them (believed only from a proxy).
    # Read from the scope (as request.client and request.headers.getlist read it): every call
    # comes this way, and the raw list is short.
    scope = request.scope
    lines = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
    client = scope.get("client")
    return Caller(
        protocol=CallProtocol.REST,
        source_ip=client[0] if client is not None else "",
        request_id=request_id(request),
        forwarded_for=forwarded_for(lines) if lines else None,
    )


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> BearerToken | None:
    """The bearer token, or None (the service then refuses with client.unauthenticated)."""
    return BearerToken(credentials.credentials) if credentials is not None else None


CallerDep = Annotated[Caller, Depends(rest_caller)]
TokenDep = Annotated[BearerToken | None, Depends(bearer_token)]


def bearer_of(request: Request) -> BearerToken | None:
    """The request's bearer token read as ``bearer_scheme`` reads it, or None."""
    # As fastapi.security.utils.get_authorization_scheme_param: the token stripped.
    scheme, _, token = (header(request, b"authorization") or "").partition(" ")
    token = token.strip()
    return BearerToken(token) if scheme.lower() == "bearer" and token else None


class Refuse(Protocol):
    """A service's refusal of a request its route could not read: admit the caller, then raise
    ``error`` (or the admission's own refusal)."""

    async def __call__(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        operation: str,
        error: ServiceError,
        national_id: str | None,
    ) -> NoReturn: ...


@dataclass(frozen=True, slots=True)
class _AdmitFirst:
    refuse: Refuse

    async def answer(
        self, request: Request, route: APIRoute, exc: Exception, error: ServiceError
    ) -> ServiceError:
        # The service names its operations as the routes' operation ids, capitalised.
        operation = route.operation_id or route.name
        try:
            await self.refuse(
                caller=caller_of(request),
                credentials=bearer_of(request),
                operation=operation[:1].upper() + operation[1:],
                error=error,
                national_id=_national_id(request, exc),
            )
        except ServiceError as answer:
            return answer


def _national_id(request: Request, exc: Exception) -> str | None:
    """The national ID the request names: its path's, query's or JSON body's ``nationalId``."""
    named: Any = request.path_params.get("nationalId") or request.query_params.get("nationalId")
    body = getattr(exc, "body", None)  # a RequestValidationError's body, as parsed
    if named is None and isinstance(body, dict):
        named = body.get("nationalId")
    return named if isinstance(named, str) else None


def admitting_first(refuse: Refuse) -> type[ProblemRoute]:
    """The route class of routes whose requests that do not validate go to ``refuse``."""

    class AdmittingFirstRoute(ProblemRoute):
        unreadable = _AdmitFirst(refuse)

    return AdmittingFirstRoute
