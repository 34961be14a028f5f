"""What a compromised pod can do to the audit trail with the SERVICE role's credentials: the
attacks that once worked (shadowing audit_log with a temporary table, a decoy off the chain, a
forged link, rows off the chain, rows the gateway cannot read back) and are now refused or named
by verify (migration 0010)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from app.audit.chain import chain_hash
from app.audit.queries import stored_row
from app.db.local_pair import PairRecord
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.integration.test_audit_tampering import (  # noqa: F401 (fixtures)
    gateway_on,
    inquiry,
    scratch,
    template,
)
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request, s40_person, today
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db

RECORDS = "SELECT seq, national_id, detail FROM audit_records WHERE request_id = $1"
GUARD = "only once it is on the chain"
FAR_FUTURE = "20000-01-01 00:00:00+00"  # a valid timestamptz that Python cannot represent


@asynccontextmanager
async def attacker_holding_the_head(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """A service-role session (the pod's credentials) holding the chain head's lock in an open
    transaction, so no linker moves the record meanwhile."""
    conn = await asyncpg.connect(settings.primary_dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT 1 FROM audit_chain WHERE id FOR UPDATE")
            yield conn
    finally:
        await conn.close()


async def confirm(gateway: Gateway, partner: PartnerCredentials) -> tuple[str, str, str]:
    nid = await s40_person(gateway)
    rid = uuid.uuid4().hex
    paid = await gateway.counter.confirm(
        caller=caller(rid),
        credentials=digest_token(partner.username, partner.password),
        request=confirm_request(nid, [str(today())], 7000),
    )
    return nid, rid, paid.receipt_no


async def still_recorded(gateway: Gateway, rid: str, nid: str, receipt: str) -> None:
    [row] = await gateway.db.primary.fetch(RECORDS, rid)
    assert row["national_id"] == nid and row["detail"]["receiptNo"] == receipt


async def test_a_temporary_audit_log_does_not_fool_the_queues_guard(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=GUARD):
        async with attacker_holding_the_head(settings) as attacker:
            nid, rid, receipt = await confirm(gateway, partner)
            await attacker.execute("CREATE TEMP TABLE audit_log (at timestamptz, record_id uuid)")
            await attacker.execute(
                "INSERT INTO audit_log SELECT at, record_id FROM public.audit_unlinked"
                " WHERE request_id = $1", rid)  # fmt: skip
            await attacker.execute("DELETE FROM public.audit_unlinked WHERE request_id = $1", rid)
    await still_recorded(gateway, rid, nid, receipt)


async def test_a_decoy_off_the_chain_does_not_let_a_record_go(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=GUARD):
        async with attacker_holding_the_head(settings) as attacker:
            nid, rid, receipt = await confirm(gateway, partner)
            await attacker.execute(
                "INSERT INTO audit_log (seq, at, principal_kind, protocol, operation, outcome,"
                " request_id, prev_hash, hash, record_id) SELECT 4611686018427387904, at,"
                " principal_kind, protocol, operation, outcome, request_id, '\\x00', '\\x00',"
                " record_id FROM audit_unlinked WHERE request_id = $1", rid)  # fmt: skip
            await attacker.execute("DELETE FROM audit_unlinked WHERE request_id = $1", rid)
    await still_recorded(gateway, rid, nid, receipt)


async def test_a_record_linked_by_the_attacker_with_other_content_does_not_replace_it(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings
) -> None:
    """The attacker does the linker's work with its own content (well chained, head moved):
    the original may not leave the queue for a copy that differs, so nothing of it commits."""
    other = await s40_person(gateway)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=GUARD):
        async with attacker_holding_the_head(settings) as attacker:
            nid, rid, receipt = await confirm(gateway, partner)
            head = await attacker.fetchrow("SELECT last_seq, last_hash FROM audit_chain")
            original = await attacker.fetchrow(
                "SELECT record_id, at, principal_kind, principal_id, principal_name, operator,"
                " terminal, host(source_ip) AS source_ip, protocol, operation, national_id,"
                " name_returned, outcome, request_id, detail::text AS detail"
                " FROM audit_unlinked WHERE request_id = $1", rid)  # fmt: skip
            forged = {**dict(original), "national_id": other}
            forged["detail"] = original["detail"].replace(receipt, "R-FORGED")
            seq, prev = head["last_seq"] + 1, bytes(head["last_hash"])
            row_hash = chain_hash(prev, seq, stored_row(forged))
            await attacker.execute(
                "INSERT INTO audit_log (seq, at, principal_kind, principal_id, principal_name,"
                " operator, terminal, source_ip, protocol, operation, national_id, name_returned,"
                " outcome, request_id, detail, prev_hash, hash, record_id) VALUES ($1, $2, $3,"
                " $4, $5, $6, $7, $8::inet, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17,"
                " $18)",
                seq, forged["at"], forged["principal_kind"], forged["principal_id"],
                forged["principal_name"], forged["operator"], forged["terminal"],
                forged["source_ip"], forged["protocol"], forged["operation"], other,
                forged["name_returned"], forged["outcome"], forged["request_id"],
                forged["detail"], prev, row_hash, forged["record_id"],
            )  # fmt: skip
            await attacker.execute(
                "UPDATE audit_chain SET last_seq = $1, last_hash = $2", seq, row_hash
            )
            await attacker.execute("DELETE FROM audit_unlinked WHERE request_id = $1", rid)
    await still_recorded(gateway, rid, nid, receipt)


async def test_a_row_inserted_off_the_chain_is_named_by_verify(
    scratch: PairRecord,  # noqa: F811 (the fixture, imported)
    tmp_path: Path,
    clock: PinnedClock,
) -> None:
    """A forged 'a partner looked this person up' row past the head: lookups would show it, so
    verify names it (on a database of its own: the session's chain stays whole)."""
    async with gateway_on(scratch, tmp_path, clock) as gw:
        await gw.audit.record(inquiry(clock(), 0))
        service = await asyncpg.connect(scratch.primary_dsn)  # the pod's credentials
        try:
            await service.execute(
                "INSERT INTO audit_log (seq, at, principal_kind, principal_name, protocol,"
                " operation, national_id, name_returned, outcome, request_id, prev_hash, hash,"
                " record_id) VALUES (4611686018427387905, $1, 'partner', 'innocent-partner',"
                " 'soap', 'InquireContribution', '3100600445635', 'victim', 'ok', 'forged',"
                " '\\x00', '\\x00', $2)", clock(), uuid.uuid4())  # fmt: skip
        finally:
            await service.close()
        result = await gw.audit_trail.verify()
    assert not result.ok and result.first_broken is not None
    assert result.first_broken.seq == 4611686018427387905, result.first_broken
    assert "off the chain" in result.first_broken.reason


@pytest.mark.parametrize("table", ["audit_unlinked", "audit_log"])
async def test_a_row_the_gateway_could_not_read_back_is_refused(
    gateway: Gateway, settings: Settings, table: str
) -> None:
    """A time past year 9999 once stopped linking (audit_unlinked) or verify (audit_log)."""
    chain = ", seq, prev_hash, hash" if table == "audit_log" else ""
    values = ", 1, '\\x00', '\\x00'" if table == "audit_log" else ""
    service = await asyncpg.connect(settings.primary_dsn)
    try:
        with pytest.raises(asyncpg.CheckViolationError):
            await service.execute(
                f"INSERT INTO {table} (record_id, at, principal_kind, protocol, operation,"
                f" outcome, request_id{chain}) VALUES ($1, $2::text::timestamptz, 'anonymous',"
                f" 'cli', 'x', 'ok', 'poison'{values})", uuid.uuid4(), FAR_FUTURE)  # fmt: skip
    finally:
        await service.close()
