"""Session 22 attacks on the REST inquiry's answer written through orjson (``inquiry_json``):
each test fails on the code it was written against because of the defect its docstring names,
and says what the correct behaviour is."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from app.counter.inquiry_schemas import InquiryOut, inquiry_json
from app.counter.records import EndedMembership, InquiryResult, PayableMonth
from app.db.read_meta import ReadPath

BASE = InquiryResult(
    national_id="3100600445635", title="นาย", first_name="ก", family_name="ข",
    section=40, status="active", status_reason=None, ended_month=None, option=1,
    months=(PayableMonth("2024-06", 10000, None, False, 5000),),
    default_months=("2024-06",), default_total_satang=10000, savings_allowed=False,
    max_savings_per_month_satang=0, as_of=datetime(2024, 6, 12, 2, 30, tzinfo=UTC),
    served_by=ReadPath.REPLICA,
)  # fmt: skip


def _model_json(result: InquiryResult) -> bytes:
    return InquiryOut.__pydantic_serializer__.to_json(InquiryOut.of(result), by_alias=True)


@pytest.mark.parametrize(
    "changes",
    [
        {"section": 2**64},
        {"section": -(2**63) - 1},
        {"option": 2**70},
        {
            "previous_memberships": (
                EndedMembership(2**64, date(2020, 1, 1), "2020-01", None, 2**65),
            )
        },
    ],
    ids=["section past 64 bits", "section below -2**63", "option", "an ended membership's"],
)
def test_an_integer_past_64_bits_is_written_as_the_model_writes_it(
    changes: dict[str, object],
) -> None:
    """Defect: ``inquiry_json`` writes through ``orjson.dumps``, which refuses an integer
    outside the 64-bit range (``TypeError: Integer exceeds 64-bit range``). ``section`` and
    ``option`` (the answer's and an ended membership's) are plain ``int`` in the models
    (``SectionOut`` is ``int``; ``option: int | None``), so the model writes such a number and
    the standard library's encoder, used before, wrote the same digits: the hot route now
    answers 500 where the route (and the hot route before) answered 200.

    Correct: the same bytes as the model's serialiser, whatever the integer's size.
    """
    result = replace(BASE, **changes)  # type: ignore[arg-type]
    assert inquiry_json(result) == _model_json(result)
