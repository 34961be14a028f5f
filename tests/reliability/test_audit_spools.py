"""Two gateway processes given the same audit spool directory, the primary down (stopped in
pg_ctl's immediate mode): each commits the records of the inquiries it answers to a spool of
its own (its instance id in the path, the directory 0700, the file 0600), and once the primary
is back every one of those records is on the chain exactly once and the chain verifies. A third
process with a running one's instance id, and one that cannot write its spool directory, refuse
to start and say why."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.audit.spool.files import REPLAYING_FILE, SPOOL_FILE
from app.db.local_pair import LocalPair, PairRecord
from tests.reliability.conftest import (
    SECRET_KEY,
    Launcher,
    NewPeople,
    ensure_pair_up,
    replica_caught_up,
)
from tests.reliability.figures import FIGURES
from tests.reliability.gateway_process import GatewayProcess, gateway_env
from tests.reliability.ledger_check import all_linked, chain_verified
from tests.reliability.observe import readiness, wait_until
from tests.reliability.soap_wire import Partner
from tests.reliability.workload import Workload

pytestmark = [pytest.mark.reliability, pytest.mark.serial]

NAMES = ("spool-a", "spool-b")
OUTAGE_S = 2.0


@dataclass
class Spooled:
    """What each instance answered while the primary was down, and what its spool held."""

    answered: dict[str, list[str]]  # instance id -> request ids of inquiries answered ok
    files: dict[str, str]  # instance id -> its spool file's text while the primary was down
    modes: dict[str, tuple[int, int]]  # instance id -> (directory mode, file mode)
    shared: Path


@pytest.fixture(scope="module")
def shared_spool_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("one-spool-dir-for-both")


@pytest.fixture(scope="module")
def gateways(launcher: Launcher, shared_spool_dir: Path) -> Iterator[list[GatewayProcess]]:
    """Two instances mis-configured with one SSOGW_AUDIT_SPOOL_DIR (ids: their names)."""
    started = [launcher.start(name, audit_spool_dir=str(shared_spool_dir)) for name in NAMES]
    try:
        yield started
    finally:
        for process in started:
            process.kill()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
async def spooled(
    gateways: list[GatewayProcess],
    shared_spool_dir: Path,
    rel_pair: tuple[LocalPair, PairRecord],
    partner: Partner,
    new_people: NewPeople,
) -> AsyncIterator[Spooled]:
    pair, record = rel_pair
    members = await new_people(8)
    await replica_caught_up(record)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=g.base_url, timeout=10))
            for g in gateways
        ]
        loads = [
            Workload(client, partner, members, inquirers=3, pause_s=0.02, max_seconds=60)
            for client in clients
        ]
        try:
            for load in loads:
                await stack.enter_async_context(load)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(pair.stop, "primary", mode="immediate")
            down_at = time.monotonic()
            for client in clients:

                async def spooling(client: httpx.AsyncClient = client) -> bool:
                    status, body = await readiness(client)
                    return status == 200 and body["auditPath"] == "spool"

                await wait_until(spooling, timeout_s=5, what="ready, spooling without the primary")
            await asyncio.sleep(OUTAGE_S)
            looked_at = time.monotonic()  # what was answered by now was spooled by now
            files, modes = {}, {}
            for name in NAMES:
                spool = shared_spool_dir / name / SPOOL_FILE
                # Records spooled first may wait in the file of a replay the primary refused.
                aside = spool.with_name(REPLAYING_FILE)
                held = aside.read_text(encoding="utf-8") if aside.exists() else ""
                files[name] = held + spool.read_text(encoding="utf-8")
                modes[name] = (mode(spool.parent), mode(spool))
            await asyncio.to_thread(pair.start, "primary")
        finally:
            await ensure_pair_up(pair, record)
    answered = {
        name: [
            c.request_id
            for c in load.of("inquire", since=down_at, until=looked_at)
            if c.ok and c.started + c.seconds < looked_at
        ]
        for name, load in zip(NAMES, loads, strict=True)
    }
    yield Spooled(answered, files, modes, shared_spool_dir)


def test_each_instance_spools_privately_in_a_directory_of_its_own(spooled: Spooled) -> None:
    assert sorted(p.name for p in spooled.shared.iterdir()) == sorted(NAMES)
    for name in NAMES:
        assert spooled.answered[name], f"{name} answered no inquiry without the primary"
        assert spooled.modes[name] == (0o700, 0o600), oct(spooled.modes[name][1])
        mine = spooled.files[name]
        assert all(rid in mine for rid in spooled.answered[name]), "answered, not spooled"
        other = next(n for n in NAMES if n != name)
        assert not any(rid in mine for rid in spooled.answered[other]), "one spool each"


async def test_after_the_outage_every_spooled_record_is_on_the_chain_once(
    spooled: Spooled, admin_pool: asyncpg.Pool
) -> None:
    answered = [rid for ids in spooled.answered.values() for rid in ids]

    async def counts() -> Counter[str]:
        rows = await admin_pool.fetch(
            "SELECT request_id FROM audit_log WHERE request_id = ANY($1)", answered
        )
        return Counter(r["request_id"] for r in rows)

    async def all_there() -> bool:
        return set(await counts()) == set(answered)

    await wait_until(all_there, timeout_s=20, what="the spooled records on the chain")
    await asyncio.sleep(2.5)  # both instances have looked at their spools again since
    found = await counts()
    assert found == dict.fromkeys(answered, 1), "a spooled record is on the chain twice"
    for name in NAMES:
        assert not (spooled.shared / name / SPOOL_FILE).exists()
    await all_linked(admin_pool)
    verified = await chain_verified(admin_pool)
    assert verified.ok, verified.first_broken
    FIGURES.note(
        "two instances, one spool directory given, primary down "
        f"{OUTAGE_S:.0f} s: spooled {', '.join(f'{n} {len(spooled.answered[n])}' for n in NAMES)}"
        f" inquiry records, each on the chain once after; chain of {verified.checked} verifies"
    )


def test_a_second_instance_with_a_running_ones_id_refuses_to_start(
    gateways: list[GatewayProcess], launcher: Launcher, shared_spool_dir: Path
) -> None:
    with pytest.raises(RuntimeError) as refused:
        launcher.start("twin", instance_id=NAMES[0], audit_spool_dir=str(shared_spool_dir))
    assert f"{shared_spool_dir / NAMES[0]} is in use by another running instance" in str(
        refused.value
    )
    assert all(g.running() for g in gateways)


@contextmanager
def unwritable_directory() -> Iterator[Path]:
    """A directory a gateway of this user cannot create its spool in: read-only for an
    ordinary user; immutable (chattr +i) for root, who may write in any other; where the file
    system has no immutable flag, a "directory" that is a regular file."""
    base = Path(tempfile.mkdtemp(prefix="ssogw-spool-"))
    immutable = False
    try:
        if os.geteuid() != 0:
            os.chmod(base, 0o500)
            yield base
        elif subprocess.run(["chattr", "+i", str(base)], capture_output=True).returncode == 0:
            immutable = True
            yield base
        else:
            (base / "a-file").write_text("not a directory\n")
            yield base / "a-file"
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(base)], check=True)
        os.chmod(base, 0o700)
        shutil.rmtree(base)


def test_a_gateway_that_cannot_write_its_spool_directory_refuses_to_start(
    rel_record: PairRecord, tmp_path: Path
) -> None:
    with unwritable_directory() as base:
        env = gateway_env(rel_record, secret_key=SECRET_KEY, data_dir=tmp_path,
                          audit_spool_dir=str(base), instance_id="no-room")  # fmt: skip
        process = GatewayProcess(env=env, logs=tmp_path / "logs", name="no-room")
        with pytest.raises(RuntimeError, match="exited at start") as refused:
            process.start()
        assert f"the audit spool directory {base / 'no-room'} is not writable" in str(refused.value)
        assert not (base / "no-room").exists()
