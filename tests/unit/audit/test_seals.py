"""Seals without a database: a checkpoint signed and checked, the run of checkpoints, the key
files, the checkpoint directory, and the export verified with the public key alone."""

from __future__ import annotations

import dataclasses
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit.chain import GENESIS_HASH, chain_hash, prepare
from app.audit.records import AuditRecord, VerifyResult
from app.audit.seals.checkpoint import (
    Checkpoint,
    StoredCheckpoint,
    check_checkpoints,
    digest_of,
    next_number,
)
from app.audit.seals.checkpoint_dir import CheckpointDir, file_name
from app.audit.seals.export_file import ExportWriter, StoredRow, verify_export
from app.audit.seals.seal_key import (
    SealKey,
    load_public_key,
    new_key_file,
    public_key_file,
    signing_key,
    trusted_keys,
)
from app.audit.seals.sealer import ChainHead
from app.errors import InvalidInput

AT = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
KEY = SealKey(Ed25519PrivateKey.generate())
TRUSTED = {KEY.key_id: KEY.public}


def stored_chain(n: int, *, start: int = 1, prev: bytes = GENESIS_HASH) -> list[StoredRow]:
    """``n`` records chained as the writer chains them, from seq ``start``."""
    rows: list[StoredRow] = []
    for seq in range(start, start + n):
        row = prepare(
            AuditRecord(
                at=AT + timedelta(seconds=seq), protocol="soap", operation="InquireContribution",
                outcome="ok", request_id=f"req-{seq}", principal_kind="partner", principal_id=7,
                principal_name="counter-service", source_ip="10.1.2.3",
                national_id="1101700230703", name_returned="นาย สมชาย ใจดี",
                detail={"months": seq, "rate": 1.5, "note": None},
            )
        )  # fmt: skip
        row_hash = chain_hash(prev, seq, row)
        rows.append((seq, row, prev, row_hash))
        prev = row_hash
    return rows


def seal(rows: list[StoredRow], at_seqs: list[int], key: SealKey = KEY) -> list[Checkpoint]:
    """Checkpoints of the heads at ``at_seqs``, one after another."""
    made: list[Checkpoint] = []
    for seq in at_seqs:
        last = made[-1] if made else None
        made.append(
            key.sign(
                number=next_number(last), seq=seq, head_hash=rows[seq - 1][3],
                sealed_at=AT + timedelta(minutes=seq), prev_digest=digest_of(last),
            )
        )  # fmt: skip
    return made


def held(checkpoints: list[Checkpoint]) -> list[StoredCheckpoint]:
    return [StoredCheckpoint(cp.number, cp) for cp in checkpoints]


def write_export(
    path: Path, rows: list[StoredRow], checkpoints: list[Checkpoint], head_seq: int | None = None
) -> Path:
    seq = len(rows) if head_seq is None else head_seq
    head = ChainHead(seq, rows[seq - 1][3] if seq else GENESIS_HASH)
    writer = ExportWriter(path)
    writer.header(head, exported_at=AT + timedelta(days=1))
    for cp in checkpoints:
        writer.checkpoint(cp)
    writer.write_records(rows)
    writer.finish()
    return path


def first_seq(result: VerifyResult) -> int:
    assert not result.ok and result.first_broken is not None, result
    return result.first_broken.seq


# --- a checkpoint ----------------------------------------------------------------------------
def test_a_checkpoint_verifies_with_its_public_key_and_round_trips_as_json() -> None:
    rows = stored_chain(3)
    (cp,) = seal(rows, [3])
    assert cp.key_id.startswith("ed25519:") and len(cp.key_id) == len("ed25519:") + 32
    KEY.public.verify(cp.signature, cp.signed_bytes())  # raises if it does not verify
    assert cp.signed_bytes().startswith(b'["ssogw-seal/1",1,3,"')
    assert Checkpoint.from_document(json.loads(json.dumps(cp.document()))) == cp
    check = check_checkpoints(held([cp]), TRUSTED)
    assert check.faults == [] and check.last == cp and check.anchors == {3: cp}


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        ({"head_hash": bytes(32)}, "signature does not verify"),
        ({"seq": 2}, "signature does not verify"),
        ({"sealed_at": AT}, "signature does not verify"),
        ({"key_id": "ed25519:" + "0" * 32}, "not a trusted public key"),
    ],
)
def test_an_altered_checkpoint_is_refused(change: dict[str, Any], fault: str) -> None:
    first, second = seal(stored_chain(6), [3, 6])
    forged = dataclasses.replace(second, **change)
    check = check_checkpoints(held([first, forged]), TRUSTED)
    assert [(f.seq, fault in f.reason) for f in check.faults] == [(4, True)]
    assert check.last == first, "a forged checkpoint anchors nothing"


def test_a_checkpoint_signed_by_another_key_is_trusted_only_with_that_key() -> None:
    other = SealKey(Ed25519PrivateKey.generate())
    rows = stored_chain(6)
    first, *_ = seal(rows, [3])
    second = other.sign(number=2, seq=6, head_hash=rows[5][3], sealed_at=AT,
                        prev_digest=first.digest())  # fmt: skip
    assert len(check_checkpoints(held([first, second]), TRUSTED).faults) == 1
    rotated = {**TRUSTED, other.key_id: other.public}
    assert check_checkpoints(held([first, second]), rotated).faults == []


def test_gaps_broken_links_and_removed_files_are_named_from_the_last_good_seal() -> None:
    rows = stored_chain(12)
    cps = seal(rows, [2, 5, 9, 12])
    gap = check_checkpoints(held([cps[0], cps[2], cps[3]]), TRUSTED)
    assert [(f.seq, f.reason) for f in gap.faults] == [
        (3, "checkpoint(s) 2 missing from the checkpoint store")
    ]
    unlinked = KEY.sign(number=2, seq=5, head_hash=rows[4][3], sealed_at=AT,
                        prev_digest=bytes(32))  # fmt: skip
    broken = check_checkpoints(held([cps[0], unlinked]), TRUSTED)
    assert [(f.seq, "does not chain" in f.reason) for f in broken.faults] == [(3, True)]
    # The database's copies show a file removed from the end of the store, and one altered.
    tail = check_checkpoints(held(cps[:3]), TRUSTED, copies=cps)
    assert [(f.seq, f.reason) for f in tail.faults] == [
        (10, "checkpoint 4 is in the database but missing from the store")
    ]
    altered = dataclasses.replace(cps[1], seq=6)
    assert check_checkpoints(held(cps), TRUSTED, copies=[altered]).faults[0].seq == 3
    unreadable = [*held(cps[:1]), StoredCheckpoint(2, None, "the file is not a checkpoint")]
    assert check_checkpoints(unreadable, TRUSTED).faults[0].seq == 3


# --- key files and the checkpoint directory --------------------------------------------------
def test_a_new_key_file_is_private_its_public_half_published_and_never_overwritten(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys" / "seal-key"
    key = new_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(public_key_file(path).stat().st_mode) == 0o644
    assert "PUBLIC KEY" in public_key_file(path).read_text()
    with pytest.raises(FileExistsError):
        new_key_file(path)
    assert signing_key(path, generate=True).key_id == key.key_id, "an existing key is kept"
    both = trusted_keys([public_key_file(path), path])
    assert list(both) == [key.key_id], "the public key from the .pub and from the key itself"
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_a_configured_key_file_that_is_missing_is_not_made(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        signing_key(tmp_path / "missing", generate=False)
    not_a_key = tmp_path / "not-a-key.pem"
    not_a_key.write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(InvalidInput):
        load_public_key(not_a_key)


def test_the_checkpoint_directory_keeps_each_number_once(tmp_path: Path) -> None:
    store = CheckpointDir(tmp_path / "seals")
    assert store.all() == [] and store.get(1) is None
    first, second = seal(stored_chain(4), [2, 4])
    assert store.add(first) and store.add(second)
    assert not store.add(dataclasses.replace(second, seq=3)), "a number is never taken twice"
    assert [s.checkpoint for s in store.all()] == [first, second]
    path = store.directory / file_name(2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text()) == second.document()
    path.write_text(json.dumps(first.document()))  # the file of 2 now says 1
    assert "holds checkpoint 1" in (store.get(2).problem or "")  # type: ignore[union-attr]
    (store.directory / "checkpoint-000000000007.json").write_text("{")
    assert store.all()[-1].number == 7 and store.all()[-1].checkpoint is None


# --- the export, verified offline ------------------------------------------------------------
def test_an_untouched_export_verifies_with_the_public_key_alone(tmp_path: Path) -> None:
    rows = stored_chain(25)
    path = write_export(tmp_path / "audit.jsonl", rows, seal(rows, [10, 20]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600, "the export holds personal data"
    result = verify_export(path, TRUSTED)
    assert result.ok, result.first_broken
    assert (result.checked, result.checkpoints, result.sealed_seq, result.head_seq) == (
        25, 2, 20, 25,
    )  # fmt: skip
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["format"] == "ssogw-audit-export/1"
    assert json.loads(lines[-1]) == {"end": {"records": 25, "checkpoints": 2}}
    other = SealKey(Ed25519PrivateKey.generate())
    stranger = verify_export(path, {other.key_id: other.public})
    assert first_seq(stranger) == 1 and "not a trusted public key" in str(stranger.first_broken)


def test_a_record_holding_a_line_break_json_carries_raw_stays_on_its_line(tmp_path: Path) -> None:
    """U+0085, U+2028 and U+2029 end a line for ``str.splitlines()`` (and JavaScript before
    ES2019); a name holding one must not split its record in two for a reader of the export
    that splits so. The record verifies, as stored."""
    rows = []
    prev = GENESIS_HASH
    for seq, name in enumerate(["สม\x85ชาย", "a\u2028b", "c\u2029d"], start=1):
        _, row, _, _ = stored_chain(1, start=seq)[0]
        row = dataclasses.replace(row, name_returned=name, detail={"note\u2028": name})
        row_hash = chain_hash(prev, seq, row)
        rows.append((seq, row, prev, row_hash))
        prev = row_hash
    path = write_export(tmp_path / "audit.jsonl", rows, seal(rows, [3]))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 1 + 3 + 1, "header, checkpoint, three records, end"
    read = [json.loads(line)["record"] for line in lines[2:5]]
    assert [(r["name_returned"], r["detail"]) for r in read] == [
        (row.name_returned, row.detail) for _, row, _, _ in rows
    ]
    assert verify_export(path, TRUSTED).ok


def test_every_kind_of_tampering_with_an_export_is_found(tmp_path: Path) -> None:
    rows = stored_chain(25)
    cps = seal(rows, [10, 20])

    def verify(rows_: list[StoredRow], cps_: list[Checkpoint], head: int | None = None) -> int:
        return first_seq(verify_export(write_export(tmp_path / "x.jsonl", rows_, cps_, head),
                                       TRUSTED))  # fmt: skip

    edited = [*rows]
    seq, row, prev, h = rows[6]
    edited[6] = (seq, dataclasses.replace(row, outcome="client.already_paid"), prev, h)
    assert verify(edited, cps) == 7
    assert verify(rows[:11] + rows[12:], cps) == 12, "a removed record"
    assert verify(rows[:15], cps) == 16, "the tail cut off and the head moved back"
    assert verify([], cps, head=0) == 1, "reset to genesis"
    # A record edited and every later hash recomputed with the chain's own code: the hash at
    # the next sealed seq is no longer the one signed; the range after the previous seal is named.
    seq, row, prev, _ = rows[13]
    rewritten = rows[:13]
    forged_row = dataclasses.replace(row, name_returned="นาง อื่น")
    rewritten.append((seq, forged_row, prev, chain_hash(prev, seq, forged_row)))
    for seq, row, _, _ in rows[14:]:
        prev = rewritten[-1][3]
        rewritten.append((seq, row, prev, chain_hash(prev, seq, row)))
    result = verify_export(write_export(tmp_path / "r.jsonl", rewritten, cps), TRUSTED)
    assert first_seq(result) == 11 and result.broken == 1
    assert "records 11..20 were rewritten" in str(result.first_broken)
    assert verify(rows, [cps[1]]) == 1, "a checkpoint left out"
    assert verify(rows, [cps[0], dataclasses.replace(cps[1], head_hash=bytes(32))]) == 11


def test_an_export_that_is_not_whole_cannot_be_checked(tmp_path: Path) -> None:
    rows = stored_chain(3)
    path = write_export(tmp_path / "audit.jsonl", rows, seal(rows, [3]))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    cut = tmp_path / "cut.jsonl"
    cut.write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(InvalidInput, match="incomplete"):
        verify_export(cut, TRUSTED)
    garbled = tmp_path / "garbled.jsonl"
    garbled.write_text("".join([lines[0], "{not json\n", *lines[1:]]), encoding="utf-8")
    with pytest.raises(InvalidInput, match="line 2"):
        verify_export(garbled, TRUSTED)
    headless = tmp_path / "headless.jsonl"
    headless.write_text("".join(lines[1:]), encoding="utf-8")
    with pytest.raises(InvalidInput, match="not an audit export"):
        verify_export(headless, TRUSTED)
