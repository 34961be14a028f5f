"""Backups and point-in-time restore of the local pair, on a primary of this module's own.

The session's shared pair does not archive WAL and is never stopped or restored here: this
module starts a small primary with archiving (no standby), migrated like any other, with a
gateway on it that takes real confirms. ``ssogw db backup|backups|prune|restore`` are driven
in process, as an operator types them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.cli.main import main
from app.db.backup.catalogue import list_backups
from app.db.backup.restore import stop_restored
from app.db.backup.wal_archive import summarise, switch_and_wait
from app.db.local_pair import SERVICE_ROLE, LocalPair, PairRecord
from app.db.migrator import migrate
from app.domain.calendar import BANGKOK
from app.main import Gateway, build_gateway, start_gateway, stop_gateway
from app.settings import Settings
from tests.support.clock import PinnedClock
from tests.support.counter_calls import caller, confirm_request, s40_person, today
from tests.support.wsse import digest_token

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def archiving_pair() -> Iterator[tuple[LocalPair, PairRecord]]:
    """A migrated primary of this module's own that archives its WAL (fsync off, no standby,
    1 MB WAL segments: each switch, backup and restore then copies 15 MB less)."""
    root = Path(tempfile.mkdtemp(prefix="ssogw-backup-"))
    root.chmod(0o755)
    pair = LocalPair(root, durable=False, standby=False, wal_segment_mb=1)
    try:
        record = pair.up()
        asyncio.run(_migrate(record.owner_dsn))
        yield pair, record
    finally:
        try:
            for restored in (root / "restores").glob("*"):  # a test that failed half-way
                stop_restored(pair, restored)
            pair.down()
        finally:
            shutil.rmtree(root, ignore_errors=True)


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, service_role=SERVICE_ROLE)
    finally:
        await conn.close()


@pytest.fixture
async def gateway_on_it(
    archiving_pair: tuple[LocalPair, PairRecord], clock: PinnedClock
) -> AsyncIterator[Gateway]:
    pair, record = archiving_pair
    settings = Settings(
        data_dir=pair.root / "gateway", primary_dsn=record.primary_dsn, replica_dsns=[],
        owner_dsn=record.owner_dsn, primary_pool_min=1, replica_pool_min=1,
        instance_id=f"backup-{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    gw = build_gateway(settings, clock=clock)
    await start_gateway(gw, background=False)
    try:
        yield gw
    finally:
        await stop_gateway(gw)


def ssogw(
    pair: LocalPair, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    *argv: str,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """Run `ssogw ARGV --json` on the module's pair; its exit status and JSON document."""
    monkeypatch.setenv("SSOGW_DATA_DIR", str(pair.root))
    capsys.readouterr()
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else {"stderr": err}


async def paid_months(dsn: str, nid: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT to_char(month, 'YYYY-MM') AS month FROM paid_months"
            " WHERE national_id = $1 ORDER BY month",
            nid,
        )
        return [row["month"] for row in rows]
    finally:
        await conn.close()


async def test_a_restore_to_a_moment_between_two_payments_finds_exactly_the_first(
    archiving_pair: tuple[LocalPair, PairRecord],
    gateway_on_it: Gateway,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pair, record = archiving_pair
    gw = gateway_on_it
    issued = await gw.registry.add_partner(name=f"p-{uuid.uuid4().hex[:8]}", cidrs=["127.0.0.0/8"])
    nid = await s40_person(gw)
    first, second = today(), today().plus(1)
    code, taken = ssogw(pair, capsys, monkeypatch, "db", "backup")
    assert code == 0 and taken["backup"]["verified"] is True

    async def pay(month: str) -> None:
        await gw.counter.confirm(
            caller=caller(),
            credentials=digest_token(issued.username, issued.password),
            request=confirm_request(nid, [month], 7000),
        )

    await pay(str(first))
    # T on the server's clock, the one commit timestamps are written on; the business clock is
    # pinned and plays no part in where recovery stops.
    moment: datetime = await gw.db.primary.fetchval("SELECT clock_timestamp()")
    await asyncio.sleep(0.05)
    await pay(str(second))
    assert await paid_months(record.primary_dsn, nid) == [str(first), str(second)]
    await gw.db.primary.fetchval("SELECT 1")  # both committed before the archive is closed
    pair.query("SELECT pg_switch_wal()")

    # Without an offset, TIME is Asia/Bangkok time, as everywhere in the contract.
    bangkok = moment.astimezone(BANGKOK).replace(tzinfo=None).isoformat()
    code, restored = ssogw(pair, capsys, monkeypatch, "db", "restore", "--to", bangkok)
    assert code == 0, restored
    data_dir = Path(str(restored["dataDir"]))
    try:
        assert data_dir.parent == pair.root / "restores" and restored["port"] != record.primary_port
        assert await paid_months(str(restored["dsn"]), nid) == [str(first)]
        reached = datetime.fromisoformat(str(restored["lastTransactionAt"]))
        assert reached <= moment and restored["timeline"] == 2
        assert "recovery stopping before commit" in str(restored["recoveryStop"])
        # The running primary was not touched: it still has both.
        assert await paid_months(record.primary_dsn, nid) == [str(first), str(second)]
    finally:
        stop_restored(pair, data_dir)


def test_a_restore_never_goes_into_a_directory_in_use(
    archiving_pair: tuple[LocalPair, PairRecord],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pair, _ = archiving_pair
    if not list_backups(pair.root):
        ssogw(pair, capsys, monkeypatch, "db", "backup")
    for into in (pair.primary_dir, pair.root / "logs"):
        code, refused = ssogw(pair, capsys, monkeypatch, "db", "restore", "--to", "latest",
                              "--into", str(into))  # fmt: skip
        assert code == 1 and "restore into a new" in str(refused["stderr"])
    assert pair.is_running("primary")
    code, _ = ssogw(pair, capsys, monkeypatch, "db", "restore", "--to", "yesterday")
    assert code == 2  # client.invalid_input


def test_retention_keeps_the_newest_backups_and_the_wal_they_need(
    archiving_pair: tuple[LocalPair, PairRecord],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pair, _ = archiving_pair
    for _ in range(2):
        assert ssogw(pair, capsys, monkeypatch, "db", "backup")[0] == 0
    before = list_backups(pair.root)
    assert len(before) >= 2
    newest = before[-1]
    code, listed = ssogw(pair, capsys, monkeypatch, "db", "backups")
    assert [b["id"] for b in listed["backups"]] == [b.id for b in before]
    archived = summarise(pair.archive_dir)
    assert archived.oldest is not None and archived.oldest[8:] < newest.start_wal[8:]

    code, pruned = ssogw(pair, capsys, monkeypatch, "db", "prune", "--keep", "1")
    assert code == 0 and pruned["keptBackups"] == [newest.id]
    assert [b.id for b in list_backups(pair.root)] == [newest.id]
    # Exact names: two backups in one second are X and X-2, so a prefix would not do.
    pruned_ids = {b.id for b in before[:-1]}
    left = {p.name.removesuffix(".part") for p in (pair.root / "backups" / "base").iterdir()}
    assert not left & pruned_ids
    after = summarise(pair.archive_dir)
    assert after.oldest == newest.start_wal and after.newest == archived.newest
    # What is left restores: the newest backup and the WAL after it reach 'latest'.
    code, restored = ssogw(pair, capsys, monkeypatch, "db", "restore", "--to", "latest")
    assert code == 0 and restored["backup"] == newest.id
    stop_restored(pair, Path(str(restored["dataDir"])))


def test_a_pair_made_before_archiving_gets_it_on_its_next_up() -> None:
    root = Path(tempfile.mkdtemp(prefix="ssogw-older-"))
    root.chmod(0o755)
    try:
        LocalPair(root, durable=False, standby=False, archive=False, wal_segment_mb=1).up()
        older = LocalPair(root, durable=False, standby=False)
        assert older.query("SHOW archive_mode").strip() == "off"
        older.up()  # as `ssogw db up` does: restarts the running primary with archiving on
        assert older.query("SHOW archive_mode").strip() == "on"
        segment = switch_and_wait(older, timeout_s=20)
        assert (older.archive_dir / segment).stat().st_size == 2**20  # whole
    finally:
        LocalPair(root).down()
        shutil.rmtree(root, ignore_errors=True)
