"""Session 21 attacks on admission, on a real database: each test fails on the code it was
written against because of the defect its docstring names, and says what the correct behaviour
is."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets

import asyncpg
import pytest

from app.admission.rate_limiter import RateLimiter
from app.main import Gateway
from app.principals.shared_limits import RateBucketRepository
from app.soap.router import soap_endpoint
from tests.conftest import PartnerCredentials
from tests.reliability.soap_wire import created_now, inquire_body, security
from tests.support.asgi_calls import soap_post
from tests.unit.soap.envelopes import envelope

pytestmark = pytest.mark.db
KNOWN_ID = "3100600445635"
ADMITTED = ("ok", "client.person_not_found")  # admitted: the ID's existence is beside the point


def fault_code(body: bytes | memoryview) -> str:
    """The gateway's error code in a SOAP answer, or ``ok`` when it is not a Fault."""
    found = re.search(rb"<sso:code>([^<]*)</sso:code>", bytes(body))
    return found.group(1).decode() if found else "ok"


async def test_a_captured_token_replays_with_its_nonce_tail_moved_into_created(
    gateway: Gateway, partner: PartnerCredentials
) -> None:
    """Defect: a PasswordDigest is SHA-1(nonce + Created + password), the nonce's bytes and the
    Created text's UTF-8 run together, and replay protection keys on the nonce alone. The SOAP
    reader strips only XML's white space around the Created text (``XML_SPACE``), but
    ``app.admission.service._parse_created`` strips everything Python calls space
    (``str.strip``: U+00A0, U+0085, U+2000..., U+3000). So a captured token whose nonce ends
    with the UTF-8 of such a character (``C2 A0`` for a no-break space: one random 16-byte
    nonce in about 32,000 — at 1,000 calls/s, one every half a minute) is replayed, without
    the secret, as nonce minus those bytes and Created with the character in front: the digest
    covers the very same bytes, Created reads as the same instant, and the nonce is one the
    ledger never saw, so the replay is admitted.

    Correct: the Created text is read as it came (an adapter has already taken XML's white
    space off), so a character moved out of the nonce makes it unreadable: the shifted replay
    is refused ``client.unauthenticated``.
    """
    endpoint = soap_endpoint(counter=gateway.counter)
    nonce = os.urandom(14) + "\xa0".encode()  # a partner's random nonce, as it sometimes is
    created = created_now()
    captured = security(partner.username, partner.password, nonce=nonce, created=created)
    first = await endpoint.answer(*soap_post(envelope(inquire_body(KNOWN_ID), header=captured)))
    assert fault_code(first.body) in ADMITTED, first.body

    # The eavesdropper's edit: no secret, the captured digest kept as it was.
    shifted = captured.replace(
        base64.b64encode(nonce).decode(), base64.b64encode(nonce[:-2]).decode()
    ).replace(f"<wsu:Created>{created}<", f"<wsu:Created>\xa0{created}<")
    assert shifted != captured
    replay = await endpoint.answer(*soap_post(envelope(inquire_body(KNOWN_ID), header=shifted)))
    assert fault_code(replay.body) == "client.unauthenticated", (
        "a captured token replayed with its nonce's last two bytes moved into Created (a"
        f" no-break space) was answered {fault_code(replay.body)}, as the captured one was"
    )


async def test_a_raised_rate_limit_waits_for_the_old_limit_s_next_token(gateway: Gateway) -> None:
    """Defect: ``RateLimiter.take_token`` refuses, without asking the bucket, every call until
    ``empty_until``, which ``_refill`` computed from the rate of the time (a lease's worth due
    at that rate). The rate comes with every call so that "a changed limit holds from the next
    lease on" (the module's docstring), and a lowered one does; but a raised one waits for the
    next lease until a token would have been due at the OLD rate: a partner held at 0.01/s
    during an incident and raised back to 100/s stays refused ``client.rate_limited`` on every
    instance for up to 100 s (1,000 s from the registry's lowest rate, 0.001/s), its
    ``retry_after_s`` saying so.

    Correct: a call at another rate than the one the wait was computed for asks the bucket
    again: 50 ms after the raise to 100/s, five tokens are there and the call is admitted.
    """
    pool: asyncpg.Pool = gateway.db.admission_pool
    limiter = RateLimiter(buckets=RateBucketRepository(lambda: pool))
    k = ("partner", secrets.randbelow(2**62) + 2**40)  # a principal no other test uses
    assert await limiter.take(k, 0.01) == 0.0  # its burst: one token
    held = await limiter.take(k, 0.01)
    assert held > 90, held  # the next one is due in 100 s
    await asyncio.sleep(0.05)  # raised to 100/s: five tokens are due by now
    wait = await limiter.take(k, 100.0)
    assert wait == 0.0, f"refused for {wait:.0f} s more at the raised limit of 100/s"
