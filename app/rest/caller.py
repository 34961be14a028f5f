"""Who is calling: the Caller and the bearer credentials of a REST request, as dependencies.

Both are ``async def`` though they never wait: FastAPI runs a plain ``def`` dependency in a
worker thread, a thread round trip per dependency per request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.admission.credentials import BearerToken
from app.admission.records import Caller, Protocol
from app.rest.problem import request_id

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
    x_forwarded_for: Annotated[
        str | None,
        Header(
            alias="X-Forwarded-For",
            description="Believed only when the peer is a configured trusted proxy.",
            include_in_schema=False,
        ),
    ] = None,
) -> Caller:
    """The caller as this adapter sees it, before admission."""
    return Caller(
        protocol=Protocol.REST,
        source_ip=request.client.host if request.client is not None else "",
        request_id=request_id(request),
        forwarded_for=x_forwarded_for,
    )


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> BearerToken | None:
    """The bearer token, or None (the service then refuses with client.unauthenticated)."""
    return BearerToken(credentials.credentials) if credentials is not None else None


CallerDep = Annotated[Caller, Depends(rest_caller)]
TokenDep = Annotated[BearerToken | None, Depends(bearer_token)]
