"""The audit hash chain: a record's canonical byte form, its hash, and the check of a run of rows
(against the signed checkpoints of ``app.audit.seals`` too).

Each record's hash is ``sha256(prev_hash || canonical(seq, record))``; the first record chains to
``GENESIS_HASH``. The canonical form (version ``ssogw-audit/1``) is a compact JSON array:

    ["ssogw-audit/1", seq, at, principal_kind, principal_id, principal_name, operator,
     terminal, source_ip, protocol, operation, national_id, name_returned, outcome,
     request_id, detail]

encoded as UTF-8, where ``at`` is UTC ISO 8601 with microseconds (``...T01:02:03.000004+00:00``),
``source_ip`` the hex of the address's packed bytes, absent values ``null`` (so ``None`` and
``""`` differ), ``detail`` with keys sorted and numbers as exact decimals (integral values as
plain digits), so the form survives the trip through ``jsonb`` unchanged.
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final

import orjson

from app.audit.records import AuditRecord, BrokenRecord, VerifyResult
from app.audit.seals.checkpoint import SealCheck
from app.frozen_records import quick_init

CANONICAL_VERSION: Final = "ssogw-audit/1"
GENESIS_HASH: Final = bytes(32)
_INT4 = range(-(2**31), 2**31)


@quick_init
@dataclass(frozen=True, slots=True)
class AuditRow:
    """A record in exactly the form it is stored and hashed (see ``prepare``)."""

    at: datetime  # aware, UTC
    principal_kind: str
    principal_id: int | None
    principal_name: str | None
    operator: str | None
    terminal: str | None
    source_ip: str | None  # a bare address, as ipaddress prints it
    protocol: str
    operation: str
    national_id: str | None
    name_returned: str | None
    outcome: str
    request_id: str
    detail: Any  # JSON value (dict) or None

    def detail_json(self) -> str | None:
        """The detail as JSON text for the ``jsonb`` column (which keeps no layout of its own).
        orjson, or the standard library for what orjson will not write (an integer past 64
        bits): the same value either way."""
        if self.detail is None:
            return None
        try:
            return orjson.dumps(self.detail).decode()
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return json.dumps(self.detail, ensure_ascii=False)


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL or unpaired surrogates; one such value must not make a
    # whole batch fail, so it is stored (and hashed) with the offending characters replaced.
    if value is None:
        return None
    if value.isascii():  # no surrogate can be in it: only a NUL could need replacing
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, list):
        return [_clean_json(item) for item in value]
    if isinstance(value, dict):
        return {_text(key): _clean_json(item) for key, item in value.items()}
    return value


_FLAT: Final = (str, int, bool, type(None))


def _stored_detail(detail: Any) -> Any:
    """``detail`` as JSON would give it back, cleaned (``_clean_json``)."""
    if type(detail) is dict and all(
        type(k) is str and type(v) in _FLAT for k, v in detail.items()
    ):  # the usual flat detail, whose trip through JSON gives back its very keys and values
        return {_text(k): _text(v) if type(v) is str else v for k, v in detail.items()}
    # Round trip through JSON: non-JSON values fail here, for this caller alone.
    return _clean_json(json.loads(json.dumps(detail, allow_nan=False)))


@lru_cache(maxsize=4096)  # a few addresses make every call: parse each once
def _normal_ip(text: str) -> str:
    return str(ipaddress.ip_address(text.strip()))


def prepare(record: AuditRecord) -> AuditRow:
    """The storable form of ``record``; ValueError/TypeError if it can never be stored."""
    if record.at.tzinfo is None or record.at.utcoffset() is None:
        raise ValueError("an audit record's time must be aware (carry a time zone)")
    if record.principal_id is not None and record.principal_id not in _INT4:
        raise ValueError("principal_id is out of range")
    source_ip = None if record.source_ip is None else _normal_ip(record.source_ip)
    detail = None if record.detail is None else _stored_detail(record.detail)
    return AuditRow(
        at=record.at.astimezone(UTC),
        principal_kind=_text(record.principal_kind) or "",
        principal_id=record.principal_id,
        principal_name=_text(record.principal_name),
        operator=_text(record.operator),
        terminal=_text(record.terminal),
        source_ip=source_ip,
        protocol=_text(record.protocol) or "",
        operation=_text(record.operation) or "",
        national_id=_text(record.national_id),
        name_returned=_text(record.name_returned),
        outcome=_text(record.outcome) or "",
        request_id=_text(record.request_id) or "",
        detail=detail,
    )


def _number(value: int | float) -> str:
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if exact == exact.to_integral_value():
        return str(int(exact))
    return format(exact.normalize(), "f")


def _canonical(value: Any) -> str:
    if value is None or isinstance(value, bool | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ",".join(f"{_canonical(str(k))}:{_canonical(v)}" for k, v in items) + "}"
    raise TypeError(f"no canonical form for {type(value).__name__}")


def _plain(value: Any) -> bool:
    """Whether ``value`` holds only what compact, key-sorted ``json.dumps`` writes exactly as
    ``_canonical`` does: strings, ints, booleans, None, lists and string-keyed dicts (no float,
    whose canonical form is its exact decimal)."""
    if value is None or isinstance(value, str | int):  # bool is an int
        return True
    if isinstance(value, list | tuple):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


_FAST_CANONICAL: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True
).encode


def _plain_bytes(value: Any) -> bytes:
    """``_FAST_CANONICAL(value)`` as UTF-8, for a ``_plain`` value: the same bytes, written by
    orjson (8.2 against 0.76 µs for a record's fields, bench/RESULTS.md, session 22). Both
    sort keys by code point (orjson compares their UTF-8, which orders as code points do) and
    escape the same characters the same way (tests/unit/audit/test_canonical_writers.py).
    What orjson will not write (an integer past 64 bits) the standard library writes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _FAST_CANONICAL(value).encode("utf-8")


@lru_cache(maxsize=4096)
def _packed_hex(source_ip: str) -> str:
    return ipaddress.ip_address(source_ip).packed.hex()


def canonical_tail(row: AuditRow) -> bytes:
    """The canonical form of ``row`` without its place: the bytes that follow
    ``["ssogw-audit/1",<seq>,`` (``canonical_bytes``). The chain's append functions take this
    and number and hash the record under the head's lock (migration 0017)."""
    packed_ip = None if row.source_ip is None else _packed_hex(row.source_ip)
    fields = [
        row.at.astimezone(UTC).isoformat(timespec="microseconds"),
        row.principal_kind,
        row.principal_id,
        row.principal_name,
        row.operator,
        row.terminal,
        packed_ip,
        row.protocol,
        row.operation,
        row.national_id,
        row.name_returned,
        row.outcome,
        row.request_id,
        row.detail,
    ]
    # The common case (no float in the detail) through the C encoder: the same text. Both
    # write "[" + the fields joined by "," + "]"; the tail is that without its "[".
    if _plain(row.detail):
        return _plain_bytes(fields)[1:]
    return _canonical(fields).encode("utf-8")[1:]


def canonical_prefix(seq: int) -> bytes:
    """What comes before a record's tail at position ``seq``: ``["ssogw-audit/1",<seq>,``."""
    return b'["' + CANONICAL_VERSION.encode() + b'",' + str(seq).encode() + b","


def canonical_bytes(seq: int, row: AuditRow) -> bytes:
    """The versioned byte form of a record at position ``seq`` of the chain."""
    return canonical_prefix(seq) + canonical_tail(row)


def chain_hash(prev_hash: bytes, seq: int, row: AuditRow) -> bytes:
    """The hash of ``row`` at ``seq``, chained to the hash of the record before it."""
    return hashlib.sha256(prev_hash + canonical_bytes(seq, row)).digest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where the chain first stops holding, and why."""

    seq: int
    at: datetime | None  # None for a record that is missing, or a fault over a range
    reason: str


class ChainChecker:
    """Checks stored rows fed in ``seq`` order, from ``first_seq`` on, and against ``seals``.

    ``anchor`` is the hash the first row must chain to (None when it cannot be known because
    the record before it is gone; that loss is reported with ``missing``). ``seals`` are the
    checkpoints that verified: the row at each sealed seq must have the hash the checkpoint
    signed, which a range rewritten with recomputed hashes no longer has. With ``require_seal``
    records that no checkpoint at all verifies for are a finding of their own (``no checkpoint``,
    naming the first unsealed record): hashes that only hold together prove nothing against
    someone who can recompute them.
    """

    def __init__(
        self,
        *,
        first_seq: int,
        anchor: bytes | None,
        seals: SealCheck | None = None,
        require_seal: bool = False,
    ) -> None:
        self.expected_seq = first_seq
        self.prev_hash = anchor
        self.checked = 0
        self.broken = 0
        self.first_break: ChainBreak | None = None
        self.seals = seals or SealCheck()
        self.require_seal = require_seal
        self._sealed = sorted(self.seals.anchors)

    def fail(self, seq: int, at: datetime | None, reason: str) -> None:
        """Count a fault; the one at the lowest seq is kept (the first found among equals)."""
        self.broken += 1
        if self.first_break is None or seq < self.first_break.seq:
            self.first_break = ChainBreak(seq, at, reason)

    def missing(self, first: int, last: int) -> None:
        """Report records ``first..last`` as removed."""
        span = f"{first}" if first == last else f"{first}..{last}"
        self.fail(first, None, f"record(s) {span} missing: removed from the chain")

    def feed(self, seq: int, row: AuditRow, *, prev_hash: bytes, stored_hash: bytes) -> None:
        """Check one stored row against its position, its predecessor, its content and a seal."""
        self.checked += 1
        if seq < self.expected_seq:
            self.fail(seq, row.at, f"seq {seq} occurs more than once")
            return
        if seq > self.expected_seq:
            self.missing(self.expected_seq, seq - 1)
        elif self.prev_hash is not None and prev_hash != self.prev_hash:
            self.fail(seq, row.at, "prev_hash does not match the previous record's hash")
        if chain_hash(prev_hash, seq, row) != stored_hash:
            self.fail(seq, row.at, "content does not match its hash: the record was edited")
        seal = self.seals.anchors.get(seq)
        if seal is not None and stored_hash != seal.head_hash:
            # Every hash from the previous seal on may have been recomputed: the range is what
            # is known to be rewritten, not which record in it was changed first.
            start = self._sealed_before(seq) + 1
            self.fail(start, None, f"records {start}..{seq} were rewritten: the hash at seq "
                      f"{seq} is not the one checkpoint {seal.number} signed")  # fmt: skip
        self.expected_seq = seq + 1
        # Chain on from what is stored, so one edit is reported once, not for every later row.
        self.prev_hash = stored_hash

    def expect_end(self, last_seq: int) -> None:
        """Report as missing any seq up to ``last_seq`` that was never fed."""
        if self.expected_seq <= last_seq:
            self.missing(self.expected_seq, last_seq)
            self.expected_seq = last_seq + 1

    def expect_sealed(self, head_seq: int) -> None:
        """Report what checkpoints sealed beyond the chain's head ``head_seq`` as removed."""
        beyond = [seq for seq in self._sealed if seq > head_seq]
        if not beyond:
            return
        seal = self.seals.anchors[beyond[-1]]
        end = "was reset to genesis" if head_seq == 0 else f"ends at seq {head_seq}"
        self.fail(head_seq + 1, None, f"records {head_seq + 1}..{seal.seq} missing: the chain "
                  f"{end} but checkpoint {seal.number} sealed seq {seal.seq}")  # fmt: skip

    def result(self, *, first_seq: int | None, last_seq: int | None, head_seq: int) -> VerifyResult:
        """What the check found, the checkpoints' own faults included."""
        for fault in self.seals.faults:
            self.fail(fault.seq, None, fault.reason)
        broken, last_seal = self.first_break, self.seals.last
        unsealed = None
        if self.require_seal and last_seal is None and head_seq > 0 and first_seq is not None:
            unsealed = first_seq  # records, and not one checkpoint that verifies
        return VerifyResult(
            checked=self.checked,
            ok=broken is None and unsealed is None,
            first_unsealed=unsealed,
            first_broken=None
            if broken is None
            else BrokenRecord(broken.seq, broken.at, broken.reason),
            broken=self.broken,
            first_seq=first_seq,
            last_seq=last_seq,
            checkpoints=len(self.seals.anchors),
            sealed_seq=None if last_seal is None else last_seal.seq,
            head_seq=head_seq,
        )

    def _sealed_before(self, seq: int) -> int:
        index = bisect.bisect_left(self._sealed, seq)
        return self._sealed[index - 1] if index else 0
