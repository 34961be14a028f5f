"""A checkpoint: a signed seal of the audit chain's head, and the check of a run of them.

A checkpoint says "at ``sealed_at`` the chain's last record was ``seq``, whose hash is
``head_hash``". It carries the digest of the checkpoint before it, so checkpoints form a chain
of their own, and an Ed25519 signature by a key the database never holds. The signed bytes
(version ``ssogw-seal/1``) are the compact JSON array

    ["ssogw-seal/1", number, seq, head_hash, sealed_at, prev_digest, key_id]

with hashes in lower-case hex and ``sealed_at`` in UTC ISO 8601 with microseconds. A
checkpoint's digest is the SHA-256 of those bytes; the first checkpoint's ``prev_digest`` is 32
zero bytes. As a JSON object (a checkpoint file, a line of an export) it is ``version``,
``checkpoint`` (the number), ``seq``, ``head_hash``, ``sealed_at``, ``prev_digest``, ``key_id``
and ``signature`` (hex).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SEAL_VERSION: Final = "ssogw-seal/1"
GENESIS_DIGEST: Final = bytes(32)
TrustedKeys = Mapping[str, Ed25519PublicKey]  # by key id


def signed_bytes(
    number: int, seq: int, head_hash: bytes, sealed_at: datetime, prev_digest: bytes, key_id: str
) -> bytes:
    """The bytes a checkpoint's signature covers."""
    at = sealed_at.astimezone(UTC).isoformat(timespec="microseconds")
    fields = [SEAL_VERSION, number, seq, head_hash.hex(), at, prev_digest.hex(), key_id]
    return json.dumps(fields, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed seal of the chain head."""

    number: int  # 1, 2, 3, ...; one a forgery took is passed over (the link is prev_digest)
    seq: int  # the chain's last record when it was sealed
    head_hash: bytes
    sealed_at: datetime  # aware
    prev_digest: bytes  # the digest of checkpoint ``number - 1``
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        """The bytes the signature covers."""
        return signed_bytes(
            self.number, self.seq, self.head_hash, self.sealed_at, self.prev_digest, self.key_id
        )

    def digest(self) -> bytes:
        """What the next checkpoint chains to."""
        return hashlib.sha256(self.signed_bytes()).digest()

    def document(self) -> dict[str, Any]:
        """The checkpoint as a JSON object."""
        return {
            "version": SEAL_VERSION,
            "checkpoint": self.number,
            "seq": self.seq,
            "head_hash": self.head_hash.hex(),
            "sealed_at": self.sealed_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "prev_digest": self.prev_digest.hex(),
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_document(cls, doc: Any) -> Checkpoint:
        """The checkpoint a JSON object describes; ValueError if it is not one."""
        try:
            if doc["version"] != SEAL_VERSION:
                raise ValueError(f"unknown checkpoint version {doc['version']!r}")
            number, seq = doc["checkpoint"], doc["seq"]
            if not (type(number) is int and type(seq) is int and number >= 1 and seq >= 0):
                raise ValueError("'checkpoint' and 'seq' must be whole numbers")
            sealed_at = datetime.fromisoformat(doc["sealed_at"])
            if sealed_at.tzinfo is None:
                raise ValueError("'sealed_at' has no time zone")
            return cls(
                number=number,
                seq=seq,
                head_hash=bytes.fromhex(doc["head_hash"]),
                sealed_at=sealed_at,
                prev_digest=bytes.fromhex(doc["prev_digest"]),
                key_id=str(doc["key_id"]),
                signature=bytes.fromhex(doc["signature"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a checkpoint ({type(exc).__name__}: {exc})") from None


def digest_of(checkpoint: Checkpoint | None) -> bytes:
    """The digest the checkpoint after ``checkpoint`` chains to (genesis before the first)."""
    return GENESIS_DIGEST if checkpoint is None else checkpoint.digest()


def next_number(checkpoint: Checkpoint | None) -> int:
    """The number of the checkpoint after ``checkpoint`` (1 for the first)."""
    return 1 if checkpoint is None else checkpoint.number + 1


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """What a store holds under one number: the checkpoint, or why it cannot be read."""

    number: int
    checkpoint: Checkpoint | None
    problem: str | None = None


class CheckpointStore(Protocol):
    """Where checkpoints are kept outside the database, append-only (``checkpoint_dir``)."""

    @property
    def where(self) -> str:
        """The store, for people (a path or a URL)."""
        ...

    def add(self, checkpoint: Checkpoint) -> bool:
        """Keep ``checkpoint`` durably; False if its number is taken already."""
        ...

    def get(self, number: int) -> StoredCheckpoint | None:
        """Checkpoint ``number``, or None if the store has none."""
        ...

    def all(self) -> list[StoredCheckpoint]:
        """Every checkpoint in the store, by number."""
        ...


# --- the check of a run of checkpoints -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SealFault:
    """A seal that does not hold; ``seq`` is the first record it leaves unsealed or in doubt."""

    seq: int
    reason: str


@dataclass(slots=True)
class SealCheck:
    """The checkpoints that verify (by the seq each seals), and the faults among them."""

    anchors: dict[int, Checkpoint] = field(default_factory=dict)
    faults: list[SealFault] = field(default_factory=list)

    @property
    def last(self) -> Checkpoint | None:
        """The latest checkpoint that verifies."""
        return self.anchors[max(self.anchors)] if self.anchors else None


def signature_fault(cp: Checkpoint, keys: TrustedKeys) -> str | None:
    """Why ``cp`` was not signed by one of ``keys`` (forged, altered or foreign), or None."""
    key = keys.get(cp.key_id)
    if key is None:
        return f"signed by {cp.key_id}, which is not a trusted public key: forged or foreign"
    try:
        key.verify(cp.signature, cp.signed_bytes())
    except InvalidSignature:
        return "its signature does not verify: forged or altered"
    return None


def check_checkpoints(
    stored: Sequence[StoredCheckpoint], keys: TrustedKeys, *, copies: Sequence[Checkpoint] = ()
) -> SealCheck:
    """Check the signatures and links of the checkpoints kept outside the database, and that
    none of the database's ``copies`` is forged, missing from them or differs.

    Checkpoints chain by digest: each names the digest of the one before it. Their numbers
    rise, and may skip one that a forged file or copy took first (the sealer goes on past
    it); a skip that breaks the digest chain is a checkpoint missing from the store.
    """
    check = SealCheck()
    good: Checkpoint | None = None  # the last checkpoint that verified
    seen = 0  # the last number the store holds anything under

    def fault(reason: str) -> None:
        # The records after the last good seal are those whose seal is lost or in doubt.
        check.faults.append(SealFault(1 if good is None else good.seq + 1, reason))

    for entry in sorted(stored, key=lambda s: s.number):
        after, seen = seen, entry.number
        cp = entry.checkpoint
        if cp is None:
            fault(f"checkpoint {entry.number} is forged or damaged: {entry.problem}")
            continue
        reason = signature_fault(cp, keys)
        if reason is not None:
            fault(f"checkpoint {cp.number} is forged: {reason}")
            continue
        if good is not None and cp.seq <= good.seq:
            fault(f"checkpoint {cp.number}: it seals seq {cp.seq}, not after checkpoint "
                  f"{good.number}'s {good.seq}")  # fmt: skip
            continue
        reason = _link_fault(cp, good, after)
        if reason is not None:  # what lies between is lost; this one is still signed
            fault(reason)
        check.anchors.setdefault(cp.seq, cp)
        good = cp
    _compare_copies(check, stored, copies, keys)
    return check


def _link_fault(cp: Checkpoint, good: Checkpoint | None, after: int) -> str | None:
    """Why ``cp`` does not follow ``good`` (the last that verified; ``after``: the number the
    store held something under just before ``cp``), or None."""
    if cp.prev_digest != digest_of(good):
        if cp.number > after + 1:  # nothing at all under the numbers in between
            first, last = after + 1, cp.number - 1
            span = f"{first}" if first == last else f"{first}..{last}"
            return f"checkpoint(s) {span} missing from the checkpoint store"
        if good is None:
            return f"checkpoint {cp.number}: the first checkpoint does not start from genesis"
        return f"checkpoint {cp.number}: it does not chain to checkpoint {good.number}"
    return None


def _compare_copies(
    check: SealCheck,
    stored: Sequence[StoredCheckpoint],
    copies: Sequence[Checkpoint],
    keys: TrustedKeys,
) -> None:
    # The database's copies prove nothing by themselves; a copy whose original is gone from
    # the store shows a removed checkpoint file, even the last one.
    held = {s.number: s.checkpoint for s in stored}
    readable = sorted((s.number, s.checkpoint.seq) for s in stored if s.checkpoint is not None)
    numbers = [number for number, _ in readable]
    for copy in copies:
        forged = signature_fault(copy, keys)
        if forged is not None:
            reason = f"the database's copy of checkpoint {copy.number} is forged: {forged}"
        elif copy.number not in held:
            reason = f"checkpoint {copy.number} is in the database but missing from the store"
        elif held[copy.number] not in (None, copy):
            reason = f"the database's copy of checkpoint {copy.number} differs from the store's"
        else:
            continue
        before = bisect.bisect_left(numbers, copy.number)
        check.faults.append(SealFault(1 if before == 0 else readable[before - 1][1] + 1, reason))
