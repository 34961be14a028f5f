"""What a compromised pod can do to the audit trail with the SERVICE role's credentials: the
attacks that once worked (shadowing audit_log with a temporary table, a decoy off the chain, a
forged link, rows off the chain, rows the gateway cannot read back) and are now refused or named
by verify (migrations 0010 and 0016: the service role may neither insert into audit_log, delete
from audit_unlinked nor move the head; only the owner's append and link functions do)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.audit.chain import AuditRow, canonical_tail, chain_hash, prepare
from app.audit.queries import stored_row
from app.db.local_pair import PairRecord
from app.main import Gateway
from app.settings import Settings
from tests.conftest import PartnerCredentials
from tests.integration.test_audit_links import record
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
DENIED = "permission denied"
FAR_FUTURE = "20000-01-01 00:00:00+00"  # a valid timestamptz that Python cannot represent
WAITING = (
    "SELECT record_id, at, principal_kind, principal_id, principal_name, operator, terminal,"
    " host(source_ip) AS source_ip, protocol, operation, national_id, name_returned, outcome,"
    " request_id, detail::text AS detail FROM audit_unlinked WHERE request_id = $1"
)
APPEND_TAILS = (
    "SELECT * FROM ssogw_audit_append_tails($1::text[]::timestamptz[], $2::text[],"
    " $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],"
    " $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::uuid[],"
    " $16::bytea[], 1000)"
)
APPEND_RECORDS = "SELECT * FROM ssogw_audit_append_records($1::ssogw_audit_record[], 1000)"
APPEND_FAR_FUTURE_RECORD = (
    "SELECT * FROM ssogw_audit_append_records(ARRAY[ROW("
    f"'{FAR_FUTURE}'::timestamptz, 'anonymous', NULL, NULL, NULL, NULL, NULL, 'cli', 'x',"
    " NULL, NULL, 'ok', 'forged', NULL, gen_random_uuid(), '\\x5d'::bytea"
    ")::ssogw_audit_record], 1000)"
)
APPEND = (
    "SELECT * FROM ssogw_audit_append($1, $2, $3::bigint[], $4::text[]::timestamptz[],"
    " $5::text[], $6::integer[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
    " $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],"
    " $18::bytea[], $19::bytea[], $20::uuid[], 1000)"
)


@asynccontextmanager
async def head_held_by_the_owner(settings: Settings) -> AsyncIterator[None]:
    """The chain head held (as by a slow linker) so the record waits in audit_unlinked."""
    assert settings.owner_dsn
    holder = await asyncpg.connect(settings.owner_dsn)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM audit_chain WHERE id FOR UPDATE")
            yield
    finally:
        await holder.close()


@asynccontextmanager
async def service_session(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A session with the pod's credentials (the service role)."""
    conn = await asyncpg.connect(dsn)
    try:
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


async def append_one(conn: asyncpg.Connection, **fields: Any) -> asyncpg.Record:
    """Call the owner's append function with one record after the head, as the writer does
    (``fields`` override its values: at, hash, seq)."""
    head = await conn.fetchrow("SELECT last_seq, last_hash FROM audit_chain")
    seq, prev = head["last_seq"], bytes(head["last_hash"])
    values: dict[str, Any] = {
        "seq": seq + 1, "at": datetime.now().astimezone().isoformat(), "hash": bytes(32),
    } | fields  # fmt: skip
    result: asyncpg.Record = await conn.fetchrow(
        APPEND, seq, prev, [values["seq"]], [values["at"]], ["anonymous"], [None], [None],
        [None], [None], [None], ["cli"], ["x"], [None], [None], ["ok"], ["forged"], [None],
        [prev], [values["hash"]], [uuid.uuid4()],
    )  # fmt: skip
    return result


async def test_a_temporary_audit_log_does_not_fool_the_queue(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings
) -> None:
    async with head_held_by_the_owner(settings), service_session(settings.primary_dsn) as pod:
        nid, rid, receipt = await confirm(gateway, partner)
        await pod.execute("CREATE TEMP TABLE audit_log (at timestamptz, record_id uuid)")
        await pod.execute(
            "INSERT INTO audit_log SELECT at, record_id FROM public.audit_unlinked"
            " WHERE request_id = $1", rid)  # fmt: skip
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=DENIED):
            await pod.execute("DELETE FROM public.audit_unlinked WHERE request_id = $1", rid)
    await still_recorded(gateway, rid, nid, receipt)


async def test_a_decoy_off_the_chain_cannot_even_be_written(
    gateway: Gateway, partner: PartnerCredentials, settings: Settings
) -> None:
    async with head_held_by_the_owner(settings), service_session(settings.primary_dsn) as pod:
        nid, rid, receipt = await confirm(gateway, partner)
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=DENIED):
            await pod.execute(
                "INSERT INTO audit_log (seq, at, principal_kind, protocol, operation, outcome,"
                " request_id, prev_hash, hash, record_id) SELECT 4611686018427387904, at,"
                " principal_kind, protocol, operation, outcome, request_id, '\\x00', '\\x00',"
                " record_id FROM audit_unlinked WHERE request_id = $1", rid)  # fmt: skip
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=DENIED):
            await pod.execute("DELETE FROM audit_unlinked WHERE request_id = $1", rid)
    await still_recorded(gateway, rid, nid, receipt)


async def a_confirm_record_waiting(gw: Gateway, clock: PinnedClock) -> str:
    """A sealed chain, and a confirm's record committed behind it, waiting for its link (its
    request id). The gateway's linker (sweeping once an hour) has had its first look by then:
    one record of its own is committed and linked first, so that look, late on a busy
    machine, cannot take the record meant for the attacker."""

    async def waiting_confirm() -> str:
        rid = uuid.uuid4().hex
        async with gw.db.primary.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO audit_unlinked (record_id, at, principal_kind, protocol,"
                " operation, national_id, outcome, request_id) VALUES ($1, $2, 'partner',"
                " 'soap', 'ConfirmPayment', '3100600445635', 'ok', $3)", uuid.uuid4(), clock(),
                rid,
            )  # fmt: skip
        return rid

    await waiting_confirm()
    gw.audit.link_soon()
    deadline = time.monotonic() + 10
    while await gw.db.primary.fetchval("SELECT count(*) FROM audit_unlinked"):
        assert time.monotonic() < deadline, "the gateway's linker did not link its record"
        await asyncio.sleep(0.02)
    await gw.audit.record(inquiry(clock(), 0))
    await gw.sealer.seal()
    return await waiting_confirm()


async def test_a_record_linked_by_the_attacker_keeps_its_content_and_a_wrong_hash_is_named(
    scratch: PairRecord,  # noqa: F811 (the fixture, imported)
    tmp_path: Path,
    clock: PinnedClock,
) -> None:
    """The attacker does the linker's work with the hash of other content: the owner's link
    function moves the stored values (they never leave the database), so the record stays
    what it was, and verify names it, since its hash is not its content's."""
    # No linker of the gateway's comes by meanwhile, nor a second look after the first.
    quiet = {"audit_link_interval_s": 3600, "audit_link_wait_ms": 0}
    async with gateway_on(scratch, tmp_path, clock, **quiet) as gw:
        rid = await a_confirm_record_waiting(gw, clock)
        async with service_session(scratch.primary_dsn) as pod:
            original = await pod.fetchrow(WAITING, rid)
            forged = {**dict(original), "national_id": "1101700230703"}
            head = await pod.fetchrow("SELECT last_seq, last_hash FROM audit_chain")
            seq, prev = head["last_seq"] + 1, bytes(head["last_hash"])
            row_hash = chain_hash(prev, seq, stored_row(forged))
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match=DENIED):
                await pod.execute("UPDATE audit_chain SET last_seq = $1, last_hash = $2",
                                  seq, row_hash)  # fmt: skip
            linked = await pod.fetchrow(
                "SELECT * FROM ssogw_audit_link($1, $2, $3, $4, $5, $6, 1000)",
                seq - 1, prev, [original["record_id"]], [seq], [prev], [row_hash],
            )  # fmt: skip
            assert linked["advanced"] and linked["last_seq"] == seq
        [row] = await gw.db.primary.fetch(RECORDS, rid)
        assert (row["seq"], row["national_id"]) == (seq, "3100600445635"), "its own content"
        result = await gw.audit_trail.verify()
    assert result.first_broken is not None and result.first_broken.seq == seq
    assert "edited" in result.first_broken.reason


async def test_the_append_function_takes_only_a_batch_that_continues_the_chain(
    scratch: PairRecord,  # noqa: F811 (the fixture, imported)
) -> None:
    """Rows off the chain (a seq past the head) and rows the gateway could not read back (a
    time past year 9999, which once stopped verify) are refused by the owner's function."""
    async with service_session(scratch.primary_dsn) as pod:
        with pytest.raises(asyncpg.InvalidParameterValueError, match="continue the chain"):
            await append_one(pod, seq=4611686018427387905)
        with pytest.raises(asyncpg.InvalidParameterValueError, match="continue the chain"):
            await append_one(pod, hash=b"\x01")  # not a SHA-256
        with pytest.raises(asyncpg.CheckViolationError):
            await append_one(pod, at=FAR_FUTURE)


async def test_a_record_linked_with_a_forged_tail_keeps_its_content_and_verify_names_it(
    scratch: PairRecord,  # noqa: F811 (the fixture, imported)
    tmp_path: Path,
    clock: PinnedClock,
) -> None:
    """The same attack on the function that hashes in the database (0017): it cannot tell that
    a tail is not its record's canonical form, but the record keeps its stored content and
    verify recomputes the hash from that content."""
    # No linker of the gateway's comes by meanwhile, nor a second look after the first.
    quiet = {"audit_link_interval_s": 3600, "audit_link_wait_ms": 0}
    async with gateway_on(scratch, tmp_path, clock, **quiet) as gw:
        rid = await a_confirm_record_waiting(gw, clock)
        async with service_session(scratch.primary_dsn) as pod:
            original = await pod.fetchrow(WAITING, rid)
            forged = canonical_tail(stored_row({**dict(original), "national_id": "1101700230703"}))
            linked = await pod.fetchrow(
                "SELECT * FROM ssogw_audit_link_tails($1, $2, 1000)",
                [original["record_id"], original["record_id"]], [forged, forged],
            )  # fmt: skip
            assert linked["linked"] == 1, "each waiting record once"
            again = await pod.fetchrow(
                "SELECT * FROM ssogw_audit_link_tails($1, $2, 1000)",
                [original["record_id"]], [forged],
            )  # fmt: skip
            assert again["linked"] == 0 and again["last_seq"] == linked["last_seq"]
        [row] = await gw.db.primary.fetch(RECORDS, rid)
        assert (row["seq"], row["national_id"]) == (linked["last_seq"], "3100600445635")
        result = await gw.audit_trail.verify()
    assert result.first_broken is not None and result.first_broken.seq == linked["last_seq"]
    assert "edited" in result.first_broken.reason


async def test_the_hashing_append_function_takes_a_tail_per_record_and_a_readable_time(
    scratch: PairRecord,  # noqa: F811 (the fixture, imported)
) -> None:
    """A batch without a canonical tail for each record, and a row the gateway could not read
    back (a time past year 9999), are refused; nothing goes onto the chain."""
    async with service_session(scratch.primary_dsn) as pod:
        head = await pod.fetchval("SELECT last_seq FROM audit_chain")

        async def append(at: str, tails: list[bytes | None]) -> None:
            await pod.fetchrow(
                APPEND_TAILS, [at], ["anonymous"], [None], [None], [None], [None], [None],
                ["cli"], ["x"], [None], [None], ["ok"], ["forged"], [None], [uuid.uuid4()],
                tails,
            )  # fmt: skip

        now = datetime.now().astimezone().isoformat()
        for tails in ([None], [], [b"]", b"]"]):
            with pytest.raises(asyncpg.InvalidParameterValueError, match="canonical tail"):
                await append(now, tails)
        with pytest.raises(asyncpg.CheckViolationError):
            await append(FAR_FUTURE, [b"]"])
        assert await pod.fetchval("SELECT last_seq FROM audit_chain") == head


def as_record(row: AuditRow) -> tuple[object, ...]:
    """``row`` as a service-role session sends it to 0022's append: an ``ssogw_audit_record``
    with a new record id and its true canonical tail."""
    return (
        row.at, row.principal_kind, row.principal_id, row.principal_name, row.operator,
        row.terminal, row.source_ip, row.protocol, row.operation, row.national_id,
        row.name_returned, row.outcome, row.request_id, row.detail_json(), uuid.uuid4(),
        canonical_tail(row),
    )  # fmt: skip


async def test_the_records_append_function_takes_an_id_time_and_tail_in_every_record(
    scratch: PairRecord,  # noqa: F811 (the fixture, imported)
) -> None:
    """0022's append: an empty batch, a NULL record, a record without its id, time or tail, a
    batch of two dimensions and a time past year 9999 are refused; nothing goes onto the
    chain. A record sent whole goes on after the head, hashed as the gateway hashes it."""
    row = prepare(record("3100600445635", datetime.now(UTC), request_id="sent-whole"))
    whole = as_record(row)

    def without(field: int) -> tuple[object, ...]:
        return tuple(None if i == field else value for i, value in enumerate(whole))

    async with service_session(scratch.primary_dsn) as pod:
        head = await pod.fetchrow("SELECT last_seq, last_hash FROM audit_chain")
        refusals: list[tuple[object, str]] = [
            ([], "at least one record"),
            ([None], "record 1 of the batch"),
            ([whole, without(15)], "record 2 of the batch"),  # no tail
            ([without(14)], "record 1 of the batch"),  # no record id
            ([without(0)], "record 1 of the batch"),  # no time
            ([[whole], [whole]], "one-dimensional"),
        ]
        for records, says in refusals:
            with pytest.raises(asyncpg.InvalidParameterValueError, match=says):
                await pod.fetchrow(APPEND_RECORDS, records)
        with pytest.raises(asyncpg.CheckViolationError):
            await pod.fetchrow(APPEND_FAR_FUTURE_RECORD)
        assert await pod.fetchval("SELECT last_seq FROM audit_chain") == head["last_seq"]
        taken = await pod.fetchrow(APPEND_RECORDS, [whole])
        seq = head["last_seq"] + 1
        assert taken["last_seq"] == seq
        assert bytes(taken["last_hash"]) == chain_hash(bytes(head["last_hash"]), seq, row)
        stored = await pod.fetchrow(
            "SELECT at, principal_kind, principal_id, principal_name, operator, terminal,"
            " host(source_ip) AS source_ip, protocol, operation, national_id, name_returned,"
            " outcome, request_id, detail::text AS detail FROM audit_log WHERE seq = $1", seq
        )  # fmt: skip
        assert stored_row(stored) == row


async def test_the_records_append_function_refuses_a_batch_not_numbered_from_one_whole(
    scratch: PairRecord,  # noqa: F811 (the fixture, imported)
) -> None:
    """0022's append checks records[1] to records[n] and pairs each record with its hash by
    position: a batch whose array does not start at index 1 (``'[0:1]={...}'``, which no
    driver sends but an attacker can) is refused, as is a batch with a source_ip or detail its
    column refuses; the head stays where it was and nothing goes onto the chain."""
    batch = [
        as_record(prepare(record("3100600445635", datetime.now(UTC), request_id=f"numbered-{i}")))
        for i in range(2)
    ]
    first, second = batch
    numbered_from = (
        "SELECT * FROM ssogw_audit_append_records("
        "($1 || $2::ssogw_audit_record[]::text)::ssogw_audit_record[], 1000)"
    )
    async with service_session(scratch.primary_dsn) as pod:
        before = await pod.fetchrow("SELECT last_seq, last_hash FROM audit_chain")
        for bounds in ("[0:1]=", "[2:3]=", "[-1:0]="):
            with pytest.raises(asyncpg.InvalidParameterValueError, match="starts at index 1"):
                await pod.fetchrow(numbered_from, bounds, batch)
        not_an_ip = (*second[:6], "not-an-ip", *second[7:])
        not_json = (*second[:13], "{not json", *second[14:])
        for refused in (not_an_ip, not_json):
            with pytest.raises(asyncpg.InvalidTextRepresentationError):
                await pod.fetchrow(APPEND_RECORDS, [first, refused])
        assert await pod.fetchrow("SELECT last_seq, last_hash FROM audit_chain") == before
        assert not await pod.fetchval(
            "SELECT count(*) FROM audit_log WHERE request_id LIKE 'numbered-%'"
        )


async def test_a_row_the_gateway_could_not_read_back_is_refused_in_the_queue(
    settings: Settings,
) -> None:
    """A time past year 9999 once stopped linking."""
    async with service_session(settings.primary_dsn) as pod:
        with pytest.raises(asyncpg.CheckViolationError):
            await pod.execute(
                "INSERT INTO audit_unlinked (record_id, at, principal_kind, protocol, operation,"
                " outcome, request_id) VALUES ($1, $2::text::timestamptz, 'anonymous', 'cli',"
                " 'x', 'ok', 'poison')", uuid.uuid4(), FAR_FUTURE)  # fmt: skip
