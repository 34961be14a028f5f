"""Attacks on the fallback of a confirm whose ``ssogw_confirm_read`` is refused
(``app.counter.ledger``: ``ConfirmReadPath``): what is, and what is not, the function's refusal."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from app.counter.service import CounterService
from app.db.local_pair import SERVICE_ROLE
from app.db.recent_writes import RecentWrites
from app.main import Gateway
from tests.conftest import PartnerCredentials
from tests.integration.test_confirm_read_refused import _ours
from tests.integration.test_confirm_round_trips import Statements, counted  # noqa: F401
from tests.support.counter_calls import caller, confirm_request, s40_person, today
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

Counted = tuple[CounterService, Statements, RecentWrites]


async def _confirm(counter: CounterService, partner: PartnerCredentials, nid: str) -> None:
    await counter.confirm(
        caller=caller(uuid.uuid4().hex),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, [str(today())], 7000, txn=f"i-{nid}"),
    )


async def test_a_right_the_read_needs_refused_inside_the_function_is_not_the_functions_refusal(
    gateway: Gateway, partner: PartnerCredentials, owner_pool: asyncpg.Pool,
    counted: Counted, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:  # fmt: skip
    """The service may call the function, but a table its read reads is refused (SELECT on
    ``closed_memberships`` taken away): the two-statement read is refused alike, so the
    confirm fails as that read does (the refusal itself, not a retryable answer that its
    retry cannot mend), no log line says the function may not be called, and the instance
    keeps calling it (five statements once the right is back, not six)."""
    counter, statements, _ = counted
    nid = await s40_person(gateway, option=1)
    await owner_pool.execute(f"REVOKE SELECT ON closed_memberships FROM {SERVICE_ROLE}")
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _confirm(counter, partner, nid)
    finally:
        await owner_pool.execute(f"GRANT SELECT ON closed_memberships TO {SERVICE_ROLE}")
    assert "may not call ssogw_confirm_read" not in caplog.text
    statements.sent.clear()
    await _confirm(counter, partner, nid)
    assert len(_ours(statements)) == 5, "the instance still calls the function"
    assert "FROM ssogw_confirm_read($1," in _ours(statements)[1]
