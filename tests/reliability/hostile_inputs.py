"""The hostile-input corpus: ``corpus/index.toml`` names each input, says what it is and what
answer it must get; the bodies are files under ``corpus/`` (or the contract attack files).

Bodies are text with placeholders, filled when the input is sent, so that the files stay
readable and small and an input can reach the check it aims at (a valid token, a real person):

    {{SECURITY}}        a fresh valid WS-Security PasswordDigest header block of the partner
    {{NID}}             the national ID of a real Section 40 member with nothing paid
    {{MONTH}}           the current contribution month (YYYY-MM)
    {{TODAY}} {{NOW}}   the business date and the time of payment
    {{TXN}}             a fresh partner transaction id
    {{U+202E}}          one Unicode character, written as UTF-8
    {{BYTES:ed a0 80}}  raw bytes (invalid UTF-8, NUL, ...)
    {{REPEAT:n:text}}   ``text`` n times; ``{{I}}`` in it is the repetition's number
"""

from __future__ import annotations

import re
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.domain.calendar import settlement_day
from tests.reliability.soap_wire import Partner, security
from tests.reliability.workload import current_month

CORPUS = Path(__file__).parent / "corpus"
INDEX = CORPUS / "index.toml"
CHUNK = 64 * 1024
ANSWER_WITHIN_S = 5.0  # no input may hold a request longer than this

_REPEAT = re.compile(rb"\{\{REPEAT:(\d+):((?:[^{}]|\{\{[A-Z0-9+]+\}\})*?)\}\}")
_CHAR = re.compile(rb"\{\{U\+([0-9A-F]{4,6})\}\}")
_BYTES = re.compile(rb"\{\{BYTES:([0-9a-f ]+)\}\}")
_NAMED = re.compile(rb"\{\{([A-Z]+)\}\}")


@dataclass(frozen=True)
class HostileCase:
    """One hostile input and the answer it must get."""

    name: str
    protocol: str  # "soap", "rest" or "http"
    what: str
    expect: Mapping[str, Any]
    file: Path | None = None
    body: str | None = None  # an inline body, instead of a file
    method: str = "POST"
    path: str = "/soap/v1"
    content_type: str | None = "text/xml; charset=utf-8"  # None: no Content-Type at all
    transfer: str = "length"  # "length" (Content-Length) or "chunked"
    encode: str | None = None  # re-encode the filled body (e.g. "utf-16")
    headers: Mapping[str, str] = field(default_factory=dict)
    filler_headers: int = 0  # this many extra small headers (X-Filler-<n>: v)
    auth: bool = True  # REST: send the bearer token of a client with the counter scope
    bug: str | None = None  # an app bug makes this input fail today: the diagnosis


def load_cases(protocol: str) -> list[HostileCase]:
    """The cases of one protocol, in index order."""
    index = tomllib.loads(INDEX.read_text(encoding="utf-8"))
    cases = []
    for entry in index[protocol]:
        entry = dict(entry)
        file = entry.pop("file", None)
        if "content_type" in entry and entry["content_type"] == "":
            entry["content_type"] = None
        cases.append(
            HostileCase(
                protocol=protocol,
                file=(CORPUS / file).resolve() if file else None,
                **entry,
            )
        )
    return cases


def params(cases: list[HostileCase]) -> list[Any]:
    """The cases as pytest params; a case with a known app bug is a strict xfail."""
    return [
        pytest.param(
            case,
            id=case.name,
            marks=[pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else [],
        )
        for case in cases
    ]


def _repeat(match: re.Match[bytes]) -> bytes:
    count, text = int(match[1]), match[2]
    if b"{{I}}" not in text:
        return text * count
    return b"".join(text.replace(b"{{I}}", str(i).encode()) for i in range(count))


def fill(template: bytes, values: Mapping[str, Callable[[], str]]) -> bytes:
    """``template`` with every placeholder replaced (each named one by a fresh value)."""
    data = _REPEAT.sub(_repeat, template)
    data = _CHAR.sub(lambda m: chr(int(m[1], 16)).encode("utf-8"), data)
    data = _BYTES.sub(lambda m: bytes.fromhex(m[1].decode()), data)

    def named(match: re.Match[bytes]) -> bytes:
        key = match[1].decode()
        if key not in values:
            raise KeyError(f"unknown placeholder {{{{{key}}}}}")
        return values[key]().encode("utf-8")

    return _NAMED.sub(named, data)


def body_of(case: HostileCase, values: Mapping[str, Callable[[], str]]) -> bytes:
    """The bytes to send for ``case``."""
    if case.file is not None:
        template = case.file.read_bytes()
    else:
        template = (case.body or "").encode("utf-8")
    data = fill(template, values)
    if case.encode:
        data = data.decode("utf-8").encode(case.encode)
    return data


def chunks(data: bytes) -> Iterator[bytes]:
    """``data`` in pieces, so that the client sends it chunked, without a Content-Length."""
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def new_txn() -> str:
    return f"REL-{uuid.uuid4().hex[:16]}"


def placeholder_values(partner: Partner, people: Iterator[str]) -> Mapping[str, Callable[[], str]]:
    """Fresh values for one input's placeholders (``people`` gives its member)."""
    now = datetime.now(UTC)
    nid = next(people)
    return {
        "SECURITY": lambda: security(partner.username, partner.password),
        "NID": lambda: nid,
        "MONTH": current_month,
        "TODAY": lambda: settlement_day(now).isoformat(),
        "NOW": lambda: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "TXN": new_txn,
    }
