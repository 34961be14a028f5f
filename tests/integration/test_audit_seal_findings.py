"""What verify says about the seals themselves: a chain with records and no checkpoint at all is
not "intact" (it says "no checkpoint", exit 4, and so does the export); a forged copy of a
checkpoint in the database, or a file planted in the checkpoint directory (unsigned, or signed
by a foreign key), is reported as forged and stops no one from sealing. Each test runs on a
database of its own (tests/integration/test_audit_tampering.py)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.seals.checkpoint_dir import file_name
from app.audit.seals.seal_key import SealKey
from app.cli.audit import EXIT_UNSEALED
from app.db.local_pair import PairRecord
from tests.integration.test_audit_tampering import (  # noqa: F401 (fixtures)
    Sealed,
    gateway_on,
    scratch,
    sealed,
    ssogw,
    template,
    write,
)
from tests.support.clock import PinnedClock

pytestmark = pytest.mark.db

STRANGER = SealKey(Ed25519PrivateKey.generate())  # a key verify does not trust


# --- no checkpoint at all ---------------------------------------------------------------------
@pytest.mark.usefixtures("cli_time")
async def test_records_and_no_checkpoint_are_not_intact_on_the_command_line_and_in_the_export(
    scratch: PairRecord,  # noqa: F811
    tmp_path: Path, clock: PinnedClock, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    async def run(*argv: str) -> tuple[int, Any, str]:
        code = await asyncio.to_thread(ssogw, monkeypatch, scratch, tmp_path, *argv)
        out, err = capsys.readouterr()
        assert out or code == 0, err
        return code, json.loads(out) if "--json" in argv else out, err

    code, text, _ = await run("audit", "verify")
    assert (code, text.splitlines()[0]) == (0, "chain intact: 0 record(s) checked"), "empty"
    async with gateway_on(scratch, tmp_path, clock) as gw:
        await write(gw, clock, 5)
        result = await gw.audit_trail.verify()
    assert (result.ok, result.first_broken, result.first_unsealed) == (False, None, 1)

    code, text, _ = await run("audit", "verify")
    assert code == EXIT_UNSEALED
    assert text.startswith("NO CHECKPOINT: first unsealed record seq 1: no signed checkpoint")
    assert "intact" not in text
    code, report, _ = await run("audit", "verify", "--json")
    assert code == EXIT_UNSEALED and report["ok"] is False
    assert (report["first_broken"], report["no_checkpoint"]) == (None, {"first_unsealed_seq": 1})
    window = (clock() - timedelta(days=1)).isoformat(), (clock() + timedelta(days=1)).isoformat()
    code, report, _ = await run("audit", "verify", "--from", window[0], "--to", window[1],
                                "--json")  # fmt: skip
    assert code == EXIT_UNSEALED and report["no_checkpoint"] == {"first_unsealed_seq": 1}

    export = tmp_path / "audit-export.jsonl"
    code, written, err = await run("audit", "export", "--out", str(export), "--json")
    assert code == 0 and (written["records"], written["checkpoints"]) == (5, 0)
    assert written["no_checkpoint"] is True and err.startswith("NO CHECKPOINT: the export holds")
    public = tmp_path / "published.pub"
    code, _, _ = await run("audit", "seal-key", "--out", str(public))  # made on first use
    code, report, _ = await run("audit", "verify", "--from-export", str(export),
                                "--public-key", str(public), "--json")  # fmt: skip
    assert code == EXIT_UNSEALED and report["no_checkpoint"] == {"first_unsealed_seq": 1}

    code, _, _ = await run("audit", "seal")
    code, text, _ = await run("audit", "verify")
    assert code == 0 and text.startswith("chain intact: 6 record(s) checked"), text  # + export


# --- forged checkpoints -----------------------------------------------------------------------
async def forged_copy_by_the_service_role(dsn: str, number: int, *, claims: str | None) -> None:
    """A copy under ``number`` that no trusted key signed, inserted with the pod's credentials:
    signed by a stranger, or (``claims``) naming that key id with no signature at all."""
    at = datetime(2024, 1, 1, tzinfo=UTC)
    cp = STRANGER.sign(number=number, seq=999, head_hash=bytes(32), sealed_at=at,
                       prev_digest=bytes(32))  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO audit_seals (checkpoint, seq, head_hash, sealed_at, prev_digest,"
            " key_id, signature) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            cp.number, cp.seq, cp.head_hash, cp.sealed_at, cp.prev_digest,
            claims or cp.key_id, bytes(64) if claims else cp.signature,
        )  # fmt: skip
    finally:
        await conn.close()


@pytest.mark.parametrize("signed", [True, False], ids=["foreign key", "no signature"])
async def test_a_forged_copy_in_the_database_is_named_and_sealing_goes_on(
    sealed: Sealed,  # noqa: F811
    scratch: PairRecord,  # noqa: F811
    clock: PinnedClock,
    signed: bool,
) -> None:
    assert scratch.primary_dsn
    own = sealed.checkpoints[0].key_id
    await forged_copy_by_the_service_role(scratch.primary_dsn, 3, claims=None if signed else own)
    made = await sealed.gw.sealer.seal()  # the 5 unsealed records
    assert made is not None and (made.number, made.seq) == (4, 25), "number 3 is passed over"
    assert made.prev_digest == sealed.checkpoints[1].digest(), "it follows checkpoint 2"
    await write(sealed.gw, clock, 2)
    again = await sealed.gw.sealer.seal()
    assert again is not None and (again.number, again.seq) == (5, 27)
    result = await sealed.verify()
    assert result.sealed_seq == 27 and result.checkpoints == 4, "the forgery anchors nothing"
    assert result.first_broken is not None and result.broken == 1
    assert result.first_broken.seq == 21, "the records after the last good seal before it"
    reason = result.first_broken.reason
    assert reason.startswith("the database's copy of checkpoint 3 is forged: ")
    assert ("not a trusted public key" if signed else "signature does not verify") in reason


async def test_a_forged_copy_numbered_far_ahead_costs_the_sealer_nothing(
    sealed: Sealed,  # noqa: F811
    scratch: PairRecord,  # noqa: F811
) -> None:
    assert scratch.primary_dsn
    await forged_copy_by_the_service_role(scratch.primary_dsn, 10**15, claims=None)
    made = await sealed.gw.sealer.seal()
    assert made is not None and (made.number, made.seq) == (3, 25), "the next number, at once"
    result = await sealed.verify()
    assert (result.sealed_seq, result.broken) == (25, 1)
    assert result.first_broken is not None
    assert result.first_broken.reason.startswith(f"the database's copy of checkpoint {10**15} is")


@pytest.mark.parametrize("planted", ["unsigned", "foreign key"])
async def test_a_file_planted_in_the_checkpoint_directory_is_named_and_sealing_goes_on(
    sealed: Sealed,  # noqa: F811
    clock: PinnedClock,
    planted: str,
) -> None:
    path = sealed.seal_dir / file_name(3)
    if planted == "unsigned":
        path.write_text(json.dumps({"checkpoint": 3, "seq": 25, "head_hash": "00" * 32}))
    else:
        last = sealed.checkpoints[1]
        forged = STRANGER.sign(number=3, seq=25, head_hash=bytes(32), sealed_at=last.sealed_at,
                               prev_digest=last.digest())  # fmt: skip
        path.write_text(json.dumps(forged.document()))
    made = await sealed.gw.sealer.seal()
    assert made is not None and (made.number, made.seq) == (4, 25), "number 3 is passed over"
    assert json.loads((sealed.seal_dir / file_name(4)).read_text()) == made.document()
    await write(sealed.gw, clock, 1)
    assert (await sealed.gw.sealer.seal()) is not None
    result = await sealed.verify()
    assert (result.sealed_seq, result.checkpoints, result.broken) == (26, 4, 1), result
    assert result.first_broken is not None and result.first_broken.seq == 21
    reason = result.first_broken.reason
    if planted == "unsigned":
        assert reason.startswith("checkpoint 3 is forged or damaged: the file checkpoint-")
    else:
        assert reason.startswith("checkpoint 3 is forged: signed by ed25519:")
        assert "not a trusted public key" in reason
