"""The chain's append and link functions of migrations 0017 (numbered and hashed in the database)
and 0022 (a batch as one array of records) beside the previous releases' (0016's and 0017's),
as the attacker's review of session 8 tried them: a rollback's grants, every release at once, a
head held through the new functions, the linker's count, and a decoy under a waiting record's
id; and the linker's wait, which links the confirms committed meanwhile together. Each test
runs on a scratch copy of the migrated database and verifies its whole chain."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from app.audit.chain import canonical_tail, prepare
from app.audit.chain_head import (
    APPEND,
    PREVIOUS_RELEASE,
    RELEASE_BEFORE,
    THIS_RELEASE,
    ChainHeadMover,
)
from app.audit.queries import AuditQueries
from app.audit.unlinked import AuditLinker, add_unlinked
from app.audit.writer import AuditWriter
from app.db.local_pair import SERVICE_ROLE, PairRecord
from app.domain.national_id import generate_national_id
from app.errors import AuditUnavailable
from tests.integration.test_audit_links import committed_by_a_business_transaction, record
from tests.integration.test_audit_tampering import (  # noqa: F401 (fixtures)
    gateway_on,
    scratch,
    template,
)
from tests.support.clock import PinnedClock

pytestmark = pytest.mark.db

NID = "3100600445635"


@asynccontextmanager
async def pool_on(dsn: str, size: int = 3) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


def instance(pool: asyncpg.Pool, *, release: int = THIS_RELEASE, **more: float) -> AuditWriter:
    """A writer with its linker; ``release``: the migration whose functions it appends through,
    as that release does (``RELEASE_BEFORE``: 0016's, hashing after the head it last saw)."""
    writer = AuditWriter(
        pool_provider=lambda: pool, max_batch=16, max_wait_ms=1, link_interval_s=0.2, **more
    )
    writer._head._release = release  # the path a refused function leaves it on
    return writer


async def verify_whole(pool: asyncpg.Pool) -> None:
    result = await AuditQueries(pool_provider=lambda: pool).verify(from_=None, to=None)
    assert result.ok, result.first_broken
    assert not await pool.fetchval(
        "SELECT count(*) FROM (SELECT record_id FROM audit_log GROUP BY record_id"
        " HAVING count(*) > 1) twice"
    )


async def waiting(pool: asyncpg.Pool, request_ids: list[str], *, within_s: float = 10) -> int:
    deadline = time.monotonic() + within_s
    while True:
        left: int = await pool.fetchval(
            "SELECT count(*) FROM audit_unlinked WHERE request_id = ANY($1)", request_ids
        )
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("revoked", "release", "said_by"),
    [
        # The previous release's grants: 0022's append is no longer the service role's.
        (["ssogw_audit_append_records"], PREVIOUS_RELEASE, ["ssogw_audit_append_records"]),
        # The release before's: 0016's pair alone.
        (
            ["ssogw_audit_append_records", "ssogw_audit_append_tails", "ssogw_audit_link_tails"],
            RELEASE_BEFORE,
            ["ssogw_audit_append_records", "ssogw_audit_append_tails"],
        ),
    ],
    ids=["previous_release", "release_before"],
)
async def test_after_a_rollbacks_grants_records_still_go_onto_the_chain(
    scratch: PairRecord,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
    revoked: list[str],
    release: int,
    said_by: list[str],
) -> None:
    """A previous release's `ssogw migrate` (a rollback's pre-deploy Job) revokes every
    routine and grants its own functions alone: this release's pods still serving must keep
    appending and linking, through that release's functions, and say so once for each refusal."""
    async with pool_on(scratch.primary_dsn) as pool:
        writer = instance(pool)
        made = [record(NID, datetime.now(UTC)) for _ in range(4)]
        await writer.start()
        try:
            await writer.record(made[0])
            owner = await asyncpg.connect(scratch.owner_dsn)
            try:
                await owner.execute(
                    f"REVOKE EXECUTE ON FUNCTION {', '.join(revoked)} FROM {SERVICE_ROLE}"
                )
            finally:
                await owner.close()
            business = made[2]
            with caplog.at_level(logging.ERROR, logger="app.audit.chain_head"):
                await writer.record(made[1])
                async with pool.acquire() as conn, conn.transaction():
                    await add_unlinked(conn, business)
                writer.link_soon()
                assert await waiting(pool, [business.request_id]) == 0
                await writer.record(made[3])
        finally:
            await writer.stop()
        said = [r.getMessage() for r in caplog.records if "previous release" in r.getMessage()]
        assert [m.split()[3] for m in said] == said_by, said
        assert writer._head._release == release
        on_chain = await pool.fetch(
            "SELECT request_id FROM audit_log WHERE request_id = ANY($1)",
            [r.request_id for r in made],
        )
        assert len(on_chain) == len(made)
        await verify_whole(pool)


async def test_a_refusal_answered_after_another_does_not_move_the_mover_back(
    scratch: PairRecord,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A rollback to 0016's release refuses every later function. A writer and its linker share
    one mover: the linker's refusal of 0017's link moves it onto 0016's functions while the
    writer's call to 0022's append is on its way. That call's refusal, answered after, must
    leave it there, not move it back onto 0017's (to be refused again, and say so twice more
    that it appends through functions it does not use)."""
    owner = await asyncpg.connect(scratch.owner_dsn)
    try:
        await owner.execute(
            "REVOKE EXECUTE ON FUNCTION ssogw_audit_append_records, ssogw_audit_append_tails,"
            f" ssogw_audit_link_tails FROM {SERVICE_ROLE}"
        )
    finally:
        await owner.close()
    async with pool_on(scratch.primary_dsn) as pool:
        business = record(NID, datetime.now(UTC))
        await committed_by_a_business_transaction(pool, business)
        linker = AuditLinker(pool_provider=lambda: pool, max_batch=16, max_wait_ms=0)
        mover = linker._head
        sent = mover._call

        async def linked_meanwhile(
            conn: asyncpg.Connection, sql: str, *args: object, **fetch: object
        ) -> object:
            if sql == APPEND:  # on its way: the linker is refused and answered first
                assert await linker.link() == 1
            return await sent(conn, sql, *args, **fetch)

        mover._call = linked_meanwhile  # type: ignore[method-assign]
        made = record(NID, datetime.now(UTC))
        with caplog.at_level(logging.ERROR, logger="app.audit.chain_head"):
            async with pool.acquire() as conn:
                await mover.append(conn, [(uuid.uuid4(), prepare(made))])
        said = [r.getMessage().split()[3] for r in caplog.records if "refused" in r.getMessage()]
        assert said == ["ssogw_audit_link_tails"], said
        assert mover._release == RELEASE_BEFORE
        on_chain = await pool.fetchval(
            "SELECT count(*) FROM audit_log WHERE request_id = ANY($1)",
            [made.request_id, business.request_id],
        )
        assert on_chain == 2
        await verify_whole(pool)


async def test_three_releases_append_and_link_at_once(scratch: PairRecord) -> None:  # noqa: F811
    nid = generate_national_id(random.Random(uuid.uuid4().int))
    start = datetime(1999, 1, 1, tzinfo=UTC)
    made: list[str] = []
    async with (
        pool_on(scratch.primary_dsn) as p0,
        pool_on(scratch.primary_dsn) as p1,
        pool_on(scratch.primary_dsn) as p2,
    ):
        pools = [p0, p1, p2]
        writers = [
            instance(p0),
            instance(p1, release=PREVIOUS_RELEASE),
            instance(p2, release=RELEASE_BEFORE),
        ]

        async def inquiry(i: int) -> None:
            each = record(nid, start + timedelta(seconds=i))
            made.append(each.request_id)
            await writers[i % 3].record(each)

        async def business(i: int) -> None:
            each = record(nid, start + timedelta(seconds=i, microseconds=1))
            made.append(each.request_id)
            async with pools[i % 3].acquire() as conn, conn.transaction():
                await add_unlinked(conn, each)
            writers[i % 3].link_soon()

        try:
            for w in writers:
                await w.start()
            for wave in range(4):
                await asyncio.gather(
                    *(inquiry(wave * 60 + i) for i in range(60)),
                    *(business(wave * 60 + i) for i in range(60)),
                )
            assert await waiting(p0, made) == 0
        finally:
            for w in writers:
                await w.stop()
        rows = await p0.fetch("SELECT request_id FROM audit_log WHERE national_id = $1", nid)
        assert sorted(r["request_id"] for r in rows) == sorted(made)
        # Each went through its own release's functions all along.
        assert [w._head._release for w in writers] == [
            THIS_RELEASE,
            PREVIOUS_RELEASE,
            RELEASE_BEFORE,
        ]
        await verify_whole(p0)


@pytest.mark.parametrize(
    "hold",
    [
        "SELECT * FROM ssogw_audit_link_tails(ARRAY[gen_random_uuid()], ARRAY['\\x5d'::bytea], 10)",
        "SELECT * FROM ssogw_audit_append_tails(ARRAY[now()], '{anonymous}', NULL, NULL, NULL,"
        " NULL, NULL, '{cli}', '{x}', NULL, NULL, '{ok}', '{r}', NULL, ARRAY[gen_random_uuid()],"
        " ARRAY['\\x5d'::bytea], 10)",
        "SELECT * FROM ssogw_audit_append_records(ARRAY[ROW(now(), 'anonymous', NULL, NULL,"
        " NULL, NULL, NULL, 'cli', 'x', NULL, NULL, 'ok', 'r', NULL, gen_random_uuid(),"
        " '\\x5d'::bytea)::ssogw_audit_record], 10)",
    ],
    ids=["link_tails_nothing_waiting", "append_tails", "append_records"],
)
@pytest.mark.serial
async def test_a_session_holding_the_head_through_a_new_function_is_ended(
    scratch: PairRecord,  # noqa: F811
    hold: str,
) -> None:
    async with pool_on(scratch.primary_dsn) as pool:
        writer = instance(pool, head_wait_s=0.3, head_hold_s=1.0)
        await writer.start()
        holder = await asyncpg.connect(scratch.primary_dsn)
        try:
            held = holder.transaction()
            await held.start()
            await holder.fetch(hold)
            began = time.monotonic()
            outcomes = []
            while time.monotonic() - began < 8:
                try:
                    await writer.record(record(NID, datetime.now(UTC)))
                    outcomes.append("ok")
                    break
                except AuditUnavailable:
                    outcomes.append("failed")
            assert outcomes[0] == "failed" and outcomes[-1] == "ok", outcomes
            assert time.monotonic() - began < 4
        finally:
            await writer.stop()
            if not holder.is_closed():
                holder.terminate()
        await verify_whole(pool)


async def test_the_linker_counts_what_it_linked_not_what_it_read(
    scratch: PairRecord,  # noqa: F811
) -> None:
    async with pool_on(scratch.primary_dsn) as pool:
        async with pool.acquire() as conn, conn.transaction():
            for i in range(5):
                await add_unlinked(conn, record(NID, datetime.now(UTC), request_id=f"r{i}"))
        ours = AuditLinker(pool_provider=lambda: pool, max_batch=16, max_wait_ms=0)
        other = AuditLinker(pool_provider=lambda: pool, max_batch=16, max_wait_ms=0)
        mover = ChainHeadMover()

        async def raced(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> int | None:
            assert await other.link() == 5  # another instance's linker gets there first
            return await mover.link(conn, rows)

        ours._head.link = raced  # type: ignore[method-assign]
        assert await ours.link() == 0
        await verify_whole(pool)


async def test_confirms_committed_within_the_link_wait_are_linked_in_one_statement(
    scratch: PairRecord,  # noqa: F811
) -> None:
    """Each confirm wakes the linker; it waits ``max_wait_ms`` before it links, so the confirms
    committed meanwhile go onto the chain in one statement, not one statement each (which
    cost the primary a third of a confirm's CPU at half load: bench/RESULTS.md, session 13)."""
    async with pool_on(scratch.primary_dsn) as pool:
        linker = AuditLinker(
            pool_provider=lambda: pool, max_batch=16, max_wait_ms=1500, sweep_interval_s=60
        )
        mover = ChainHeadMover()
        batches: list[int] = []

        async def counted(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> int | None:
            batches.append(len(rows))
            return await mover.link(conn, rows)

        linker._head.link = counted  # type: ignore[method-assign]
        made = [record(NID, datetime.now(UTC), request_id=f"w{i}") for i in range(5)]
        await linker.start()
        await asyncio.sleep(0.5)  # its first look, at once at start, has found nothing
        try:
            for each in made:  # five confirms 0.1 s apart, each waking the linker
                await committed_by_a_business_transaction(pool, each)
                linker.nudge()
                await asyncio.sleep(0.1)
            assert await waiting(pool, [r.request_id for r in made]) == 0
        finally:
            await linker.stop()
        assert [n for n in batches if n] == [5]
        await verify_whole(pool)


@pytest.mark.serial
async def test_the_gateways_linker_waits_as_long_as_its_setting_says(
    scratch: PairRecord,  # noqa: F811
    tmp_path: Path,
    clock: PinnedClock,
) -> None:
    """``SSOGW_AUDIT_LINK_WAIT_MS`` reaches the gateway's linker: a confirm's record, committed
    and announced, still waits for its link most of a second later, then is linked."""
    quiet = {"audit_link_interval_s": 3600, "audit_link_wait_ms": 1000}
    async with gateway_on(scratch, tmp_path, clock, **quiet) as gw:
        await asyncio.sleep(0.5)  # the linker's first look, at once at start, has found nothing
        made = record(NID, clock(), request_id=uuid.uuid4().hex)
        await committed_by_a_business_transaction(gw.db.primary, made)
        gw.audit.link_soon()
        await asyncio.sleep(0.3)
        assert await waiting(gw.db.primary, [made.request_id], within_s=0) == 1
        assert await waiting(gw.db.primary, [made.request_id]) == 0


@pytest.mark.parametrize("max_batch", [16, 1])
async def test_a_decoy_under_a_waiting_records_id_does_not_stop_linking(
    scratch: PairRecord,  # noqa: F811
    max_batch: int,
) -> None:
    """A service-role session appends a record true to its own columns (verify passes it)
    under the key (at, record_id) of a confirm's record still waiting. That record stays
    waiting, for an operator; later ones are linked — also one at a time: the linker's read
    leaves the victim out, or it would fill every batch of one and the linker go round it."""
    async with pool_on(scratch.primary_dsn) as pool:
        victim = record(NID, datetime(2000, 1, 1, tzinfo=UTC), request_id="victim")
        async with pool.acquire() as conn, conn.transaction():
            await add_unlinked(conn, victim)
        rid, at = await pool.fetchrow("SELECT record_id, at FROM audit_unlinked")
        decoy = prepare(dataclasses.replace(victim, national_id="1101700230703"))
        await pool.fetch(
            "SELECT * FROM ssogw_audit_append_tails($1::timestamptz[], $2::text[],"
            " $3::integer[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],"
            " $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],"
            " $15::uuid[], $16::bytea[], 1000)",
            [at], [decoy.principal_kind], [decoy.principal_id], [decoy.principal_name],
            [decoy.operator], [decoy.terminal], [decoy.source_ip], [decoy.protocol],
            [decoy.operation], [decoy.national_id], [decoy.name_returned], [decoy.outcome],
            [decoy.request_id], [decoy.detail_json()], [rid], [canonical_tail(decoy)],
        )  # fmt: skip
        later = record(NID, datetime(2001, 1, 1, tzinfo=UTC), request_id="later")
        async with pool.acquire() as conn, conn.transaction():
            await add_unlinked(conn, later)
        linker = AuditLinker(pool_provider=lambda: pool, max_batch=max_batch, max_wait_ms=0)
        async with asyncio.timeout(10):
            assert await linker.link() == 1
        assert await waiting(pool, ["later"], within_s=0) == 0
        assert await waiting(pool, ["victim"], within_s=0) == 1
        # Told to link the victim by id, the function leaves it too.
        tail = canonical_tail(prepare(victim))
        linked = await pool.fetchval(
            "SELECT linked FROM ssogw_audit_link_tails($1, $2, 1000)", [rid], [tail]
        )
        assert linked == 0
        await verify_whole(pool)
