"""Managing partners and internal clients over the API: the registry, admitted and audited.

Scope ``admin``. Creating, disabling, enabling and rotating leave an audit record (who changed
which principal, refused attempts included); secrets are returned by create and rotate only.
A client with the ``audit`` scope is created, and its token rotated, only by a caller that has
the ``audit`` scope itself: ``admin`` alone must not mint a way into the audit trail.
A change takes effect at once on this instance (its admission cache is dropped) and within a
moment on every other (the database announces it: ``app.principals.change_feed``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from app.admission.credentials import Credentials
from app.admission.records import Caller
from app.audit.admin_gate import ADMIN_SCOPE, AUDIT_SCOPE, AdminGate, Admitted
from app.errors import ScopeNotAllowed
from app.principals.records import Principal
from app.principals.registry import IssuedClient, IssuedPartner, Registry

T = TypeVar("T")


class PrincipalAdmin:
    """Partner and client management for SSO's internal applications."""

    def __init__(self, *, gate: AdminGate, registry: Registry) -> None:
        self._gate = gate
        self._registry = registry

    async def _change(
        self,
        caller: Caller,
        credentials: Credentials,
        operation: str,
        target: str,
        change: Callable[[], Awaitable[T]],
        *,
        guard: Callable[[Principal], Awaitable[None]] | None = None,
    ) -> T:
        async def body(call: Admitted) -> T:
            if guard is not None:
                await guard(call.principal)
            result = await change()
            self._gate.forget_principals()
            await call.audit.ok(target=target[:64])
            return result

        return await self._gate.audited(
            caller=caller,
            credentials=credentials,
            operation=operation,
            scope=ADMIN_SCOPE,
            body=body,
        )

    async def _read(self, caller: Caller, credentials: Credentials, operation: str) -> None:
        await self._gate.admit(
            caller=caller, credentials=credentials, operation=operation, scope=ADMIN_SCOPE
        )

    # --- partners --------------------------------------------------------------------------------
    async def add_partner(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        name: str,
        cidrs: Sequence[str],
        operations: Sequence[str] | None,
        rate_limit: float,
        display_name: str | None,
        password_text_ok: bool,
    ) -> IssuedPartner:
        """Register a partner; its generated password is in the answer, and only there."""
        return await self._change(
            caller,
            credentials,
            "AddPartner",
            name,
            lambda: self._registry.add_partner(
                name=name,
                cidrs=cidrs,
                operations=operations,
                rate_limit=rate_limit,
                display_name=display_name,
                password_text_ok=password_text_ok,
            ),
        )

    async def list_partners(
        self, *, caller: Caller, credentials: Credentials
    ) -> list[dict[str, Any]]:
        """Every partner, without secrets."""
        await self._read(caller, credentials, "ListPartners")
        return await self._registry.list_partners()

    async def set_partner_status(
        self, *, caller: Caller, credentials: Credentials, name: str, active: bool
    ) -> dict[str, Any]:
        """Enable or disable a partner."""
        operation = "EnablePartner" if active else "DisablePartner"
        return await self._change(
            caller,
            credentials,
            operation,
            name,
            lambda: self._registry.set_partner_status(name, active=active),
        )

    async def rotate_partner(
        self, *, caller: Caller, credentials: Credentials, name: str
    ) -> IssuedPartner:
        """A new password for a partner; the old one stops working."""
        return await self._change(
            caller, credentials, "RotatePartner", name, lambda: self._registry.rotate_partner(name)
        )

    # --- clients ---------------------------------------------------------------------------------
    @staticmethod
    def _may_give_audit(principal: Principal, scopes: Iterable[str]) -> None:
        # As the registry reads them (" audit" is the audit scope too).
        if AUDIT_SCOPE in {s.strip() for s in scopes} and AUDIT_SCOPE not in principal.scopes:
            raise ScopeNotAllowed(
                "Only a client with the 'audit' scope may create, or rotate the token of, a"
                " client with it.",
                scope=AUDIT_SCOPE,
                scopes=sorted(principal.scopes),
            )

    async def add_client(
        self,
        *,
        caller: Caller,
        credentials: Credentials,
        name: str,
        scopes: Sequence[str],
        cidrs: Sequence[str] | None = None,
        rate_limit: float | None = None,
    ) -> IssuedClient:
        """Register an internal client; its bearer token is in the answer, and only there."""

        async def guard(principal: Principal) -> None:
            self._may_give_audit(principal, scopes)

        return await self._change(
            caller,
            credentials,
            "AddClient",
            name,
            lambda: self._registry.add_client(
                name=name, scopes=scopes, cidrs=cidrs, rate_limit=rate_limit
            ),
            guard=guard,
        )

    async def list_clients(
        self, *, caller: Caller, credentials: Credentials
    ) -> list[dict[str, Any]]:
        """Every internal client, without tokens."""
        await self._read(caller, credentials, "ListClients")
        return await self._registry.list_clients()

    async def set_client_status(
        self, *, caller: Caller, credentials: Credentials, name: str, active: bool
    ) -> dict[str, Any]:
        """Enable or disable an internal client."""
        operation = "EnableClient" if active else "DisableClient"
        return await self._change(
            caller,
            credentials,
            operation,
            name,
            lambda: self._registry.set_client_status(name, active=active),
        )

    async def rotate_client(
        self, *, caller: Caller, credentials: Credentials, name: str
    ) -> IssuedClient:
        """A new bearer token for a client; the old one stops working."""

        async def guard(principal: Principal) -> None:
            self._may_give_audit(principal, await self._registry.client_scopes(name))

        return await self._change(
            caller,
            credentials,
            "RotateClient",
            name,
            lambda: self._registry.rotate_client(name),
            guard=guard,
        )
