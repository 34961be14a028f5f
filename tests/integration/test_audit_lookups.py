"""Audit lookups and `ssogw audit` on the real primary: exact records, order, pages, the plan."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app.audit.queries import EARLIEST, LATEST, LOOKUPS, AuditQueries
from app.audit.records import UNLINKED_SEQ, AuditRecord, LookupRecord, Requester
from app.audit.seals.checkpoint_dir import CheckpointDir
from app.audit.seals.seal_key import configured_keys
from app.audit.service import AuditService
from app.audit.writer import AuditWriter
from app.cli import main as cli
from app.cli.audit import EXIT_BROKEN
from app.db.pools import PoolConfig, open_pool
from app.domain.national_id import generate_national_id
from app.errors import InvalidNationalId
from app.settings import Settings
from tests.support.clock import business_clock

pytestmark = pytest.mark.db


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    assert settings.primary_dsn
    opened = await open_pool(
        settings.primary_dsn, PoolConfig(1, 4, 3.0, 30.0), read_only=False, name="test-audit"
    )
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def writer(pool: asyncpg.Pool) -> AsyncIterator[AuditWriter]:
    started = AuditWriter(pool_provider=lambda: pool, max_batch=500, max_wait_ms=2)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
def service(pool: asyncpg.Pool, writer: AuditWriter, settings: Settings) -> AuditService:
    return AuditService(
        queries=AuditQueries(pool_provider=lambda: pool),
        checkpoints=CheckpointDir(settings.seal_dir()),  # the session's, as its gateways'
        keys=lambda: configured_keys(settings.seal_key_file(), []),
        sink=writer,
        clock=business_clock(),
    )


@pytest.fixture
def rng() -> random.Random:
    return random.Random(uuid.uuid4().int)


def record(national_id: str, at: datetime, name: str = "นาย สมชาย ใจดี") -> AuditRecord:
    return AuditRecord(
        at=at,
        protocol="soap",
        operation="InquireContribution",
        outcome="ok",
        request_id=uuid.uuid4().hex,
        principal_kind="partner",
        principal_id=3,
        principal_name="counter-service",
        operator="op-17",
        terminal="T-04",
        source_ip="10.9.8.7",
        national_id=national_id,
        name_returned=name,
    )


async def history(writer: AuditWriter, rng: random.Random) -> tuple[str, datetime, datetime]:
    """Records of one ID over four months (several partitions), with a neighbour's between."""
    nid, neighbour = generate_national_id(rng), generate_national_id(rng)
    now = datetime.now(UTC).replace(microsecond=0)
    for day in range(0, 120, 4):
        at = now - timedelta(days=day, minutes=rng.randrange(600))
        await writer.record(record(nid, at, name=f"name seen on day {day}"))
        await writer.record(record(neighbour, at))
    tie = now - timedelta(days=30, hours=1)  # two calls in the same microsecond
    await asyncio.gather(writer.record(record(nid, tie)), writer.record(record(nid, tie)))
    return nid, now - timedelta(days=90), now - timedelta(days=10)


async def test_lookups_return_exactly_that_id_in_the_range_newest_first_in_pages(
    service: AuditService, pool: asyncpg.Pool, writer: AuditWriter, rng: random.Random
) -> None:
    nid, start, end = await history(writer, rng)
    expected = await pool.fetch(
        "SELECT seq, at FROM audit_log WHERE national_id = $1 AND at >= $2 AND at < $3"
        " ORDER BY at DESC, seq DESC",
        nid, start, end,
    )  # fmt: skip
    seen: list[LookupRecord] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await service.lookups(nid, start, end, limit=4, cursor=cursor)
        seen.extend(page.records)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(expected) >= 20
    assert [(r.seq, r.at) for r in seen] == [(r["seq"], r["at"]) for r in expected]
    assert pages == -(-len(expected) // 4)
    assert {r.national_id for r in seen} == {nid}
    assert all(start <= r.at < end for r in seen)
    first = seen[0]
    assert (first.principal_name, first.operator, first.terminal) == (
        "counter-service",
        "op-17",
        "T-04",
    )
    assert (first.source_ip, first.protocol, first.outcome) == ("10.9.8.7", "soap", "ok")


async def test_an_audit_lookup_is_itself_recorded(
    service: AuditService, writer: AuditWriter, rng: random.Random
) -> None:
    nid = generate_national_id(rng)
    await writer.record(record(nid, business_clock()() - timedelta(minutes=1)))
    asker = Requester(
        protocol="cli", principal_kind="operator", request_id="r-1", operator="auditor"
    )
    first = await service.lookups(nid, requester=asker)
    assert [r.operation for r in first.records] == ["InquireContribution"]
    again = await service.lookups(nid)
    assert [r.operation for r in again.records] == ["AuditLookups", "InquireContribution"]
    assert again.records[0].operator == "auditor"


async def test_a_bad_national_id_is_refused_before_any_query(service: AuditService) -> None:
    with pytest.raises(InvalidNationalId):
        await service.lookups("1234567890123")


async def test_the_lookup_reads_the_id_index_of_every_partition(
    pool: asyncpg.Pool, rng: random.Random
) -> None:
    # A test database is too small for the planner to prefer any index on its own; with
    # sequential scans priced out, the plan shows that the ID index fits the query's shape:
    # in every partition an index condition on the ID, the range and the page cursor, read
    # backwards, and no sort of the chain's rows (only the few records still waiting for their
    # chain link, read by their own ID index, may be sorted in).
    # Unbounded, as `audit lookups` without --from/--to asks: a bounded range that the
    # statistics say holds none of a partition's rows would rightly be read by its primary key.
    nid = generate_national_id(rng)
    args = (nid, EARLIEST, LATEST, LATEST, UNLINKED_SEQ, 50, UNLINKED_SEQ)
    async with pool.acquire() as conn, conn.transaction():
        # Incremental sorts priced out too: on a test-sized chain a Merge Append by time alone,
        # with the few rows of equal time sorted after it, prices within a hair of the ID
        # index's own order, and was planned in some full runs (session 11), never at scale.
        await conn.execute(
            "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off;"
            " SET LOCAL enable_incremental_sort = off"
        )
        plan = json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON) " + LOOKUPS, *args))
    scans: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []

    def relations(node: dict[str, Any]) -> set[str]:
        found = {str(node.get("Relation Name", ""))}
        for child in node.get("Plans", []):
            found |= relations(child)
        return found

    def walk(node: dict[str, Any]) -> None:
        name = str(node.get("Relation Name", ""))
        if name.startswith("audit_log"):
            scans.append(node)
        if name == "audit_unlinked":
            waiting.append(node)
        if "Sort" in node["Node Type"]:
            below = relations(node)
            assert not any(r.startswith("audit_log") for r in below), "chain rows unsorted"
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    partitions = await pool.fetchval(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass"
    )
    assert len(scans) == partitions
    for scan in scans:
        assert scan["Node Type"] == "Index Scan", scan
        assert scan["Index Name"].endswith("_national_id_at_seq_idx"), scan["Index Name"]
        assert scan["Scan Direction"] == "Backward"
        assert "national_id =" in scan["Index Cond"] and "ROW(at, seq) <" in scan["Index Cond"]
    assert [w["Index Name"] for w in waiting] == ["audit_unlinked_national_id_at"]


# --- the command line ------------------------------------------------------------------------
def run_cli(monkeypatch: pytest.MonkeyPatch, dsn: str, *argv: str) -> int:
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", dsn)
    return cli.main(list(argv))


async def test_cli_lookups_as_csv_and_json(
    writer: AuditWriter, settings: Settings, rng: random.Random,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    nid = generate_national_id(rng)
    now = datetime.now(UTC)
    for minutes in (50, 40, 30):
        await writer.record(record(nid, now - timedelta(minutes=minutes), name=f"seen {minutes}"))
    dsn = settings.primary_dsn or ""
    since = (now - timedelta(minutes=45)).isoformat()
    code = await asyncio.to_thread(
        run_cli,
        monkeypatch,
        dsn,
        "audit",
        "lookups",
        "--national-id",
        nid,
        "--from",
        since,
        "--csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["name_returned"] for r in rows] == ["seen 30", "seen 40"]
    assert rows[0]["national_id"] == nid and rows[0]["time"].endswith("+07:00")

    code = await asyncio.to_thread(
        run_cli,
        monkeypatch,
        dsn,
        "audit",
        "lookups",
        "--national-id",
        nid,
        "--json",
        "--limit",
        "1",
    )
    assert code == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    # the two CLI lookups are on record now, the newest first
    assert [r["operation"] for r in document["records"]] == ["AuditLookups"]
    assert document["next_cursor"] and "--cursor" in captured.err


def test_cli_refuses_a_bad_id_without_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli(monkeypatch, "postgresql://nobody@127.0.0.1:1/none",
                   "audit", "lookups", "--national-id", "1234567890123")  # fmt: skip
    assert code == 2
    assert "client.invalid_national_id" in capsys.readouterr().err


async def test_cli_verify_names_the_broken_record_and_exits_non_zero(
    writer: AuditWriter, pool: asyncpg.Pool, owner_pool: asyncpg.Pool, settings: Settings,
    rng: random.Random, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    start = datetime(1960, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(24 * 365 * 9))
    nid = generate_national_id(rng)
    await asyncio.gather(
        *(writer.record(record(nid, start + timedelta(seconds=i))) for i in range(5))
    )
    seqs = [r["seq"] for r in await pool.fetch(
        "SELECT seq FROM audit_log WHERE national_id = $1 ORDER BY seq", nid)]  # fmt: skip
    window = ("--from", start.isoformat(), "--to", (start + timedelta(hours=1)).isoformat())
    dsn = settings.primary_dsn or ""
    # The session's checkpoints and seal key are kept in its data directory.
    monkeypatch.setenv("SSOGW_DATA_DIR", str(settings.data_dir))
    # Sealed first, as serving instances do at their cadence (else: exit 4, no checkpoint).
    assert await asyncio.to_thread(run_cli, monkeypatch, dsn, "audit", "seal") == 0
    capsys.readouterr()
    assert await asyncio.to_thread(run_cli, monkeypatch, dsn, "audit", "verify", *window) == 0
    assert "chain intact: 5 record(s)" in capsys.readouterr().out

    # Someone with the owner's rights edits a record; the service role could not.
    await owner_pool.execute(
        "UPDATE audit_log SET outcome = 'client.already_paid' WHERE seq = $1", seqs[3]
    )
    try:
        code = await asyncio.to_thread(
            run_cli, monkeypatch, dsn, "audit", "verify", *window, "--json"
        )
        report = json.loads(capsys.readouterr().out)
    finally:
        await owner_pool.execute("UPDATE audit_log SET outcome = 'ok' WHERE seq = $1", seqs[3])
    assert code == EXIT_BROKEN
    assert report["ok"] is False and report["checked"] == 5
    assert report["first_broken"]["seq"] == seqs[3]
    assert "edited" in report["first_broken"]["reason"]
