"""The audit chain's canonical form written by orjson is the standard library's, byte for byte:
a record's hash is taken over these bytes, and a chain verified later recomputes them."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.audit.chain import _FAST_CANONICAL, AuditRow, _plain, _plain_bytes

# Any text but surrogates (``prepare`` replaces those): Thai, controls, U+2028, every plane.
_text = st.text(max_size=10)
_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(_plain_values)
def test_orjson_writes_every_plain_value_as_the_standard_library_does(value: Any) -> None:
    assert _plain(value)
    assert _plain_bytes(value) == _FAST_CANONICAL(value).encode("utf-8")


def test_keys_are_sorted_by_code_point_across_the_planes() -> None:
    # UTF-16 would put U+10000 (a surrogate pair) before U+E000; code points do not.
    value = {"\U00010000": 1, "\ue000": 2, "z": 3, "\u0e01": 4, "": 5}
    assert _plain_bytes(value) == _FAST_CANONICAL(value).encode("utf-8")
    assert _plain_bytes(value).decode().index("\ue000") < _plain_bytes(value).decode().index(
        "\U00010000"
    )


def test_an_integer_orjson_will_not_write_is_written_by_the_standard_library() -> None:
    value = [2**64, {"n": -(2**70)}]
    assert _plain_bytes(value) == b'[18446744073709551616,{"n":-1180591620717411303424}]'


# What ``prepare`` stores: its trip through JSON refuses NaN and the infinities.
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(_json_values.filter(lambda value: value is not None))
def test_the_stored_detail_is_the_same_value_as_before(detail: Any) -> None:
    row = AuditRow(
        at=None,  # type: ignore[arg-type]  # only the detail is read here
        principal_kind="partner",
        principal_id=None,
        principal_name=None,
        operator=None,
        terminal=None,
        source_ip=None,
        protocol="rest",
        operation="op",
        national_id=None,
        name_returned=None,
        outcome="ok",
        request_id="r",
        detail=detail,
    )
    written = row.detail_json()
    assert written is not None
    assert json.loads(written) == json.loads(json.dumps(detail, ensure_ascii=False))
