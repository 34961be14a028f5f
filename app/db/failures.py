"""The one place that knows asyncpg's exceptions and turns them into the error vocabulary."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from app.errors import InvalidInput, ReadOnlyStore, ServiceError, StoreUnavailable

# Failures that mean "the server is not there or went away": the request may be retried.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InternalClientError,
)
# The stores a write is meant for: a read-only answer from them means the node was demoted.
WRITABLE_STORES = frozenset({"primary", "audit"})


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection (not the query) failed: the server closed it,
    refused it, or is shutting down. A read that failed so may be tried once more on a fresh
    connection; a timeout is not one of them (a second try would double the wait)."""
    if isinstance(exc, TimeoutError):
        return False
    return isinstance(
        exc,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.InterfaceError  # "connection is closed"
        | asyncpg.CannotConnectNowError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError,
    )


def refused_for_values(exc: BaseException) -> bool:
    """Whether a statement failed on the values it was given, as it would every time
    (PostgreSQL's data and integrity errors, a value Python cannot write), not for want of a
    connection, a lock or time, nor a fault of the client's configuration (asyncpg's is a
    ValueError too)."""
    if isinstance(exc, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError):
        return True
    wrong_value = isinstance(exc, ValueError | TypeError | ArithmeticError)
    return wrong_value and not isinstance(exc, asyncpg.ClientConfigurationError)


def translate(exc: BaseException, *, store: str) -> ServiceError | None:
    """The vocabulary's error for an asyncpg/OS failure, or None if it is not a store failure."""
    if isinstance(
        exc, asyncpg.CharacterNotInRepertoireError | asyncpg.UntranslatableCharacterError
    ):
        return InvalidInput(
            "The request holds characters that cannot be stored (such as NUL).",
            reason="unstorable_character",
        )
    if isinstance(exc, asyncpg.ReadOnlySQLTransactionError):
        if store in WRITABLE_STORES:
            # The primary's DSN reached a node that is (now) a standby: a failover is under
            # way or just happened. A retry reaches the new primary once the pool reconnects.
            return StoreUnavailable(
                f"the {store} database is read-only now (a failover?); retry the same request",
                store=store,
                reason="read_only",
            )
        return ReadOnlyStore(f"the {store} is read-only; a write was sent to it", store=store)
    if isinstance(exc, UNAVAILABLE):
        return StoreUnavailable(
            f"the {store} database is unavailable; retry the same request", store=store
        )
    return None


@asynccontextmanager
async def translated(store: str) -> AsyncIterator[None]:
    """Re-raise store failures inside the block as ``ServiceError``s."""
    try:
        yield
    except ServiceError:
        raise
    except Exception as exc:
        mapped = translate(exc, store=store)
        if mapped is None:
            raise
        raise mapped from exc
