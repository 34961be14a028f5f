"""A check joined by callers presenting the same secret, whose own caller goes away (a client
that disconnects, a request cut at its deadline): the callers who joined it were answered with
its cancellation, a 500, and are now checked themselves."""

from __future__ import annotations

import asyncio

from app.admission.credential_checks import CredentialChecks, Presented
from app.admission.secret_hashing import SecretHashing


def presented(secret: str, stored: str) -> Presented:
    return Presented(
        kind="client", name="ops", address="198.51.100.7", secret=secret, ident=7,
        stored_hash=stored,
    )  # fmt: skip


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
