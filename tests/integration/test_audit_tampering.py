"""Rewriting the audit trail with full database access, and `ssogw audit verify` finding it.

Each test runs on a database of its own (a copy of a freshly migrated one, on the session's
primary), never the shared one: it writes 25 records through a wired gateway, seals the chain
at seq 10 and at seq 20 (the last 5 records stay unsealed), then tampers as someone with
database access (a superuser connection) or with the checkpoint files would, and checks that
verify names the first bad sequence. The checkpoints verify trusts are the files outside the
database and the public key, never the database's own copies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.chain import GENESIS_HASH, AuditRow, chain_hash
from app.audit.records import AuditRecord, VerifyResult
from app.audit.seals.checkpoint import Checkpoint
from app.audit.seals.checkpoint_dir import file_name
from app.audit.seals.seal_key import SealKey, public_key_file
from app.audit.seals.sealer import SealRefused
from app.cli import main as cli
from app.cli.audit import EXIT_BROKEN
from app.db.local_pair import LocalPair, PairRecord
from app.main import Gateway, build_gateway, start_gateway, stop_gateway
from app.settings import Settings
from tests.support.clock import PinnedClock
from tests.support.scratch_db import copy_of, migrated_template

pytestmark = pytest.mark.db

ROWS = """
SELECT seq, at, principal_kind, principal_id, principal_name, operator, terminal,
       host(source_ip) AS source_ip, protocol, operation, national_id, name_returned,
       outcome, request_id, detail::text AS detail, prev_hash, hash
FROM audit_log WHERE seq >= $1 ORDER BY seq
"""


@pytest.fixture(scope="module")
async def template(pg_pair: tuple[LocalPair, PairRecord]) -> AsyncIterator[PairRecord]:
    async with migrated_template(pg_pair[1], "ssogw_tamper") as made:
        yield made


@pytest.fixture
async def scratch(template: PairRecord) -> AsyncIterator[PairRecord]:
    async with copy_of(template) as database:
        yield database


def settings_for(database: PairRecord, data_dir: Path, **more: Any) -> Settings:
    """A gateway's settings on ``database``; its seal key and checkpoints under ``data_dir``
    (shared by the instances of one test, as a fleet's are), its spool its own."""
    return Settings(**{
        "data_dir": data_dir, "primary_dsn": database.primary_dsn, "replica_dsns": [],
        "primary_pool_min": 1, "replica_pool_min": 1, "audit_seal_interval_s": 3600,
        "instance_id": f"tamper-{uuid.uuid4().hex[:8]}", **more,
    })  # fmt: skip


@asynccontextmanager
async def gateway_on(
    database: PairRecord, data_dir: Path, clock: PinnedClock, *, background: bool = False,
    **settings: Any,
) -> AsyncIterator[Gateway]:  # fmt: skip
    gw = build_gateway(settings_for(database, data_dir, **settings), clock=clock)
    try:
        await start_gateway(gw, background=background)
        yield gw
    finally:
        await stop_gateway(gw)


def inquiry(at: datetime, i: int) -> AuditRecord:
    """An inquiry's audit record, as a counter's call leaves it."""
    return AuditRecord(
        at=at, protocol="soap", operation="InquireContribution", outcome="ok",
        request_id=uuid.uuid4().hex, principal_kind="partner", principal_id=7,
        principal_name="counter-service", source_ip="10.1.2.3", national_id="3100600445635",
        name_returned="นาย สมชาย ใจดี", detail={"i": i, "rate": 1.5},
    )  # fmt: skip


async def write(gw: Gateway, clock: PinnedClock, n: int) -> None:
    await asyncio.gather(*(gw.audit.record(inquiry(clock(), i)) for i in range(n)))


@dataclass
class Sealed:
    """A chain of 25 records sealed at 10 and 20, the gateway on it, and an attacker."""

    gw: Gateway
    attacker: asyncpg.Connection
    data_dir: Path
    checkpoints: list[Checkpoint]

    @property
    def seal_dir(self) -> Path:
        return self.data_dir / "audit-seals"

    async def verify(self) -> VerifyResult:
        return await self.gw.audit_trail.verify()

    async def first_bad(self) -> tuple[int, str]:
        result = await self.verify()
        assert not result.ok and result.first_broken is not None, result
        return result.first_broken.seq, result.first_broken.reason


@pytest.fixture
async def sealed(scratch: PairRecord, tmp_path: Path, clock: PinnedClock) -> AsyncIterator[Sealed]:
    async with gateway_on(scratch, tmp_path, clock) as gw:
        made = []
        for n in (10, 10, 5):
            await write(gw, clock, n)
            if len(made) < 2:
                checkpoint = await gw.sealer.seal()
                assert checkpoint is not None
                made.append(checkpoint)
        attacker = await asyncpg.connect(scratch.owner_dsn)  # someone with database access
        try:
            state = Sealed(gw, attacker, tmp_path, made)
            result = await state.verify()
            assert result.ok, result.first_broken
            assert (result.checkpoints, result.sealed_seq, result.head_seq) == (2, 20, 25)
            assert [(c.seq, c.number) for c in made] == [(10, 1), (20, 2)]
            yield state
        finally:
            await attacker.close()


async def move_head(attacker: asyncpg.Connection, seq: int) -> None:
    head = GENESIS_HASH if seq == 0 else await attacker.fetchval(
        "SELECT hash FROM audit_log WHERE seq = $1", seq)  # fmt: skip
    await attacker.execute("UPDATE audit_chain SET last_seq = $1, last_hash = $2", seq, head)


def stored_row(row: asyncpg.Record) -> AuditRow:
    fields = {f.name: row[f.name] for f in dataclasses.fields(AuditRow)}
    return AuditRow(**fields | {"detail": json.loads(row["detail"])})


async def rewrite_from(attacker: asyncpg.Connection, seq: int, name: str) -> None:
    """Edit record ``seq`` and recompute every later hash with the chain's own code."""
    rows = await attacker.fetch(ROWS, seq)
    prev = bytes(rows[0]["prev_hash"])
    for stored in rows:
        row = stored_row(stored)
        if stored["seq"] == seq:
            row = dataclasses.replace(row, name_returned=name)
        new_hash = chain_hash(prev, stored["seq"], row)
        await attacker.execute(
            "UPDATE audit_log SET name_returned = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
            stored["seq"], row.name_returned, prev, new_hash,
        )  # fmt: skip
        prev = new_hash
    await attacker.execute("UPDATE audit_chain SET last_hash = $1", prev)


# --- the rows -------------------------------------------------------------------------------
async def test_an_edited_record_is_named(sealed: Sealed) -> None:
    await sealed.attacker.execute("UPDATE audit_log SET outcome = 'client.already_paid' "
                                  "WHERE seq = 7")  # fmt: skip
    seq, reason = await sealed.first_bad()
    assert (seq, "edited" in reason) == (7, True)


async def test_a_record_removed_from_the_middle_is_named(sealed: Sealed) -> None:
    await sealed.attacker.execute("DELETE FROM audit_log WHERE seq = 12")
    assert await sealed.first_bad() == (12, "record(s) 12 missing: removed from the chain")


async def test_two_records_swapped_are_found_at_the_first(sealed: Sealed) -> None:
    await sealed.attacker.execute(
        "UPDATE audit_log SET seq = CASE seq WHEN 5 THEN 6 ELSE 5 END WHERE seq IN (5, 6)"
    )
    seq, _ = await sealed.first_bad()
    assert seq == 5


async def test_a_tail_cut_off_with_the_head_moved_back_is_found(sealed: Sealed) -> None:
    await sealed.attacker.execute("DELETE FROM audit_log WHERE seq > 15")
    await move_head(sealed.attacker, 15)
    seq, reason = await sealed.first_bad()
    assert seq == 16
    assert reason == (
        "records 16..20 missing: the chain ends at seq 15 but checkpoint 2 sealed seq 20"
    )


async def test_a_chain_emptied_and_reset_to_genesis_is_found(sealed: Sealed) -> None:
    await sealed.attacker.execute("DELETE FROM audit_log")
    await sealed.attacker.execute("DELETE FROM audit_seals")  # the database's copies too
    await move_head(sealed.attacker, 0)
    result = await sealed.verify()
    assert result.first_broken is not None and result.first_broken.seq == 1
    assert "reset to genesis" in result.first_broken.reason
    assert result.checkpoints == 2, "the files outside the database still verify"


async def test_a_range_rewritten_with_the_chains_own_code_is_found_by_its_seal(
    sealed: Sealed,
) -> None:
    await rewrite_from(sealed.attacker, 14, "นาง อื่น")
    result = await sealed.verify()
    assert result.first_broken is not None and result.broken == 1, "every link still holds"
    assert result.first_broken.seq == 11, "the records after the previous seal (seq 10)"
    assert result.first_broken.reason.startswith("records 11..20 were rewritten")
    # The attacker "fixes" the database's copy of the checkpoint too: it is not what is trusted.
    rewritten = await sealed.attacker.fetchval("SELECT hash FROM audit_log WHERE seq = 20")
    await sealed.attacker.execute(
        "UPDATE audit_seals SET head_hash = $1 WHERE checkpoint = 2", rewritten
    )
    again = await sealed.verify()
    assert again.first_broken is not None and again.first_broken.seq == 11
    assert again.broken == 2 and again.first_broken.reason.startswith("records 11..20 were")


# --- the checkpoints ------------------------------------------------------------------------
async def test_a_checkpoint_file_removed_is_found(sealed: Sealed) -> None:
    (sealed.seal_dir / file_name(2)).unlink()  # the last one: only the database's copy shows it
    assert await sealed.first_bad() == (
        11, "checkpoint 2 is in the database but missing from the store"
    )  # fmt: skip
    (sealed.seal_dir / file_name(1)).unlink()
    seq, reason = await sealed.first_bad()
    assert (seq, reason) == (1, "checkpoint 1 is in the database but missing from the store")


async def test_a_gap_in_the_checkpoint_files_is_found_without_the_database(
    sealed: Sealed, clock: PinnedClock
) -> None:
    await write(sealed.gw, clock, 3)
    assert (await sealed.gw.sealer.seal()) is not None  # checkpoint 3, at seq 28
    (sealed.seal_dir / file_name(2)).unlink()
    await sealed.attacker.execute("DELETE FROM audit_seals")
    assert await sealed.first_bad() == (11, "checkpoint(s) 2 missing from the checkpoint store")


@pytest.mark.parametrize("forgery", ["altered", "other key"])
async def test_a_forged_checkpoint_file_is_found(sealed: Sealed, forgery: str) -> None:
    path = sealed.seal_dir / file_name(2)
    document: dict[str, Any] = json.loads(path.read_text())
    if forgery == "altered":
        document["seq"] = 18
    else:
        cp = Checkpoint.from_document(document)
        other = SealKey(Ed25519PrivateKey.generate())
        forged = other.sign(
            number=2, seq=cp.seq, head_hash=cp.head_hash, sealed_at=cp.sealed_at,
            prev_digest=cp.prev_digest,
        )  # fmt: skip
        document = forged.document()
    path.write_text(json.dumps(document))
    seq, reason = await sealed.first_bad()
    assert seq == 11
    assert ("does not verify" if forgery == "altered" else "not a trusted public key") in reason


# --- sealing --------------------------------------------------------------------------------
async def test_nothing_new_is_not_sealed_again_and_a_head_moved_back_is_refused(
    sealed: Sealed,
) -> None:
    def rounds(outcome: str) -> float:
        return sealed.gw.metrics.registry.get_sample_value(
            "ssogw_audit_seals_total", {"outcome": outcome}
        ) or 0.0  # fmt: skip

    assert await sealed.gw.sealer.seal() is not None  # the 5 unsealed records
    assert await sealed.gw.sealer.seal() is None
    assert (rounds("sealed"), rounds("skipped")) == (3, 1)
    await sealed.attacker.execute("DELETE FROM audit_log WHERE seq > 22")
    await move_head(sealed.attacker, 22)
    with pytest.raises(SealRefused, match="not where checkpoint 3 sealed it"):
        await sealed.gw.sealer.seal()
    assert rounds("refused") == 1
    assert sorted(p.name for p in sealed.seal_dir.iterdir()) == [file_name(n) for n in (1, 2, 3)]


async def test_a_checkpoint_kept_but_lost_from_the_database_is_copied_back(
    sealed: Sealed, clock: PinnedClock
) -> None:
    # As when the transaction fails after the file was kept: the store is ahead of the table.
    await sealed.attacker.execute("DELETE FROM audit_seals WHERE checkpoint = 2")
    await write(sealed.gw, clock, 2)
    made = await sealed.gw.sealer.seal()
    assert made is not None and (made.number, made.seq) == (3, 27)
    copies = await sealed.attacker.fetch("SELECT checkpoint, seq FROM audit_seals ORDER BY 1")
    assert [tuple(r) for r in copies] == [(1, 10), (2, 20), (3, 27)]
    assert (await sealed.verify()).ok


async def test_instances_sharing_the_database_seal_one_line_of_checkpoints(
    scratch: PairRecord, tmp_path: Path, clock: PinnedClock
) -> None:
    async with (
        gateway_on(scratch, tmp_path, clock) as one,
        gateway_on(scratch, tmp_path, clock) as other,
    ):
        for round_ in range(6):
            await write(one if round_ % 2 else other, clock, 3)
            made = await asyncio.gather(one.sealer.seal(), other.sealer.seal())
            assert sum(cp is not None for cp in made) == 1, "one instance seals, one skips"
        result = await one.audit_trail.verify()
    assert result.ok, result.first_broken
    assert (result.checkpoints, result.sealed_seq) == (6, 18)
    names = sorted(p.name for p in (tmp_path / "audit-seals").iterdir())
    assert names == [file_name(n) for n in range(1, 7)]


async def test_a_serving_gateway_seals_what_it_wrote_when_it_stops(
    scratch: PairRecord, tmp_path: Path, clock: PinnedClock
) -> None:
    async with gateway_on(scratch, tmp_path, clock, background=True) as gw:
        key_file = tmp_path / "audit-seal-key"
        assert key_file.exists() and public_key_file(key_file).exists(), "made at start"
        await write(gw, clock, 4)
        assert not (tmp_path / "audit-seals").exists(), "nothing sealed before the cadence"
    checkpoint = json.loads((tmp_path / "audit-seals" / file_name(1)).read_text())
    assert (checkpoint["checkpoint"], checkpoint["seq"]) == (1, 4)


@pytest.mark.parametrize("content", [None, b"CHANGE-ME-placeholder-not-a-key"])
async def test_a_gateway_without_its_configured_seal_key_does_not_start(
    scratch: PairRecord, tmp_path: Path, clock: PinnedClock, content: bytes | None
) -> None:
    key_file = tmp_path / "secret" / "audit-seal-key"
    if content is not None:
        key_file.parent.mkdir()
        key_file.write_bytes(content)
    settings = settings_for(scratch, tmp_path).model_copy(update={"audit_seal_key_file": key_file})
    gw = build_gateway(settings, clock=clock)
    try:
        with pytest.raises(RuntimeError, match="SSOGW_AUDIT_SEAL_KEY_FILE"):
            await start_gateway(gw)
    finally:
        await stop_gateway(gw)
    assert key_file.exists() == (content is not None), "a configured key is never made"


# --- the command line -----------------------------------------------------------------------
def ssogw(monkeypatch: pytest.MonkeyPatch, database: PairRecord, data_dir: Path, *argv: str) -> int:
    monkeypatch.setenv("SSOGW_PRIMARY_DSN", database.primary_dsn)
    monkeypatch.setenv("SSOGW_DATA_DIR", str(data_dir))
    return cli.main(list(argv))


async def test_verify_seal_export_and_offline_verify_from_the_command_line(
    sealed: Sealed, scratch: PairRecord, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], cli_time: PinnedClock,
) -> None:  # fmt: skip
    async def run(*argv: str) -> tuple[int, Any]:
        code = await asyncio.to_thread(ssogw, monkeypatch, scratch, sealed.data_dir, *argv)
        out = capsys.readouterr().out
        return code, json.loads(out) if "--json" in argv else out

    code, key = await run("audit", "seal-key", "--json")
    assert code == 0 and key["key_id"] == sealed.checkpoints[0].key_id
    public = sealed.data_dir / "published.pub"
    public.write_text(key["public_key"])
    code, sealed_now = await run("audit", "seal", "--json")
    assert code == 0 and sealed_now["checkpoint"]["seq"] == 25
    code, report = await run("audit", "verify", "--json")
    assert code == 0 and report["ok"] and report["sealed_seq"] == 25
    export = sealed.data_dir / "audit-export.jsonl"
    code, written = await run("audit", "export", "--out", str(export), "--json")
    assert code == 0 and (written["records"], written["checkpoints"]) == (25, 3)
    offline = ("audit", "verify", "--from-export", str(export), "--public-key", str(public))
    code, report = await run(*offline, "--json")
    assert code == 0 and report["checked"] == 25 and report["checkpoints"] == 3

    await rewrite_from(sealed.attacker, 3, "forged")
    code, report = await run("audit", "verify", "--json")
    assert code == EXIT_BROKEN and report["first_broken"]["seq"] == 1
    code, text = await run("audit", "verify")
    assert code == EXIT_BROKEN and "chain BROKEN: first broken record seq 1" in text
    code, _ = await run("audit", "export", "--out", str(export))
    code, report = await run(*offline, "--json")
    assert code == EXIT_BROKEN and report["first_broken"]["reason"].startswith("records 1..10")
    # The export itself was recorded, naming the operator.
    exports = await sealed.attacker.fetchval(
        "SELECT count(*) FROM audit_log WHERE operation = 'AuditExport'")  # fmt: skip
    assert exports == 2
