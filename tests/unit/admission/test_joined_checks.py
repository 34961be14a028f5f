"""A check joined by callers presenting the same secret, whose own caller goes away (a client
that disconnects, a request cut at its deadline): the callers who joined it were answered with
its cancellation, a 500, and are now checked themselves."""

from __future__ import annotations

import asyncio

from app.admission.credential_checks import CredentialChecks
from app.admission.secret_hashing import SecretHashing
from tests.support.credentials import presented


async def test_callers_joined_to_a_check_whose_caller_went_away_are_answered() -> None:
    hashing = SecretHashing(workers=1, queue=2, memory_kib=65536, time_cost=2, parallelism=1)
    checks = CredentialChecks(hashing=hashing)
    stored = await hashing.hash("right")
    first = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # its argon2 run under way
    joined = asyncio.create_task(checks.holds(presented("right", stored)))
    await asyncio.sleep(0.01)  # waiting for the first's check
    first.cancel()
    async with asyncio.timeout(10):
        assert await joined is True
