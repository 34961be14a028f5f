"""Which failures of a spool replay are the record's own (it is set aside) and which are not
(the spool is kept for the next try): a fault of the client's configuration is not a record's,
though asyncpg makes it a ValueError too."""

from __future__ import annotations

import asyncpg
import pytest

from app.db.failures import refused_for_values


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.InvalidTextRepresentationError("not an inet"),
        asyncpg.NotNullViolationError("request_id"),
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
        ValueError("'10.0.0.1/32' does not appear to be an IPv4 or IPv6 address"),
        OverflowError("cannot convert Infinity to integer"),
        TypeError("unhashable"),
    ],
)
def test_a_records_own_refusal_sets_it_aside(exc: Exception) -> None:
    assert refused_for_values(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.ClientConfigurationError("sslmode=verify-full: no root certificate"),
        asyncpg.ConnectionDoesNotExistError("closed mid-statement"),
        asyncpg.InterfaceError("pool is closed"),
        asyncpg.LockNotAvailableError("the head is held"),
        asyncpg.ReadOnlySQLTransactionError("a standby now"),
        asyncpg.QueryCanceledError("statement timeout"),
        asyncpg.InsufficientPrivilegeError("a rollback's grants"),
        TimeoutError(),
        OSError("connection refused"),
    ],
)
def test_a_failure_not_of_the_record_keeps_the_spool(exc: Exception) -> None:
    assert not refused_for_values(exc)
