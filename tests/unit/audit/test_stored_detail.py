"""A record's detail is stored as its trip through JSON gives it back, cleaned for PostgreSQL:
the flat details of nearly every call take a shorter way to the very same value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audit.chain import _clean_json, canonical_bytes, prepare
from app.audit.records import AuditRecord

_flat_values = st.text() | st.integers() | st.booleans() | st.none()


def _through_json(detail: Any) -> Any:
    return _clean_json(json.loads(json.dumps(detail, allow_nan=False)))


def _record(detail: Any) -> AuditRecord:
    return AuditRecord(
        at=datetime(2024, 6, 12, 2, 30, tzinfo=UTC), protocol="rest", operation="Inquire",
        outcome="ok", request_id="r-1", principal_kind="client", detail=detail,
    )  # fmt: skip


@settings(max_examples=300)
@given(st.dictionaries(st.text(), _flat_values, max_size=6))
def test_a_flat_detail_is_stored_as_its_trip_through_json_gives_it(detail: Any) -> None:
    row = prepare(_record(detail))
    assert row.detail == _through_json(detail)
    assert canonical_bytes(7, row) == canonical_bytes(7, prepare(_record(_through_json(detail))))


class _Kind(StrEnum):
    A = "a"


class _Count(IntEnum):
    ONE = 1


@pytest.mark.parametrize(
    "detail",
    [
        {"servedBy": "replica", "nul": "a\x00b", "lone": "\ud800"},
        {"nested": {"months": ["2024-06", 3]}, "list": (1, 2)},
        {_Kind.A: _Count.ONE, "kind": _Kind.A},  # enums come back as plain values
        {"amount": 1.5, "big": 10**30},
    ],
)
def test_other_details_are_stored_as_their_trip_through_json_gives_them(detail: Any) -> None:
    stored = prepare(_record(detail)).detail
    assert stored == _through_json(detail)
    assert [type(v) for v in stored.values()] == [type(v) for v in _through_json(detail).values()]


def test_a_detail_json_cannot_carry_is_refused() -> None:
    with pytest.raises((TypeError, ValueError)):
        prepare(_record({"at": datetime(2024, 1, 1)}))
    with pytest.raises(ValueError):
        prepare(_record({"x": float("nan")}))
