"""Nobody let in: each way of getting in wrongly is refused, over the wire of a real gateway
process — with one answer, client.unauthenticated, for every failure of admission but the clock
— and each refusal is in the audit trail, with its reason, under the request id the answer
carried in X-Request-ID."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from app.db.local_pair import PairRecord
from app.domain.calendar import settlement_day
from app.principals.registry import Registry
from tests.reliability.conftest import NewPartner, NewPeople, replica_caught_up
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import CLIENT_LIMITS, GatewayProcess
from tests.reliability.soap_wire import (
    CT11,
    CT12,
    Partner,
    SoapAnswer,
    cancel_body,
    confirm_body,
    created_now,
    describe,
    envelope,
    inquire_body,
    new_request_id,
    read_answer,
    security,
    signed,
    status_body,
)
from tests.reliability.workload import current_month

pytestmark = [pytest.mark.reliability, pytest.mark.serial]


@pytest.fixture(scope="module")
async def http(shared_gateway: GatewayProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=shared_gateway.base_url, timeout=10, limits=CLIENT_LIMITS
    ) as client:
        yield client


@pytest.fixture(scope="module")
async def nid(new_people: NewPeople, rel_record: PairRecord) -> str:
    """A member the replica already has (an admitted inquiry reads it there)."""
    (member,) = await new_people(1)
    await replica_caught_up(rel_record)
    return member


async def post_soap(
    http: httpx.AsyncClient,
    content: bytes,
    *,
    version: str = "1.1",
    headers: dict[str, str] | None = None,
) -> SoapAnswer:
    request_id = new_request_id()
    response = await http.post(
        "/soap/v1",
        content=content,
        headers={
            "content-type": CT11 if version == "1.1" else CT12,
            "x-request-id": request_id,
            **(headers or {}),
        },
    )
    answer = read_answer(response)
    assert answer.request_id == request_id, "the answer must carry the caller's request id"
    return answer


async def audit_of(pool: asyncpg.Pool, request_id: str) -> list[dict[str, Any]]:
    """The records of one request; a refusal of a caller never admitted is counted by the
    gateway and written when its window (0.2 s here) is over, so it is waited for."""
    deadline = time.monotonic() + 5
    while True:
        rows = await pool.fetch(
            "SELECT protocol, operation, outcome, national_id, principal_name,"
            " host(source_ip) AS ip, name_returned, detail FROM audit_records"
            " WHERE request_id = $1 ORDER BY seq NULLS LAST",
            request_id,
        )
        if rows or time.monotonic() > deadline:
            return [dict(row) for row in rows]
        await asyncio.sleep(0.05)


async def refused_and_audited(
    pool: asyncpg.Pool,
    answer: SoapAnswer,
    *,
    case: str,
    code: str,
    reason: str | None = None,
    national_id: str | None = None,
    operation: str = "InquireContribution",
) -> dict[str, Any]:
    """Assert ``answer`` is a Client fault with ``code`` and that its refusal was audited, with
    ``reason`` in the record: a credential's reason is never in the answer."""
    FIGURES.hostile_answer(case, "auth", describe(answer))
    assert answer.fault in ("soap:Client", "env:Sender"), answer
    assert answer.code == code, answer
    assert answer.reason is None, answer
    rows = await audit_of(pool, answer.request_id)
    assert len(rows) == 1, rows
    row = rows[0]
    if reason is not None:
        detail = row["detail"]
        detail = json.loads(detail) if isinstance(detail, str) else detail
        assert detail["reason"] == reason, row
    assert (row["protocol"], row["operation"], row["outcome"]) == ("soap", operation, code), row
    assert row["ip"] == "127.0.0.1", row
    assert row["name_returned"] is None, row  # a refused caller is told no name
    if national_id is not None:
        assert row["national_id"] == national_id, row
    return row


async def test_wrong_address(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, new_partner: NewPartner, nid: str
) -> None:
    outsider = await new_partner(cidrs=["10.0.0.0/8"])
    answer = await post_soap(http, signed(outsider, inquire_body(nid)))
    row = await refused_and_audited(
        admin_pool,
        answer,
        case="wrong_address",
        code="client.unauthenticated",
        reason="ip_not_allowed",
        national_id=nid,
    )
    assert row["principal_name"] == outsider.username


async def test_wrong_password(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, partner: Partner, nid: str
) -> None:
    impostor = Partner(partner.name, partner.username, "not-the-password")
    answer = await post_soap(
        http, signed(impostor, inquire_body(nid), version="1.2"), version="1.2"
    )
    await refused_and_audited(
        admin_pool,
        answer,
        case="wrong_password",
        code="client.unauthenticated",
        reason="bad_password",
        national_id=nid,
    )


async def test_unknown_username(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, nid: str
) -> None:
    stranger = Partner("nobody", f"nobody-{uuid.uuid4().hex[:8]}", "whatever")
    answer = await post_soap(http, signed(stranger, inquire_body(nid)))
    await refused_and_audited(
        admin_pool,
        answer,
        case="unknown_username",
        code="client.unauthenticated",
        reason="unknown_user",
        national_id=nid,
    )


async def test_replayed_nonce(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, partner: Partner, nid: str
) -> None:
    """An eavesdropper resends a captured request byte for byte: the nonce gives it away."""
    captured = signed(partner, inquire_body(nid))
    first = await post_soap(http, captured)
    assert first.ok, first
    replay = await post_soap(http, captured)
    await refused_and_audited(
        admin_pool,
        replay,
        case="replayed_nonce",
        code="client.unauthenticated",
        reason="replayed_nonce",
        national_id=nid,
    )


@pytest.mark.parametrize("skew", [timedelta(hours=-1), timedelta(hours=1)], ids=["past", "future"])
async def test_stale_created(
    http: httpx.AsyncClient,
    admin_pool: asyncpg.Pool,
    partner: Partner,
    nid: str,
    skew: timedelta,
) -> None:
    header = security(partner.username, partner.password, created=created_now(skew))
    answer = await post_soap(http, envelope(inquire_body(nid), header=header))
    await refused_and_audited(
        admin_pool,
        answer,
        case=f"stale_created_{'past' if skew < timedelta(0) else 'future'}",
        code="client.clock_skew",
        reason="clock_skew",
        national_id=nid,
    )


async def test_nonce_that_is_not_base64(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, partner: Partner, nid: str
) -> None:
    good = security(partner.username, partner.password)
    start = good.index(">", good.index("<wsse:Nonce")) + 1
    header = good[:start] + "!!not-base64!!" + good[good.index("</wsse:Nonce>") :]
    answer = await post_soap(http, envelope(inquire_body(nid), header=header))
    await refused_and_audited(
        admin_pool,
        answer,
        case="nonce_not_base64",
        code="client.unauthenticated",
        reason="bad_nonce",
        national_id=nid,
    )


async def test_disabled_partner(
    http: httpx.AsyncClient,
    admin_pool: asyncpg.Pool,
    new_partner: NewPartner,
    registry: Registry,
    nid: str,
) -> None:
    disabled = await new_partner()
    await registry.set_partner_status(disabled.name, active=False)
    answer = await post_soap(http, signed(disabled, inquire_body(nid)))
    await refused_and_audited(
        admin_pool,
        answer,
        case="disabled_partner",
        code="client.unauthenticated",
        reason="partner_disabled",
        national_id=nid,
    )


async def test_operation_not_allowed(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, new_partner: NewPartner, nid: str
) -> None:
    enquirer = await new_partner(operations=["InquireContribution"])
    now = datetime.now(UTC)
    body = confirm_body(
        txn=f"REL-{uuid.uuid4().hex[:12]}",
        national_id=nid,
        section=40,
        months=[current_month()],
        amount="70.00",
        business_date=settlement_day(now),
        paid_at=now,
    )
    answer = await post_soap(http, signed(enquirer, body))
    await refused_and_audited(
        admin_pool,
        answer,
        case="operation_not_allowed",
        code="client.operation_not_allowed",
        national_id=nid,
        operation="ConfirmPayment",
    )
    paid = await admin_pool.fetchval("SELECT count(*) FROM payments WHERE national_id = $1", nid)
    assert paid == 0


async def test_spoofed_forwarded_for_from_an_untrusted_peer(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, new_partner: NewPartner, nid: str
) -> None:
    """127.0.0.1 is no trusted proxy, so its X-Forwarded-For is not believed."""
    remote = await new_partner(cidrs=["203.0.113.0/24"])
    answer = await post_soap(
        http,
        signed(remote, inquire_body(nid)),
        headers={"x-forwarded-for": "203.0.113.7"},
    )
    row = await refused_and_audited(
        admin_pool,
        answer,
        case="spoofed_forwarded_for",
        code="client.unauthenticated",
        reason="ip_not_allowed",
        national_id=nid,
    )
    assert row["ip"] == "127.0.0.1"  # the TCP peer, not the address the client claimed


async def test_one_partner_cannot_reach_another_partners_transaction(
    http: httpx.AsyncClient,
    admin_pool: asyncpg.Pool,
    partner: Partner,
    new_partner: NewPartner,
    new_people: NewPeople,
) -> None:
    (payer,) = await new_people(1)
    rival = await new_partner()
    txn = f"REL-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC)
    body = confirm_body(
        txn=txn,
        national_id=payer,
        section=40,
        months=[current_month()],
        amount="70.00",
        business_date=settlement_day(now),
        paid_at=now,
    )
    confirmed = await post_soap(http, signed(partner, body))
    assert confirmed.ok, confirmed

    # Asking for the status: the rival learns nothing (as if the id had never been used).
    status = await post_soap(http, signed(rival, status_body(txn)))
    FIGURES.hostile_answer("other_partners_status", "auth", describe(status) + " state=unknown")
    assert status.ok and status.fields["state"] == "unknown", status
    assert payer not in str(status.fields) and confirmed.fields["receiptNo"] not in str(status)
    (row,) = await audit_of(admin_pool, status.request_id)
    assert row["principal_name"] == rival.username and row["national_id"] is None, row

    # Cancelling it: refused, and the payment stands.
    cancel = await post_soap(http, signed(rival, cancel_body(txn)))
    await refused_and_audited(
        admin_pool,
        cancel,
        case="other_partners_cancel",
        code="client.transaction_not_found",
        operation="CancelPayment",
    )
    state = await admin_pool.fetchval(
        "SELECT state FROM payments WHERE partner_txn_id = $1 AND national_id = $2", txn, payer
    )
    assert state == "confirmed"


# --- REST: bearer tokens -------------------------------------------------------------------------
async def rest_refused_and_audited(
    http: httpx.AsyncClient,
    pool: asyncpg.Pool,
    *,
    case: str,
    nid: str,
    token: str,
    status: int,
    code: str,
    reason: str | None = None,
) -> None:
    request_id = new_request_id()
    response = await http.get(
        f"/api/v1/insured/{nid}/contributions",
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
    )
    FIGURES.hostile_answer(case, "auth", f"{response.status_code} {response.json().get('code')}")
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert response.headers["x-request-id"] == request_id
    rows = await audit_of(pool, request_id)
    assert len(rows) == 1, rows
    assert (rows[0]["protocol"], rows[0]["outcome"], rows[0]["national_id"]) == ("rest", code, nid)
    if reason is not None:
        detail = rows[0]["detail"]
        detail = json.loads(detail) if isinstance(detail, str) else detail
        assert detail["reason"] == reason, rows[0]


async def test_rest_wrong_token_secret(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, registry: Registry, nid: str
) -> None:
    issued = await registry.add_client(name=f"rel-{uuid.uuid4().hex[:10]}", scopes=["counter"])
    forged = (
        issued.token.rpartition("_")[0] + "_" + base64.urlsafe_b64encode(os.urandom(18)).decode()
    )
    await rest_refused_and_audited(
        http,
        admin_pool,
        case="rest_wrong_token",
        nid=nid,
        token=forged,
        status=401,
        code="client.unauthenticated",
    )


async def test_rest_missing_scope(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, registry: Registry, nid: str
) -> None:
    issued = await registry.add_client(name=f"rel-{uuid.uuid4().hex[:10]}", scopes=["audit"])
    await rest_refused_and_audited(
        http,
        admin_pool,
        case="rest_missing_scope",
        nid=nid,
        token=issued.token,
        status=403,
        code="client.scope_not_allowed",
    )


async def test_rest_disabled_client(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, registry: Registry, nid: str
) -> None:
    name = f"rel-{uuid.uuid4().hex[:10]}"
    issued = await registry.add_client(name=name, scopes=["counter"])
    await registry.set_client_status(name, active=False)
    await rest_refused_and_audited(
        http,
        admin_pool,
        case="rest_disabled_client",
        nid=nid,
        token=issued.token,
        status=401,
        code="client.unauthenticated",
        reason="client_disabled",
    )


async def test_rest_wrong_address(
    http: httpx.AsyncClient, admin_pool: asyncpg.Pool, registry: Registry, nid: str
) -> None:
    name = f"rel-{uuid.uuid4().hex[:10]}"
    issued = await registry.add_client(name=name, scopes=["counter"])
    await admin_pool.execute(
        "UPDATE api_clients SET cidrs = ARRAY['10.0.0.0/8'::cidr] WHERE name = $1", name
    )
    await rest_refused_and_audited(
        http,
        admin_pool,
        case="rest_wrong_address",
        nid=nid,
        token=issued.token,
        status=401,
        code="client.unauthenticated",
        reason="ip_not_allowed",
    )
